"""The admin function: reachable only through IAM, beside the database, named in the outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import Synth, function_by_handler, synthesize

HANDLER = "functions.admin.handler.handler"


def refers_to(value: Any, logical_id: str) -> bool:
    """Whether a template fragment mentions ``logical_id`` (Ref or Fn::GetAtt)."""
    text = json.dumps(value)
    return f'"Ref": "{logical_id}"' in text or f'["{logical_id}", ' in text


@pytest.fixture(scope="module")
def admin(default_synth: Synth) -> tuple[str, dict[str, Any]]:
    return function_by_handler(default_synth, HANDLER)


def test_the_admin_function_has_no_url_no_route_and_no_resource_policy(
    default_synth: Synth, admin: tuple[str, dict[str, Any]]
) -> None:
    logical_id, _ = admin

    urls = default_synth.of_type("AWS::Lambda::Url")
    permissions = default_synth.of_type("AWS::Lambda::Permission")
    integrations = default_synth.of_type("AWS::ApiGatewayV2::Integration")
    event_sources = default_synth.of_type("AWS::Lambda::EventSourceMapping")

    assert not [k for k, r in urls.items() if refers_to(r, logical_id)]
    # No resource policy at all: only identities of this account that IAM allows can invoke it
    assert not [k for k, r in permissions.items() if refers_to(r, logical_id)]
    assert not [k for k, r in integrations.items() if refers_to(r, logical_id)]
    assert not [k for k, r in event_sources.items() if refers_to(r, logical_id)]


def test_the_admin_function_is_named_in_the_stack_outputs(
    default_synth: Synth, admin: tuple[str, dict[str, Any]]
) -> None:
    logical_id, _ = admin

    output = default_synth.template["Outputs"]["AdminFunctionName"]

    assert output["Value"] == {"Ref": logical_id}
    assert "ytr-admin --deployed" in output["Description"]


def test_the_admin_function_sits_beside_the_api_function_with_database_access(
    default_synth: Synth, admin: tuple[str, dict[str, Any]]
) -> None:
    _, function = admin
    _, api = function_by_handler(default_synth, "functions.api.handler.handler")
    props = function["Properties"]
    variables = props["Environment"]["Variables"]

    assert props["VpcConfig"]["SubnetIds"] == api["Properties"]["VpcConfig"]["SubnetIds"]
    assert props["Runtime"] == api["Properties"]["Runtime"]
    assert (
        variables["YTR_DATABASE_SECRET_ARN"]
        == api["Properties"]["Environment"]["Variables"]["YTR_DATABASE_SECRET_ARN"]
    )
    assert variables["YTR_DB_POOL_SIZE"] == "0"
    # Nothing it does not use: no model key, no queue
    assert "YTR_ANTHROPIC_SECRET_ARN" not in variables and "YTR_INGEST_QUEUE_URL" not in variables
    # It may read the database secret ...
    role = props["Role"]["Fn::GetAtt"][0]
    policies = [
        p
        for p in default_synth.of_type("AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert any("secretsmanager:GetSecretValue" in json.dumps(s["Action"]) for s in statements)
    assert not any(
        "lambda:" in json.dumps(s["Action"]) or "sqs:" in json.dumps(s["Action"]) for s in statements
    )
    # ... and connect to the database on 5432
    (security_group,) = props["VpcConfig"]["SecurityGroupIds"]
    ingress = [
        r["Properties"]
        for r in default_synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("SourceSecurityGroupId") == security_group
    ]
    assert [(i["FromPort"], i["ToPort"]) for i in ingress] == [(5432, 5432)]
    # ... once the schema is migrated
    depends = function.get("DependsOn", [])
    migrations = default_synth.logical_id(default_synth.stack.migrations.resource)
    assert migrations in depends


@pytest.fixture(scope="module")
def proxy_synth(synth_dir: Path) -> Synth:
    return synthesize({"db_proxy": "true"}, synth_dir / "admin-proxy")


def test_with_a_proxy_the_admin_function_connects_through_it_without_named_statements(
    proxy_synth: Synth,
) -> None:
    _, function = function_by_handler(proxy_synth, HANDLER)
    variables = function["Properties"]["Environment"]["Variables"]

    assert "YTR_DATABASE_HOST" in variables
    assert variables["YTR_DB_PREPARED_STATEMENTS"] == "false"
