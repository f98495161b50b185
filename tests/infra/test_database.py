"""The database: private, encrypted, backed up, credentials generated and rotated, and reachable
on 5432 only from the application's own security groups."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.infra.synth import Synth


def synth_parameter_groups(synth: Synth) -> list[dict[str, Any]]:
    return [group["Properties"] for group in synth.of_type("AWS::RDS::DBParameterGroup").values()]


def test_the_rds_proxy_is_on_by_default_outside_dev(default_synth: Synth, full_synth: Synth) -> None:
    from infra.config import InfraConfig

    assert not default_synth.of_type("AWS::RDS::DBProxy")
    assert full_synth.of_type("AWS::RDS::DBProxy")
    assert InfraConfig(environment="staging").use_db_proxy is True
    assert InfraConfig(environment="prod", db_proxy=False).use_db_proxy is False
    assert InfraConfig().use_db_proxy is False


def _instance(synth: Synth) -> dict[str, Any]:
    instances = synth.of_type("AWS::RDS::DBInstance")
    assert len(instances) == 1
    return next(iter(instances.values()))["Properties"]


def test_database_is_private_encrypted_postgres_16_with_backups(default_synth: Synth) -> None:
    instance = _instance(default_synth)

    assert instance["Engine"] == "postgres"
    assert instance["EngineVersion"] == "16"  # the major version; RDS applies minor upgrades
    parameters = next(iter(synth_parameter_groups(default_synth)))
    assert parameters["Family"] == "postgres16"
    assert instance["PubliclyAccessible"] is False
    assert instance["StorageEncrypted"] is True
    assert instance["BackupRetentionPeriod"] >= 1
    assert instance["DBInstanceClass"] == "db.t4g.micro"


def test_database_lives_in_subnets_without_a_route_out(default_synth: Synth) -> None:
    subnet_group = next(iter(default_synth.of_type("AWS::RDS::DBSubnetGroup").values()))
    subnet_ids = {ref["Ref"] for ref in subnet_group["Properties"]["SubnetIds"]}
    isolated = {
        default_synth.logical_id(subnet) for subnet in default_synth.stack.network.vpc.isolated_subnets
    }

    assert subnet_ids == isolated
    routed_tables = {
        route["Properties"]["RouteTableId"]["Ref"]
        for route in default_synth.of_type("AWS::EC2::Route").values()
    }
    associations = default_synth.of_type("AWS::EC2::SubnetRouteTableAssociation").values()
    for association in associations:
        if association["Properties"]["SubnetId"]["Ref"] in subnet_ids:
            assert association["Properties"]["RouteTableId"]["Ref"] not in routed_tables


def test_credentials_are_generated_into_secrets_manager_and_rotated(
    default_synth: Synth, template: Template
) -> None:
    attachment = next(iter(default_synth.of_type("AWS::SecretsManager::SecretTargetAttachment").values()))[
        "Properties"
    ]
    secret = default_synth.resources[attachment["SecretId"]["Ref"]]["Properties"]

    assert "SecretString" not in secret
    assert "GenerateSecretString" in secret
    password = _instance(default_synth)["MasterUserPassword"]
    assert "{{resolve:secretsmanager:" in str(password)
    template.has_resource_properties(
        "AWS::SecretsManager::RotationSchedule",
        {"RotationRules": {"ScheduleExpression": "rate(30 days)"}},
    )


def test_deletion_protection_follows_the_environment(default_synth: Synth, full_synth: Synth) -> None:
    assert _instance(default_synth)["DeletionProtection"] is False
    assert _instance(full_synth)["DeletionProtection"] is True
    assert _instance(full_synth)["MultiAZ"] is True
    for synth in (default_synth, full_synth):
        instance_id = synth.logical_id(synth.stack.database.instance)
        assert synth.resources[instance_id]["DeletionPolicy"] == "Snapshot"


def _ingress_sources(synth: Synth, group_id: str) -> list[dict[str, Any]]:
    rules = []
    group = synth.resources[group_id]["Properties"]
    rules += group.get("SecurityGroupIngress", [])
    for rule in synth.of_type("AWS::EC2::SecurityGroupIngress").values():
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}:
            rules.append(rule["Properties"])
    return rules


def _app_security_groups(synth: Synth) -> set[str]:
    stack = synth.stack
    return {
        synth.logical_id(group)
        for group in (
            stack.api_function.security_group,
            stack.ingest_function.security_group,
            stack.migrate_function.security_group,
            stack.streaming.security_group,
            stack.admin.security_group,
        )
    }


def _rotation_security_group(synth: Synth) -> str:
    rotation = synth.stack.database.rotation.node.find_child("SecurityGroup")
    return synth.logical_id(rotation)


def test_only_the_functions_service_and_rotation_reach_the_database(default_synth: Synth) -> None:
    db_group = default_synth.logical_id(default_synth.stack.database.security_group)

    rules = _ingress_sources(default_synth, db_group)

    assert all("CidrIp" not in rule and "CidrIpv6" not in rule for rule in rules)
    sources = {rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in rules}
    assert sources == _app_security_groups(default_synth) | {_rotation_security_group(default_synth)}
    for rule in rules:
        assert rule["IpProtocol"] == "tcp"
        if isinstance(rule["FromPort"], int):  # the rotation rule refers to the endpoint port
            assert rule["FromPort"] == rule["ToPort"] == 5432
    # No egress: CDK's placeholder rule (to 255.255.255.255/32) stands for "nothing".
    egress = default_synth.resources[db_group]["Properties"].get("SecurityGroupEgress", [])
    assert all(rule.get("CidrIp") == "255.255.255.255/32" for rule in egress)


def test_with_a_proxy_clients_reach_only_the_proxy_and_the_proxy_the_database(
    full_synth: Synth,
) -> None:
    """Only the proxy, the rotation function and the streaming tasks' event-log listener (LISTEN,
    which the proxy does not carry) reach the instance itself."""
    database = full_synth.stack.database
    assert database.proxy_security_group is not None
    db_group = full_synth.logical_id(database.security_group)
    proxy_group = full_synth.logical_id(database.proxy_security_group)

    db_sources = {
        rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in _ingress_sources(full_synth, db_group)
    }
    proxy_rules = _ingress_sources(full_synth, proxy_group)

    streaming_group = full_synth.logical_id(full_synth.stack.streaming.security_group)
    assert db_sources == {proxy_group, _rotation_security_group(full_synth), streaming_group}
    assert {rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in proxy_rules} == (
        _app_security_groups(full_synth)
    )
    assert all(rule["FromPort"] == rule["ToPort"] == 5432 for rule in proxy_rules)
    proxy = next(iter(full_synth.of_type("AWS::RDS::DBProxy").values()))["Properties"]
    assert proxy["RequireTLS"] is True
