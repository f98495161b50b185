"""Pricing one template: every resource type is priced (``PRICERS``) or known to cost nothing at
idle (``FREE_AT_IDLE``, with the reason); anything else raises :class:`UnpricedError`."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from infra.cost import compute, services
from infra.cost.model import PRICES_FILE, Estimate, LineItem, Prices, Resource, Template, UnpricedError

# The lean profile must idle at or under this (issue 21; tests/infra/test_cost.py).
LEAN_BUDGET_USD = 45.0

# Types that cost nothing while the system idles, and why. Usage (requests, bytes, GB stored)
# is not idle cost; the report's last paragraph names what usage adds.
FREE_AT_IDLE: dict[str, str] = {
    "AWS::ApiGatewayV2::Api": "HTTP APIs bill per request",
    "AWS::ApiGatewayV2::Authorizer": "part of the HTTP API",
    "AWS::ApiGatewayV2::Integration": "part of the HTTP API",
    "AWS::ApiGatewayV2::Route": "part of the HTTP API",
    "AWS::ApiGatewayV2::Stage": "part of the HTTP API (access logs bill per GB ingested)",
    "AWS::ApplicationAutoScaling::ScalableTarget": "Application Auto Scaling has no charge of its own",
    "AWS::Budgets::Budget": "the first two budgets of an account are free (no budget actions here)",
    "AWS::CloudFront::Distribution": "bills per request and GB transferred",
    "AWS::CloudFront::VpcOrigin": "VPC origins have no charge of their own",
    "AWS::Cognito::UserPool": "bills per monthly active user (the first 10,000 are free on Essentials)",
    "AWS::Cognito::UserPoolClient": "part of the user pool",
    "AWS::Cognito::UserPoolDomain": "part of the user pool",
    "AWS::Cognito::UserPoolResourceServer": "part of the user pool",
    "AWS::EC2::FlowLog": "bills per GB of flow records delivered",
    "AWS::EC2::InternetGateway": "no charge (public IPv4 addresses are priced where they are)",
    "AWS::EC2::LaunchTemplate": "no charge",
    "AWS::EC2::Route": "no charge",
    "AWS::EC2::RouteTable": "no charge",
    "AWS::EC2::SecurityGroup": "no charge",
    "AWS::EC2::SecurityGroupEgress": "no charge",
    "AWS::EC2::SecurityGroupIngress": "no charge",
    "AWS::EC2::Subnet": "no charge",
    "AWS::EC2::SubnetRouteTableAssociation": "no charge",
    "AWS::EC2::VPC": "no charge",
    "AWS::EC2::VPCGatewayAttachment": "no charge",
    "AWS::ECS::ClusterCapacityProviderAssociations": "no charge",
    "AWS::ECS::TaskDefinition": "priced through the service that runs it",
    "AWS::ElasticLoadBalancingV2::Listener": "part of the load balancer",
    "AWS::ElasticLoadBalancingV2::ListenerRule": "part of the load balancer",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "part of the load balancer",
    "AWS::IAM::InstanceProfile": "IAM has no charge",
    "AWS::IAM::Policy": "IAM has no charge",
    "AWS::IAM::Role": "IAM has no charge",
    "AWS::Lambda::Function": "bills per request and GB-second (SnapStart is priced on its versions)",
    "AWS::Lambda::Permission": "no charge",
    "AWS::Logs::LogGroup": "bills per GB ingested and stored; the retention setting is free",
    "AWS::RDS::DBParameterGroup": "no charge",
    "AWS::RDS::DBProxyTargetGroup": "priced through its proxy",
    "AWS::RDS::DBSubnetGroup": "no charge",
    "AWS::S3::Bucket": "bills per GB stored and per request",
    "AWS::S3::BucketPolicy": "no charge",
    "AWS::SNS::Subscription": "email notifications: the first 1,000 a month are free",
    "AWS::SNS::Topic": "bills per publish",
    "AWS::SNS::TopicPolicy": "no charge",
    "AWS::SQS::Queue": "bills per request (Lambda's polling is priced on its event source mapping)",
    "AWS::SQS::QueuePolicy": "no charge",
    "AWS::SecretsManager::ResourcePolicy": "part of the secret",
    "AWS::SecretsManager::RotationSchedule": "one Lambda invocation a rotation",
    "AWS::SecretsManager::SecretTargetAttachment": "part of the secret",
    "AWS::Serverless::Application": "the rotation function's nested stack: a Lambda invoked once a rotation",
    "Custom::AWS": "a Lambda-backed lookup that runs during deploys",
    "Custom::SchemaMigrations": "a Lambda-backed custom resource that runs during deploys",
}


Pricer = Callable[[Template, str, Resource, Prices], list[LineItem]]
PRICERS: dict[str, Pricer] = {
    "AWS::EC2::NatGateway": compute.price_nat_gateway,
    "AWS::EC2::EIP": compute.price_eip,
    "AWS::EC2::Instance": compute.price_instance,
    "AWS::EC2::VPCEndpoint": services.price_vpc_endpoint,
    "AWS::ElasticLoadBalancingV2::LoadBalancer": compute.price_load_balancer,
    "AWS::RDS::DBInstance": compute.price_db_instance,
    "AWS::RDS::DBProxy": compute.price_db_proxy,
    "AWS::ECS::Service": compute.price_ecs_service,
    "AWS::ECS::Cluster": compute.price_ecs_cluster,
    "AWS::SecretsManager::Secret": services.price_secret,
    "AWS::CloudWatch::Alarm": services.price_alarm,
    "AWS::CloudWatch::Dashboard": services.price_dashboard,
    "AWS::ApplicationAutoScaling::ScalingPolicy": services.price_scaling_policy,
    "AWS::KMS::Key": services.price_kms_key,
    "AWS::Lambda::Version": services.price_lambda_version,
    "AWS::Lambda::Alias": services.price_lambda_alias,
    "AWS::Lambda::EventSourceMapping": services.price_event_source,
}


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def unknown_types(template: Mapping[str, Any]) -> set[str]:
    """Resource types in ``template`` that are neither priced nor known to be free at idle."""
    types = {resource["Type"] for resource in Template(template).resources.values()}
    return types - set(PRICERS) - set(FREE_AT_IDLE)


def estimate(template: Mapping[str, Any], prices: Prices | None = None) -> Estimate:
    """The itemised idle cost of ``template``; :class:`UnpricedError` if anything is not priced."""
    prices = prices if prices is not None else load_prices()
    unknown = unknown_types(template)
    if unknown:
        raise UnpricedError(
            "resource types neither priced nor known to be free at idle (infra/cost/estimate.py): "
            + ", ".join(sorted(unknown))
        )
    parsed = Template(template)
    merged: dict[tuple[str, str], LineItem] = {}
    for logical_id, resource in parsed.resources.items():
        pricer = PRICERS.get(resource["Type"])
        if pricer is None:
            continue
        for line in pricer(parsed, logical_id, resource, prices):
            key = (line.item, line.price)
            if key in merged:
                previous = merged[key]
                line = LineItem(
                    line.item, line.price, previous.quantity + line.quantity, previous.monthly + line.monthly
                )
            merged[key] = line
    items = sorted(merged.values(), key=lambda line: (-round(line.monthly, 2), line.item))
    return Estimate(items=tuple(items))
