"""Pricers for secrets, CloudWatch, scaling policies, KMS, VPC endpoints, Lambda and SQS polling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.cost.model import (
    SECONDS_PER_HOUR,
    LineItem,
    Prices,
    Resource,
    Template,
    UnpricedError,
    hourly,
    hours,
    money,
    monthly,
)


def price_secret(template: Template, logical_id: str, resource: Resource, prices: Prices) -> list[LineItem]:
    return [
        monthly(
            "Secrets Manager secrets", prices["secretsmanager"]["secret_month"], note=" each (+ API calls)"
        )
    ]


def _alarm_metrics(logical_id: str, properties: Mapping[str, Any]) -> tuple[int, bool]:
    """(metrics the alarm evaluates, high resolution)."""
    if "ThresholdMetricId" in properties:
        raise UnpricedError(f"{logical_id}: anomaly-detection alarms are not priced")
    if "MetricName" in properties:
        return 1, int(properties.get("Period", 60)) < 60
    stats = [q["MetricStat"] for q in properties.get("Metrics", []) if "MetricStat" in q]
    return len(stats), any(int(stat.get("Period", 60)) < 60 for stat in stats)


def price_alarm(template: Template, logical_id: str, resource: Resource, prices: Prices) -> list[LineItem]:
    metrics, high_resolution = _alarm_metrics(logical_id, resource.get("Properties", {}))
    if high_resolution:
        rate = prices["cloudwatch"]["high_resolution_alarm_metric_month"]
        return [monthly("CloudWatch high-resolution alarm metrics", rate, metrics, unit="metric-month")]
    rate = prices["cloudwatch"]["alarm_metric_month"]
    return [
        monthly("CloudWatch alarm metrics (one per metric an alarm evaluates)", rate, metrics, "metric-month")
    ]


def price_dashboard(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    return [monthly("CloudWatch dashboard", prices["cloudwatch"]["dashboard_month"])]


def price_scaling_policy(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    properties = resource.get("Properties", {})
    if properties.get("PolicyType") != "TargetTrackingScaling":
        raise UnpricedError(f"{logical_id}: only target-tracking scaling policies are priced")
    cloudwatch = prices["cloudwatch"]
    alarms = int(cloudwatch["alarms_per_target_tracking_policy"])
    items = [
        monthly(
            "CloudWatch alarms that target-tracking scaling policies create",
            cloudwatch["alarm_metric_month"],
            alarms,
            unit="alarm-month",
        )
    ]
    custom = properties["TargetTrackingScalingPolicyConfiguration"].get("CustomizedMetricSpecification")
    if custom is not None and not str(custom.get("Namespace", "")).startswith("AWS/"):
        items.append(
            monthly(
                f"CloudWatch custom metric `{custom['MetricName']}` (a scaling policy tracks it, so the "
                "tasks publish it every minute)",
                cloudwatch["custom_metric_month"],
                unit="metric-month",
            )
        )
    return items


def price_kms_key(template: Template, logical_id: str, resource: Resource, prices: Prices) -> list[LineItem]:
    return [monthly("KMS customer managed keys", prices["kms"]["key_month"], note=" each (+ requests)")]


def price_vpc_endpoint(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    properties = resource.get("Properties", {})
    if properties.get("VpcEndpointType", "Gateway") == "Gateway":
        return []  # S3 and DynamoDB gateway endpoints are free
    zones = len(properties.get("SubnetIds", []))
    return [
        hourly(
            "VPC interface endpoints, per AZ",
            prices["ec2"]["interface_endpoint_az_hour"],
            prices,
            zones,
            note=" + $0.01/GB",
        )
    ]


def price_lambda_version(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    properties = resource.get("Properties", {})
    if properties.get("ProvisionedConcurrencyConfig"):
        raise UnpricedError(f"{logical_id}: provisioned concurrency is not priced")
    found = template.target(properties.get("FunctionName"))
    if found is None:
        raise UnpricedError(f"{logical_id}: its function is not in this template")
    function_id, function = found
    snap_start = function.get("Properties", {}).get("SnapStart", {}).get("ApplyOn") == "PublishedVersions"
    if not snap_start:
        return []
    memory_gb = int(function["Properties"].get("MemorySize", 128)) / 1024
    seconds = hours(prices) * SECONDS_PER_HOUR
    rate = prices["lambda"]["snapstart_cache_gb_second"]
    return [
        LineItem(
            f"Lambda SnapStart cache, `{_construct_name(function_id)}` ({memory_gb:g} GB, one live version)",
            f"{money(rate)}/GB-second (+ restores)",
            1,
            memory_gb * seconds * rate,
        )
    ]


def _construct_name(logical_id: str) -> str:
    """``ApiFunction685AAB5B`` -> ``ApiFunction``: CDK's logical ids end in an 8-digit hash."""
    return (
        logical_id[:-8]
        if len(logical_id) > 8 and all(c in "0123456789ABCDEF" for c in logical_id[-8:])
        else logical_id
    )


def price_lambda_alias(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    if resource.get("Properties", {}).get("ProvisionedConcurrencyConfig"):
        raise UnpricedError(f"{logical_id}: provisioned concurrency is not priced")
    return []


def price_event_source(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    source = template.target(resource.get("Properties", {}).get("EventSourceArn"))
    if source is None or source[1]["Type"] != "AWS::SQS::Queue":
        return []  # stream sources (Kinesis, DynamoDB) are polled at no charge
    sqs = prices["sqs"]
    requests = int(sqs["lambda_pollers"]) * hours(prices) * SECONDS_PER_HOUR / int(sqs["long_poll_seconds"])
    return [
        monthly(
            f"SQS requests: Lambda long-polling an idle queue (~{requests / 1e6:.2f} million)",
            sqs["requests_per_million"],
            requests / 1e6,
            unit="million requests",
        )
    ]
