"""The VPC's egress: a NAT instance in the lean profile (the dev default), NAT gateways in the
standard profile; either way only the private subnets route through it."""

from __future__ import annotations

from typing import Any

from infra.components.network import NAT_ROOT_DEVICE, NAT_ROOT_VOLUME_GIB
from tests.infra.synth import Synth

AL2023_ARM64_IMAGE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"


def _nat_instance(synth: Synth) -> tuple[str, dict[str, Any]]:
    instances = synth.of_type("AWS::EC2::Instance")
    assert len(instances) == 1
    ((logical_id, instance),) = instances.items()
    return logical_id, instance["Properties"]


def _default_routes(synth: Synth, subnets: Any) -> list[dict[str, Any]]:
    tables = {synth.stack.resolve(subnet.route_table.route_table_id)["Ref"] for subnet in subnets}
    return [
        route["Properties"]
        for route in synth.of_type("AWS::EC2::Route").values()
        if route["Properties"]["RouteTableId"]["Ref"] in tables
        and route["Properties"]["DestinationCidrBlock"] == "0.0.0.0/0"
    ]


def test_lean_egress_is_one_small_graviton_nat_instance(default_synth: Synth) -> None:
    _, instance = _nat_instance(default_synth)
    image = default_synth.template["Parameters"][instance["ImageId"]["Ref"]]

    assert not default_synth.of_type("AWS::EC2::NatGateway")
    assert not default_synth.of_type("AWS::EC2::EIP")
    assert instance["InstanceType"] == "t4g.nano"
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"] == AL2023_ARM64_IMAGE  # maintained by AWS, resolved at deploy time
    assert instance["SourceDestCheck"] is False
    assert instance["CreditSpecification"] == {"CPUCredits": "standard"}  # no surplus-credit charges


def test_the_nat_instance_is_hardened(default_synth: Synth) -> None:
    _, instance = _nat_instance(default_synth)
    (template,) = default_synth.of_type("AWS::EC2::LaunchTemplate").values()

    assert instance["BlockDeviceMappings"] == [
        {
            "DeviceName": NAT_ROOT_DEVICE,
            "Ebs": {
                "DeleteOnTermination": True,
                "Encrypted": True,
                "VolumeSize": NAT_ROOT_VOLUME_GIB,
                "VolumeType": "gp3",
            },
        }
    ]
    assert template["Properties"]["LaunchTemplateData"]["MetadataOptions"] == {"HttpTokens": "required"}
    (interface,) = instance["NetworkInterfaces"]
    public = {default_synth.logical_id(s) for s in default_synth.stack.network.vpc.public_subnets}
    assert interface["SubnetId"]["Ref"] in public and interface["AssociatePublicIpAddress"] is True


def test_the_nat_instance_admits_only_the_private_subnets(default_synth: Synth) -> None:
    _, instance = _nat_instance(default_synth)
    (group_ref,) = instance["NetworkInterfaces"][0]["GroupSet"]
    group = default_synth.resources[group_ref["Fn::GetAtt"][0]]["Properties"]
    private = {subnet.ipv4_cidr_block for subnet in default_synth.stack.network.vpc.private_subnets}

    rules = group.get("SecurityGroupIngress", [])
    assert {rule["CidrIp"] for rule in rules} == private
    assert all(rule["IpProtocol"] == "tcp" for rule in rules)


def test_lean_private_subnets_route_through_the_nat_instance_and_isolated_ones_nowhere(
    default_synth: Synth,
) -> None:
    instance_id, _ = _nat_instance(default_synth)
    vpc = default_synth.stack.network.vpc

    routes = _default_routes(default_synth, vpc.private_subnets)
    assert len(routes) == len(vpc.private_subnets)
    assert all(route["InstanceId"] == {"Ref": instance_id} for route in routes)
    assert _default_routes(default_synth, vpc.isolated_subnets) == []


def test_standard_egress_is_a_nat_gateway_with_its_address(standard_synth: Synth, full_synth: Synth) -> None:
    assert not standard_synth.of_type("AWS::EC2::Instance")
    ((gateway_id, gateway),) = standard_synth.of_type("AWS::EC2::NatGateway").items()
    (eip_id,) = standard_synth.of_type("AWS::EC2::EIP")
    routes = _default_routes(standard_synth, standard_synth.stack.network.vpc.private_subnets)

    assert gateway["Properties"]["AllocationId"] == {"Fn::GetAtt": [eip_id, "AllocationId"]}
    assert all(route["NatGatewayId"] == {"Ref": gateway_id} for route in routes)
    assert len(full_synth.of_type("AWS::EC2::NatGateway")) == 2  # -c nat_gateways=2
