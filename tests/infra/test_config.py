"""Deployment settings from CDK context: defaults deploy a small system; bad values fail early."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, InfraConfig
from tests.infra.synth import cdk_json_context
from ytresearch.config import DEFAULT_MODEL


def _from(context: dict[str, Any], environ: dict[str, str] | None = None) -> InfraConfig:
    return InfraConfig.from_context(context.get, environ or {})


def test_cdk_json_defaults_are_a_small_dev_system() -> None:
    config = _from(cdk_json_context())

    assert config.environment == "dev"
    assert config.nat_gateways == 1
    assert config.db_instance_type == "t4g.micro"
    assert (config.fargate_cpu, config.fargate_memory_mib) == (256, 512)
    assert config.deletion_protection is False
    assert config.https is True  # CloudFront's *.cloudfront.net certificate, no domain needed
    assert config.cloudfront is True
    assert config.use_db_proxy is False  # dev
    assert config.cors_origins == ()
    assert config.region == "us-east-1"
    assert config.account is None  # synth needs no credentials


def test_every_cdk_json_setting_is_a_known_key() -> None:
    known = set(InfraConfig.__dataclass_fields__) | {"tags"}
    ours = {key for key in cdk_json_context() if not key.startswith("@")}

    assert ours <= known


def test_the_model_default_comes_from_the_domain_package_not_cdk_json() -> None:
    config = _from(cdk_json_context())

    assert "model" not in cdk_json_context()  # one source of truth: ytresearch.config.DEFAULT_MODEL
    assert config.model == DEFAULT_MODEL
    assert _from({"model": "claude-other"}).model == "claude-other"  # -c model=... still overrides


def test_command_line_strings_are_parsed() -> None:
    config = _from(
        {
            "environment": "prod",
            "nat_gateways": "2",
            "db_proxy": "true",
            "cors_origins": "https://127.0.0.1:8443, http://localhost:5173",
            "certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abcd-1234",
            "domain_name": "stream.example.org",
            "api_max_concurrency": "30",
        }
    )

    assert config.nat_gateways == 2
    assert config.db_proxy is True
    assert config.cors_origins == ("https://127.0.0.1:8443", "http://localhost:5173")
    assert config.deletion_protection is True  # prod default
    assert config.https is True
    assert config.use_db_proxy is True
    assert config.api_max_concurrency == 30


def test_account_and_region_come_from_the_cdk_environment() -> None:
    config = _from(
        {"region": "eu-west-1"},
        {"CDK_DEFAULT_ACCOUNT": "210987654321", "CDK_DEFAULT_REGION": "eu-central-1"},
    )

    assert (config.account, config.region) == ("210987654321", "eu-central-1")
    assert _from({"region": "eu-west-1"}).region == "eu-west-1"


def test_an_empty_string_means_unset() -> None:
    config = _from({"certificate_arn": "", "alarm_email": " "})

    assert config.certificate_arn is None
    assert config.alarm_email is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("environment", "qa", "environment must be one of"),
        ("nat_gateways", "0", "nat_gateways"),
        ("nat_gateways", "two", "'nat_gateways' must be a whole number"),
        ("db_proxy", "maybe", "'db_proxy' must be true or false"),
        ("alb_idle_timeout_seconds", "60", "alb_idle_timeout_seconds"),
        ("container_stop_timeout_seconds", "60", "uvicorn graceful shutdown"),
        ("container_stop_timeout_seconds", "300", "at most 120"),
        ("fargate_memory_mib", "4096", "not a Fargate size"),
        ("cors_origins", "*", "no path, no wildcard"),
        ("cors_origins", "https://localhost:5173/app", "no path, no wildcard"),
        ("certificate_arn", "not-an-arn", "ACM certificate ARN"),
        ("log_retention_days", "31", "log_retention_days must be one of"),
        ("ingest_max_concurrency", "1", "ingest_max_concurrency"),
        ("api_timeout_seconds", "60", "HTTP API limit"),
        ("api_max_concurrency", "-1", "api_max_concurrency"),
        ("domain_name", "Not A Name", "lower-case DNS name"),
        ("cloudfront_prefix_list_id", "prefix", "prefix list id"),
        ("monthly_budget_usd", "-5", "monthly_budget_usd"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _from({key: value})


def test_extra_tags_come_from_json() -> None:
    assert _from({"tags": '{"team": "research"}'}).extra_tags == {"team": "research"}
    assert _from({"tags": {"cost-center": 42}}).extra_tags == {"cost-center": "42"}
    with pytest.raises(ConfigError, match="tags"):
        _from({"tags": "team=research"})


def test_stack_name_carries_the_environment() -> None:
    assert _from({"environment": "staging"}).stack_name == "YtResearch-staging"


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_outside_dev_a_plain_http_public_endpoint_is_refused(environment: str) -> None:
    with pytest.raises(ConfigError, match="refuses a plain-HTTP public endpoint"):
        _from({"environment": environment, "cloudfront": "false"})

    assert _from({"environment": "dev", "cloudfront": "false"}).https is False  # trials only
    assert _from({"environment": environment}).https is True  # CloudFront


def test_a_certificate_behind_cloudfront_needs_the_name_it_covers() -> None:
    arn = "arn:aws:acm:us-east-1:123456789012:certificate/abcd-1234"

    with pytest.raises(ConfigError, match="needs domain_name"):
        _from({"certificate_arn": arn})
    with pytest.raises(ConfigError, match="domain_name needs certificate_arn"):
        _from({"domain_name": "stream.example.org"})
    assert _from({"certificate_arn": arn, "cloudfront": "false"}).https is True


def test_ingest_timeout_and_batch_fit_the_worst_case_and_the_queue() -> None:
    config = _from(cdk_json_context())

    assert config.ingest_batch_size == 1
    assert config.ingest_timeout_seconds >= 360  # one attempt's worst case (config.py comment)
    assert 6 * config.ingest_timeout_seconds <= 43_200


def test_dev_is_lean_and_staging_and_prod_are_standard_by_default() -> None:
    lean = _from(cdk_json_context())
    standard = InfraConfig(environment="prod")

    assert lean.resolved_profile == "lean"
    assert (lean.nat_instances, lean.vpc_origin, lean.fargate_spot, lean.essential_monitoring) == (
        True,
        True,
        True,
        True,
    )
    assert lean.snap_start is False
    assert InfraConfig(environment="staging").resolved_profile == "standard"
    assert standard.resolved_profile == "standard"
    assert (standard.nat_instances, standard.vpc_origin, standard.fargate_spot) == (False, False, False)
    assert standard.essential_monitoring is False and standard.snap_start is True


def test_the_profile_is_chosen_with_context() -> None:
    assert _from({"environment": "prod", "profile": "lean"}).lean is True
    assert _from({"profile": "standard"}).lean is False
    # Without CloudFront there is no VPC origin: the load balancer is the endpoint.
    assert _from({"cloudfront": "false"}).vpc_origin is False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("profile", "cheap", "profile must be one of lean, standard"),
        ("nat_instance_type", "t3.nano", "Graviton"),
        ("nat_instance_type", "nano", "Graviton"),
        ("api_snap_start", "sometimes", "'api_snap_start' must be true or false"),
    ],
)
def test_bad_profile_settings_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _from({key: value})
