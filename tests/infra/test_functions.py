"""The Lambda functions: runtime, architecture, placement, configuration, ordering."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.synth import REPO_ROOT, Synth, container_environment, function_by_handler

HANDLERS = (
    "functions.api.handler.handler",
    "functions.ingest.handler.handler",
    "functions.migrate.handler.handler",
)


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_runs_python_3_13_on_arm64(default_synth: Synth, handler: str) -> None:
    _, function = function_by_handler(default_synth, handler)

    assert function["Properties"]["Runtime"] == "python3.13"
    assert function["Properties"]["Architectures"] == ["arm64"]


@pytest.mark.parametrize("handler", HANDLERS)
def test_handler_module_exists_in_the_repo(handler: str) -> None:
    module = handler.rsplit(".", 1)[0]

    assert (REPO_ROOT / Path(*module.split("."))).with_suffix(".py").is_file()


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_is_in_private_subnets_with_its_own_security_group(
    default_synth: Synth, handler: str
) -> None:
    _, function = function_by_handler(default_synth, handler)
    private = [
        {"Ref": default_synth.logical_id(subnet)}
        for subnet in default_synth.stack.network.vpc.private_subnets
    ]

    vpc_config = function["Properties"]["VpcConfig"]
    assert vpc_config["SubnetIds"] == private
    assert len(vpc_config["SecurityGroupIds"]) == 1


@pytest.mark.parametrize("handler", HANDLERS)
def test_function_logs_json_with_powertools_settings(default_synth: Synth, handler: str) -> None:
    _, function = function_by_handler(default_synth, handler)
    props = function["Properties"]

    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["ApplicationLogLevel"] == "INFO"
    variables = props["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "ytresearch"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert variables["YTR_DB_POOL_SIZE"] == "0"
    assert variables["YTR_ENVIRONMENT"] == "dev"
    assert variables["YTR_DATABASE_NAME"] == "ytresearch"


@pytest.mark.parametrize("handler", HANDLERS[:2])
def test_api_and_ingest_get_the_application_settings(default_synth: Synth, handler: str) -> None:
    _, function = function_by_handler(default_synth, handler)
    variables = function["Properties"]["Environment"]["Variables"]

    assert variables["YTR_QUEUE_BACKEND"] == "sqs"
    assert variables["YTR_TRANSCRIPT_SOURCE"] == "youtube"
    assert variables["YTR_MODEL"] == default_synth.stack.config.model
    assert "YTR_CORS_ORIGINS" not in variables  # no origins configured: unset, not empty
    for name in ("YTR_DATABASE_SECRET_ARN", "YTR_ANTHROPIC_SECRET_ARN", "YTR_INGEST_QUEUE_URL"):
        assert isinstance(variables[name], dict), f"{name} should reference a resource"
    assert "YTR_PROXY_SECRET_ARN" not in variables


def test_optional_settings_reach_the_functions(full_synth: Synth) -> None:
    _, function = function_by_handler(full_synth, "functions.ingest.handler.handler")
    variables = function["Properties"]["Environment"]["Variables"]

    assert variables["YTR_CORS_ORIGINS"] == "http://localhost:5173,http://127.0.0.1:8000"
    assert variables["YTR_ENVIRONMENT"] == "prod"
    assert isinstance(variables["YTR_PROXY_SECRET_ARN"], dict)
    # Only ingest fetches transcripts through the proxy.
    _, api = function_by_handler(full_synth, "functions.api.handler.handler")
    assert "YTR_PROXY_SECRET_ARN" not in api["Properties"]["Environment"]["Variables"]


@pytest.mark.parametrize("handler", HANDLERS[:2])
def test_serving_functions_wait_for_the_schema_migrations(default_synth: Synth, handler: str) -> None:
    _, function = function_by_handler(default_synth, handler)
    migrations_id = default_synth.logical_id(default_synth.stack.migrations.resource)

    assert migrations_id in function["DependsOn"]


def test_migrations_run_when_the_bundle_inputs_change(default_synth: Synth) -> None:
    migrations_id = default_synth.logical_id(default_synth.stack.migrations.resource)
    resource = default_synth.resources[migrations_id]

    assert resource["Type"] == "Custom::SchemaMigrations"
    migrate_id, migrate = function_by_handler(default_synth, "functions.migrate.handler.handler")
    code_key = migrate["Properties"]["Code"]["S3Key"]
    assert code_key == f"{resource['Properties']['MigrationsHash']}.zip"
    provider = default_synth.resources[resource["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    assert migrate_id in str(provider["Properties"]["Environment"])
    # The custom resource runs after the database and its ingress rules exist.
    database_id = default_synth.logical_id(default_synth.stack.database.instance)
    assert database_id in resource["DependsOn"]


def test_each_function_has_its_own_bundle(default_synth: Synth) -> None:
    assets = {
        function_by_handler(default_synth, handler)[1]["Properties"]["Code"]["S3Key"] for handler in HANDLERS
    }

    assert len(assets) == 3


def test_prepared_statements_are_off_behind_the_rds_proxy(default_synth: Synth, full_synth: Synth) -> None:
    """Named prepared statements pin RDS Proxy sessions: the stack turns them off with the proxy."""
    for handler in HANDLERS[:2]:
        _, plain = function_by_handler(default_synth, handler)
        _, proxied = function_by_handler(full_synth, handler)
        assert "YTR_DB_PREPARED_STATEMENTS" not in plain["Properties"]["Environment"]["Variables"]
        assert proxied["Properties"]["Environment"]["Variables"]["YTR_DB_PREPARED_STATEMENTS"] == "false"
    assert "YTR_DB_PREPARED_STATEMENTS" not in container_environment(default_synth)
    assert container_environment(full_synth)["YTR_DB_PREPARED_STATEMENTS"] == "false"


def test_the_event_log_listener_connects_to_the_instance_past_the_rds_proxy(
    default_synth: Synth, full_synth: Synth
) -> None:
    """RDS Proxy does not carry a LISTEN session's notifications: the streaming tasks' listener
    connects to the instance itself, which admits them on 5432."""
    assert "YTR_DATABASE_LISTEN_HOST" not in container_environment(default_synth)
    host = container_environment(full_synth)["YTR_DATABASE_LISTEN_HOST"]
    (instance_id,) = full_synth.of_type("AWS::RDS::DBInstance")
    assert host == {"Fn::GetAtt": [instance_id, "Endpoint.Address"]}

    (streaming_group,) = [
        name
        for name, group in full_synth.of_type("AWS::EC2::SecurityGroup").items()
        if name.startswith("Streaming") and "LoadBalancer" not in name
    ]
    direct = [
        rule["Properties"]
        for rule in full_synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"].get("SourceSecurityGroupId") == {"Fn::GetAtt": [streaming_group, "GroupId"]}
        and "listener" in rule["Properties"].get("Description", "")
    ]
    assert len(direct) == 1 and direct[0]["FromPort"] == 5432
