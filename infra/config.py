"""Deployment settings, read from CDK context (``cdk.json`` or ``-c key=value``).

Every key has a default that deploys a small, cheap system. ``-c`` values arrive as strings, so
each reader accepts both the JSON type from cdk.json and its string form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from ytresearch.config import DEFAULT_MODEL

ENVIRONMENTS = ("dev", "staging", "prod")
# What a deployment spends while nobody uses it (README: "What it costs at idle"). ``lean`` (dev's
# default): a NAT instance, an internal load balancer reached through a CloudFront VPC origin, the
# streaming task on Fargate Spot, the CRUD function without SnapStart, the essential alarms and no
# dashboard. ``standard`` (staging's and prod's): NAT gateways, a public load balancer open only to
# CloudFront, on-demand Fargate, SnapStart, every alarm and a dashboard. Both keep every feature.
PROFILES = ("lean", "standard")
DEFAULT_REGION = "us-east-1"
ARCHITECTURES = ("ARM64", "X86_64")
# Fargate accepts these memory sizes (MiB) for each CPU size (units).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
# ECS caps a container's stopTimeout at 120 s on Fargate.
FARGATE_MAX_STOP_TIMEOUT = 120
# A Fargate Spot interruption is a SIGTERM two minutes before the task is stopped: the same drain
# as any stop, so it must end within this too (it ends within the stop timeout, at most 120 s).
FARGATE_SPOT_NOTICE_SECONDS = 120
# After SIGTERM the service drains: running replies get this long to finish (YTR_DRAIN_GRACE_SECONDS),
# then readers are told to reconnect and uvicorn closes within UVICORN_CLOSE_SECONDS more
# (streaming_service/serve.py), all inside the container's stop timeout.
DRAIN_GRACE_SECONDS = 90
UVICORN_CLOSE_SECONDS = 10
UVICORN_GRACEFUL_SECONDS = DRAIN_GRACE_SECONDS + UVICORN_CLOSE_SECONDS
STREAM_PING_SECONDS = 15
# The API function's concurrency cap by default: sized against db.t4g.micro, which PostgreSQL on
# RDS gives about 80-110 connections (LEAST(DBInstanceClassMemory/9531392, 5000)); see the README's
# connection budget.
DEFAULT_API_MAX_CONCURRENCY = 20
# Worst case of one ingest attempt (the code's own defaults, shared/config.py): transcript list and
# fetch, 3 attempts each at 10 s plus backoff (~70 s); oEmbed and the Data API at 10 s each (20 s);
# the summary, 60 s per Claude call and 3 retries plus backoff (~250 s); database round trips
# (~20 s). About 360 s: the function gets 420 s, the code stops starting work before its deadline.
DEFAULT_INGEST_TIMEOUT_SECONDS = 420

T = TypeVar("T")
# Cognito's rule for callback and sign-out URLs: HTTPS, or plain HTTP to localhost; no fragment.
_SIGN_IN_URL = re.compile(r"(https://[^\s#/]+|http://localhost(:\d+)?)(/[^\s#]*)?")


class ConfigError(ValueError):
    """A context value is missing, malformed or out of range."""


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"context {key!r} must be true or false, got {value!r}")


def _as_int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"context {key!r} must be a whole number, got {value!r}")
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"context {key!r} must be a whole number, got {value!r}") from None


def _as_str(key: str, value: Any) -> str:
    if not isinstance(value, str | int | float):
        raise ConfigError(f"context {key!r} must be a string, got {value!r}")
    return str(value).strip()


def _as_list(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        items = [_as_str(key, item) for item in value]
    else:
        items = _as_str(key, value).split(",")
    return tuple(item.strip() for item in items if item.strip())


def _optional(reader: Callable[[str, Any], T]) -> Callable[[str, Any], T | None]:
    def read(key: str, value: Any) -> T | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return reader(key, value)

    return read


_READERS: dict[type | str, Callable[[str, Any], Any]] = {
    "bool": _as_bool,
    "int": _as_int,
    "str": _as_str,
    "str | None": _optional(_as_str),
    "bool | None": _optional(_as_bool),
    "tuple[str, ...]": _as_list,
    "tuple[str, ...] | None": _optional(_as_list),
}


@dataclass(frozen=True, kw_only=True)
class InfraConfig:
    """Everything the stack needs to know, validated. Field names are the context keys."""

    environment: str = "dev"
    account: str | None = None
    region: str = DEFAULT_REGION

    # Cost profile (PROFILES); None: lean in dev, standard elsewhere.
    profile: str | None = None

    # Network
    max_azs: int = 2
    nat_gateways: int = 1  # NAT gateways, or NAT instances in the lean profile
    # lean's NAT instance: the smallest Graviton type (the image is Amazon Linux 2023 for arm64).
    nat_instance_type: str = "t4g.nano"
    availability_zones: tuple[str, ...] | None = None

    # Database
    db_instance_type: str = "t4g.micro"
    db_allocated_storage_gib: int = 20
    db_max_allocated_storage_gib: int = 50
    db_backup_retention_days: int = 7
    db_multi_az: bool = False
    db_deletion_protection: bool | None = None  # None: on for prod, off elsewhere
    db_proxy: bool | None = None  # None: on outside dev (staging, prod), off in dev
    db_rotation_days: int = 30

    # Queues and functions
    api_memory_mib: int = 1024
    api_timeout_seconds: int = 29  # API Gateway HTTP APIs stop waiting after 30 s
    # Reserved concurrency of the CRUD function: each concurrent invocation holds one database
    # connection (NullPool), so this caps the function's share of the connection budget.
    api_max_concurrency: int = DEFAULT_API_MAX_CONCURRENCY
    # SnapStart on the CRUD function (about $4/month for its snapshot cache); None: on in the
    # standard profile, off in lean.
    api_snap_start: bool | None = None
    ingest_memory_mib: int = 1024
    ingest_timeout_seconds: int = DEFAULT_INGEST_TIMEOUT_SECONDS
    # One video per invocation: a batch of n needs n times the worst case inside one timeout, and
    # a record the deadline cuts off waits a whole visibility timeout before its retry.
    ingest_batch_size: int = 1
    ingest_max_concurrency: int = 2
    ingest_max_receive_count: int = 5
    migrate_timeout_seconds: int = 300

    # HTTP API
    api_throttle_rate: int = 20
    api_throttle_burst: int = 40
    cors_origins: tuple[str, ...] = ()

    # Streaming service
    fargate_cpu: int = 256
    fargate_memory_mib: int = 512
    fargate_architecture: str = "ARM64"
    fargate_desired_count: int = 1
    fargate_max_count: int = 3
    fargate_cpu_target_percent: int = 60
    # Scale out when the tasks average more open chat streams than this (ActiveStreams metric).
    fargate_streams_per_task: int = 40
    alb_idle_timeout_seconds: int = 300
    deregistration_delay_seconds: int = 120
    container_stop_timeout_seconds: int = FARGATE_MAX_STOP_TIMEOUT
    container_insights: bool = False
    certificate_arn: str | None = None
    # The DNS name ``certificate_arn`` covers, pointed (CNAME/alias) at the load balancer: CloudFront
    # then reaches the origin over HTTPS at this name. Without it the origin leg is HTTP.
    domain_name: str | None = None
    # CloudFront (HTTPS on *.cloudfront.net) in front of the streaming load balancer. Off: the load
    # balancer is the public endpoint (HTTPS with certificate_arn; plain HTTP only in dev).
    cloudfront: bool = True
    # The managed prefix list com.amazonaws.global.cloudfront.origin-facing differs per region;
    # None looks its id up at deploy time (a custom resource), so synth needs no credentials.
    cloudfront_prefix_list_id: str | None = None

    # Sign-in (Cognito)
    # Where the hosted UI may send browsers back after sign-in / sign-out (authorization code
    # flow). Cognito accepts https:// URLs, and http:// only for localhost (the local page).
    auth_callback_urls: tuple[str, ...] = ("http://localhost:8000/",)
    auth_logout_urls: tuple[str, ...] = ("http://localhost:8000/",)
    cognito_domain_prefix: str | None = None  # None: ytresearch-<environment>-<account id>
    cognito_threat_protection: bool = False  # the Plus feature plan, billed per active user

    # Application
    model: str = DEFAULT_MODEL  # YTR_MODEL; one source of truth in the domain package
    log_level: str = "INFO"
    transcript_proxy: bool = False

    # Operations
    log_retention_days: int = 30
    alarm_email: str | None = None
    # AWS Budgets: alert the alarm topic at 80% of actual and 100% of forecast monthly cost (0: none).
    monthly_budget_usd: int = 200

    # Packaging: false skips `pip install` into the Lambda bundles (tests: no network, no Docker)
    bundle_dependencies: bool = True
    # cdk-nag AwsSolutions checks on every synth (unacknowledged findings fail the synth)
    nag: bool = True

    extra_tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigError("invalid deployment settings: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        problems: list[str] = []
        if self.environment not in ENVIRONMENTS:
            problems.append(f"environment must be one of {', '.join(ENVIRONMENTS)}")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            problems.append(f"region {self.region!r} is not an AWS region name")
        if self.account is not None and not re.fullmatch(r"\d{12}", self.account):
            problems.append("account must be a 12-digit AWS account id")
        if self.profile is not None and self.profile not in PROFILES:
            problems.append(f"profile must be one of {', '.join(PROFILES)}")
        if not re.fullmatch(r"[a-z]+\d+g[a-z]*\.[a-z0-9]+", self.nat_instance_type):
            problems.append(
                "nat_instance_type must be a Graviton (arm64) type like t4g.nano: the NAT image is "
                "Amazon Linux 2023 for arm64"
            )
        if not 1 <= self.max_azs <= 6:
            problems.append("max_azs must be between 1 and 6")
        if not 1 <= self.nat_gateways <= self.max_azs:
            # Functions and tasks live in private subnets and must reach Anthropic and YouTube.
            problems.append("nat_gateways must be at least 1 and at most max_azs")
        if self.availability_zones is not None and len(self.availability_zones) < 2:
            problems.append("availability_zones needs at least two zones (RDS subnet groups)")
        if self.db_allocated_storage_gib < 20:
            problems.append("db_allocated_storage_gib must be at least 20 (RDS gp3 minimum)")
        if self.db_max_allocated_storage_gib < self.db_allocated_storage_gib:
            problems.append("db_max_allocated_storage_gib must be >= db_allocated_storage_gib")
        if not 1 <= self.db_backup_retention_days <= 35:
            problems.append("db_backup_retention_days must be between 1 and 35")
        if not 1 <= self.db_rotation_days <= 365:
            problems.append("db_rotation_days must be between 1 and 365")
        if not 1 <= self.api_timeout_seconds <= 30:
            problems.append("api_timeout_seconds must be between 1 and 30 (HTTP API limit)")
        if not 1 <= self.ingest_timeout_seconds <= 900:
            problems.append("ingest_timeout_seconds must be between 1 and 900")
        if 6 * self.ingest_timeout_seconds > 43_200:
            problems.append("ingest_timeout_seconds * 6 exceeds the SQS visibility limit (12 h)")
        if not 1 <= self.ingest_batch_size <= 10:
            problems.append("ingest_batch_size must be between 1 and 10")
        if not 2 <= self.ingest_max_concurrency <= 1000:
            problems.append("ingest_max_concurrency must be between 2 and 1000 (SQS limit)")
        if not 1 <= self.ingest_max_receive_count <= 1000:
            problems.append("ingest_max_receive_count must be between 1 and 1000")
        if not 1 <= self.migrate_timeout_seconds <= 900:
            problems.append("migrate_timeout_seconds must be between 1 and 900")
        for memory, name in ((self.api_memory_mib, "api"), (self.ingest_memory_mib, "ingest")):
            if not 128 <= memory <= 10_240:
                problems.append(f"{name}_memory_mib must be between 128 and 10240")
        if not 0 <= self.api_max_concurrency <= 1000:
            problems.append("api_max_concurrency must be between 0 (no cap) and 1000")
        if self.fargate_streams_per_task < 1:
            problems.append("fargate_streams_per_task must be at least 1")
        if self.monthly_budget_usd < 0:
            problems.append("monthly_budget_usd must be 0 (no budget) or a positive amount")
        if self.api_throttle_rate < 1 or self.api_throttle_burst < 1:
            problems.append("api_throttle_rate and api_throttle_burst must be positive")
        for origin in self.cors_origins:
            if not re.fullmatch(r"https?://[^/\s*]+", origin):
                problems.append(
                    f"cors_origins entry {origin!r} must be a scheme and host like "
                    "https://app.your-domain (no path, no wildcard)"
                )
        if self.fargate_memory_mib not in FARGATE_SIZES.get(self.fargate_cpu, ()):
            problems.append(
                f"fargate_cpu={self.fargate_cpu} with fargate_memory_mib="
                f"{self.fargate_memory_mib} is not a Fargate size"
            )
        if self.fargate_architecture not in ARCHITECTURES:
            problems.append(f"fargate_architecture must be one of {', '.join(ARCHITECTURES)}")
        if not 1 <= self.fargate_desired_count <= self.fargate_max_count:
            problems.append("fargate_desired_count must be between 1 and fargate_max_count")
        if not 10 <= self.fargate_cpu_target_percent <= 90:
            problems.append("fargate_cpu_target_percent must be between 10 and 90")
        if not 8 * STREAM_PING_SECONDS <= self.alb_idle_timeout_seconds <= 4000:
            # Streams ping every 15 s; the idle timeout must outlast several missed pings.
            problems.append("alb_idle_timeout_seconds must be between 120 and 4000")
        if not 0 <= self.deregistration_delay_seconds <= 3600:
            problems.append("deregistration_delay_seconds must be between 0 and 3600")
        if not UVICORN_GRACEFUL_SECONDS < self.container_stop_timeout_seconds <= 120:
            problems.append(
                "container_stop_timeout_seconds must exceed the uvicorn graceful shutdown "
                f"({UVICORN_GRACEFUL_SECONDS} s) and be at most {FARGATE_MAX_STOP_TIMEOUT}"
            )
        if self.certificate_arn is not None and not re.fullmatch(
            r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+", self.certificate_arn
        ):
            problems.append("certificate_arn must be an ACM certificate ARN")
        if self.domain_name is not None:
            if not re.fullmatch(
                r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", self.domain_name
            ):
                problems.append("domain_name must be a lower-case DNS name like stream.example.org")
            if self.certificate_arn is None:
                problems.append("domain_name needs certificate_arn (an ACM certificate that covers it)")
        if self.cloudfront and self.certificate_arn is not None and self.domain_name is None:
            # CloudFront checks the origin's certificate against the origin's name; the load
            # balancer's own *.elb.amazonaws.com name is never on an ACM certificate.
            problems.append("certificate_arn behind CloudFront needs domain_name (the name it covers)")
        if not self.cloudfront and self.certificate_arn is None and self.environment != "dev":
            problems.append(
                f"{self.environment} refuses a plain-HTTP public endpoint: keep cloudfront=true "
                "(HTTPS on *.cloudfront.net) or give certificate_arn"
            )
        if self.cloudfront_prefix_list_id is not None and not re.fullmatch(
            r"pl-[0-9a-f]{8,17}", self.cloudfront_prefix_list_id
        ):
            problems.append("cloudfront_prefix_list_id must be a prefix list id like pl-3b927c52")
        for name, urls in (
            ("auth_callback_urls", self.auth_callback_urls),
            ("auth_logout_urls", self.auth_logout_urls),
        ):
            if not urls:
                problems.append(f"{name} needs at least one URL")
            for url in urls:
                if not _SIGN_IN_URL.fullmatch(url):
                    problems.append(
                        f"{name} entry {url!r} must be an https:// URL (http:// only for localhost), "
                        "without a fragment"
                    )
        if self.cognito_domain_prefix is not None and (
            not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", self.cognito_domain_prefix)
            or any(word in self.cognito_domain_prefix for word in ("aws", "amazon", "cognito"))
        ):
            problems.append(
                "cognito_domain_prefix must be lower-case letters, digits and hyphens (at most 63) "
                "and must not contain aws, amazon or cognito"
            )
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append("log_level must be DEBUG, INFO, WARNING or ERROR")
        if self.log_retention_days not in VALID_RETENTION_DAYS:
            problems.append(
                "log_retention_days must be one of " + ", ".join(str(days) for days in VALID_RETENTION_DAYS)
            )
        if not self.model.strip():
            problems.append("model must not be empty")
        return problems

    @property
    def is_production(self) -> bool:
        return self.environment == "prod"

    @property
    def deletion_protection(self) -> bool:
        if self.db_deletion_protection is None:
            return self.is_production
        return self.db_deletion_protection

    @property
    def https(self) -> bool:
        """The public streaming endpoint speaks HTTPS (CloudFront, or a certificate on the ALB)."""
        return self.cloudfront or self.certificate_arn is not None

    @property
    def use_db_proxy(self) -> bool:
        if self.db_proxy is None:
            return self.environment != "dev"
        return self.db_proxy

    @property
    def resolved_profile(self) -> str:
        if self.profile is None:
            return "lean" if self.environment == "dev" else "standard"
        return self.profile

    @property
    def lean(self) -> bool:
        return self.resolved_profile == "lean"

    @property
    def nat_instances(self) -> bool:
        """Egress through NAT instances (lean) rather than NAT gateways."""
        return self.lean

    @property
    def vpc_origin(self) -> bool:
        """An internal load balancer that CloudFront reaches through a VPC origin (lean)."""
        return self.lean and self.cloudfront

    @property
    def fargate_spot(self) -> bool:
        """The streaming tasks run on Fargate Spot with no on-demand base (lean)."""
        return self.lean

    @property
    def snap_start(self) -> bool:
        if self.api_snap_start is None:
            return not self.lean
        return self.api_snap_start

    @property
    def essential_monitoring(self) -> bool:
        """Only the alarms that say something users see is broken, and no dashboard (lean)."""
        return self.lean

    @property
    def stack_name(self) -> str:
        return f"YtResearch-{self.environment}"

    @classmethod
    def from_context(
        cls, context: Callable[[str], Any], environ: Mapping[str, str] | None = None
    ) -> InfraConfig:
        """Build from a context getter (``node.try_get_context``) and the CDK environment.

        The account and region come from ``CDK_DEFAULT_ACCOUNT``/``CDK_DEFAULT_REGION`` (set by
        the CDK CLI from your credentials), then from context, then the region defaults to
        us-east-1 and the account stays unresolved, so synth needs no credentials.
        """
        environ = environ or {}
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name == "extra_tags":
                continue
            raw = context(item.name)
            if item.name == "account":
                raw = environ.get("CDK_DEFAULT_ACCOUNT") or raw
            elif item.name == "region":
                raw = environ.get("CDK_DEFAULT_REGION") or raw
            if raw is None:
                continue
            reader = _READERS[str(item.type)]
            value = reader(item.name, raw)
            if value is not None or "None" in str(item.type):
                values[item.name] = value
        if (tags := context("tags")) is not None:
            if isinstance(tags, str):  # -c 'tags={"team":"research"}'
                try:
                    tags = json.loads(tags)
                except ValueError:
                    raise ConfigError("context 'tags' must be a JSON object") from None
            if not isinstance(tags, Mapping):
                raise ConfigError("context 'tags' must be an object of tag names to values")
            values["extra_tags"] = {str(key): str(value) for key, value in tags.items()}
        return cls(**values)


# CloudWatch Logs accepts only these retention periods.
VALID_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
