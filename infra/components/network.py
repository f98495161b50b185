"""The VPC: public subnets for NAT (and the public load balancer of the standard profile), private
subnets (with egress through NAT) for the functions, tasks and the internal load balancer of the
lean profile, isolated subnets for the database.

Egress goes through NAT gateways, or, with ``nat_instance_type``, through NAT instances: CDK's
NAT instance provider on Amazon Linux 2023 for arm64 (a maintained image, looked up from its public
SSM parameter at deploy time), in standard CPU credit mode so a busy month cannot add surplus
credit charges, with IMDSv2 required, an encrypted root volume, and a security group that admits
only the private subnets. A NAT instance costs about a tenth of a NAT gateway; it is one instance
per AZ used, not a managed service: EC2 recovers it on host failure, and a deploy that finds a
newer image replaces it (egress pauses for a minute or two).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aspects
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge, skip_checkov

# Amazon Linux 2023's root volume (its AMI snapshot size): the device and size the NAT instance
# keeps, now encrypted (the AMI's own mapping is not).
NAT_ROOT_DEVICE = "/dev/xvda"
NAT_ROOT_VOLUME_GIB = 8


class Network(Construct):
    """Exposes ``vpc``, the subnet selections the other constructs place themselves in, and
    ``nat_instances`` (empty with NAT gateways)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        max_azs: int,
        nat_gateways: int,
        flow_log_bucket: s3.IBucket,
        availability_zones: Sequence[str] | None = None,
        nat_instance_type: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        nat_provider: ec2.NatInstanceProviderV2 | None = None
        if nat_instance_type is not None:
            nat_provider = ec2.NatProvider.instance_v2(
                instance_type=ec2.InstanceType(nat_instance_type),
                machine_image=ec2.MachineImage.latest_amazon_linux2023(
                    cpu_type=ec2.AmazonLinuxCpuType.ARM_64
                ),
                # Inbound is opened below to the private subnets only.
                default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
                credit_specification=ec2.CpuCredits.STANDARD,
                associate_public_ip_address=True,
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=None if availability_zones else max_azs,
            availability_zones=list(availability_zones) if availability_zones else None,
            nat_gateways=nat_gateways,
            nat_gateway_provider=nat_provider,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
                ec2.SubnetConfiguration(
                    name="Database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
            # Locking down the (unused) default security group needs a custom-resource Lambda
            # whose log group CDK cannot give a retention; nothing here uses the default group.
            restrict_default_security_group=False,
        )
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, "vpc-flow-logs/"),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.compute_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.database_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.public_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
        self.nat_instances: list[ec2.Instance] = []
        if nat_provider is not None:
            self._harden_nat_instances(nat_provider)

    def _harden_nat_instances(self, provider: ec2.NatInstanceProviderV2) -> None:
        for subnet in self.vpc.private_subnets:
            provider.connections.allow_from(
                ec2.Peer.ipv4(subnet.ipv4_cidr_block),
                ec2.Port.all_tcp(),
                "Egress of the private subnets (HTTPS to AWS APIs, Anthropic, YouTube; proxies)",
            )
        self.nat_instances = [
            child
            for subnet in self.vpc.public_subnets
            if isinstance(child := subnet.node.try_find_child("NatInstance"), ec2.Instance)
        ]
        assert self.nat_instances, "the NAT instance provider placed no instance"
        Aspects.of(self.vpc).add(ec2.InstanceRequireImdsv2Aspect())
        for instance in self.nat_instances:
            instance.instance.block_device_mappings = [
                ec2.CfnInstance.BlockDeviceMappingProperty(
                    device_name=NAT_ROOT_DEVICE,
                    ebs=ec2.CfnInstance.EbsProperty(
                        volume_size=NAT_ROOT_VOLUME_GIB,
                        volume_type="gp3",
                        encrypted=True,
                        delete_on_termination=True,
                    ),
                )
            ]
            acknowledge(
                instance,
                "AwsSolutions-EC28",
                "Detailed (one-minute) EC2 monitoring costs about $2 a month per instance, more "
                "than the NAT instance itself; the five-minute basic metrics and EC2's status "
                "checks (with automatic recovery) are enough to see a stuck NAT instance.",
            )
            skip_checkov(
                instance,
                "CKV_AWS_88",
                "A NAT instance is the VPC's way out to the internet: it needs its public address "
                "(in a public subnet, admitting only the private subnets, with no inbound rule from "
                "anywhere else), as a NAT gateway needs its Elastic IP.",
            )
            acknowledge(
                instance,
                "AwsSolutions-EC29",
                "The NAT instance holds no state: CloudFormation owns it and replaces it when a "
                "newer Amazon Linux image is published, and `cdk destroy` must be able to delete "
                "it, which termination protection would refuse.",
            )
