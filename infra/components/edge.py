"""CloudFront in front of the streaming load balancer: HTTPS on the default ``*.cloudfront.net``
name with no custom domain, and a load balancer that serves only CloudFront. The page the
streaming service serves calls the REST routes on the same origin: ``serve_rest_api`` sends those
to the HTTP API and keeps the streaming routes under /v1/ on the load balancer.

Streams pass through untouched: caching is off (the managed CachingDisabled policy), every viewer
method and header goes to the origin (AllViewerExceptHostHeader: Authorization, X-API-Key,
Last-Event-ID, and the WebSocket upgrade headers, which CloudFront honours on its own), and edge
compression is off so CloudFront never holds SSE bytes back to compress them.

Only CloudFront reaches the load balancer. An internet-facing one (the standard profile) is twice
checked: its security group admits only the managed prefix list
``com.amazonaws.global.cloudfront.origin-facing`` on the listener port, and the listener forwards
only requests carrying a secret header that this distribution adds (generated in Secrets Manager);
everything else gets the listener's default 403. An internal one (``vpc_origin``, the lean profile)
has no public address at all: CloudFront reaches it through a VPC origin, which only distributions
of this account can use, and its security group admits the same prefix list (CDK's documented rule
for VPC origins), so it needs no shared secret.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.config import STREAM_PING_SECONDS
from infra.nag import acknowledge, skip_checkov

ORIGIN_HEADER = "X-Origin-Verify"
AWS_CUSTOM_RESOURCE_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"
_BASIC_EXECUTION_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# checkov's Lambda checks on CDK's AwsCustomResource provider, which CDK builds and owns.
PROVIDER_CHECKOV_REASONS = {
    "CKV_AWS_117": "CDK's AwsCustomResource provider only calls the regional EC2 API during deploys "
    "and touches no private resource, so it needs no VPC attachment (and no NAT path).",
    "CKV_AWS_116": "CDK's AwsCustomResource provider is invoked synchronously by CloudFormation, which "
    "reports its failures on the stack event; a dead-letter queue would never receive anything.",
    "CKV_AWS_115": "CDK's AwsCustomResource provider runs once per deploy; reserving concurrency for it "
    "would take capacity from the account without protecting anything.",
}
CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
# CloudFront's origin read timeout is both the wait for the first byte and the longest silence
# between two bytes of a response. Streams send a comment ping every STREAM_PING_SECONDS (15 s)
# and the SSE routes answer with headers at once, so the default 30 s would already pass; 60 s,
# the most CloudFront allows without a quota increase, tolerates three missed pings in a row.
ORIGIN_READ_TIMEOUT = Duration.seconds(60)
# How long CloudFront keeps an idle connection to the load balancer for reuse (default 5 s, at
# most 60 s). It must stay below the ALB idle timeout (at least 120 s, config.py) so CloudFront
# never reuses a connection the load balancer is closing.
ORIGIN_KEEPALIVE_TIMEOUT = Duration.seconds(60)
assert ORIGIN_READ_TIMEOUT.to_seconds() >= 4 * STREAM_PING_SECONDS


# Every behaviour passes requests through untouched (see the module docstring).
PASS_THROUGH: dict[str, Any] = {
    "viewer_protocol_policy": cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
    "allowed_methods": cloudfront.AllowedMethods.ALLOW_ALL,
    "cached_methods": cloudfront.CachedMethods.CACHE_GET_HEAD,
    "cache_policy": cloudfront.CachePolicy.CACHING_DISABLED,
    "origin_request_policy": cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
    "response_headers_policy": cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
    "compress": False,  # compression would buffer SSE frames
}
# The streaming service's routes under /v1/ (its other paths, the page's among them, take the
# default behaviour); every other /v1/ path is the REST API's. A test compares these with both
# applications' routes.
STREAMING_PATHS = (
    "/v1/sessions/*/chat",
    "/v1/sessions/*/messages/stream",
    "/v1/sessions/*/ws",
    "/v1/sessions/*/events",
    "/v1/streams/*",
    "/v1/requests/*",
    "/v1/jobs/*/events",
)
REST_PATHS = "/v1/*"


class StreamingEdge(Construct):
    """Exposes ``distribution``, ``origin_secret`` (None with a VPC origin), ``prefix_list_id`` and
    ``url`` (https://...).

    It opens ``listener_port`` on the load balancer's security group to CloudFront's origin-facing
    servers only. Without ``vpc_origin``, ``listener`` must answer 403 by default: this construct
    adds the rule that forwards to ``target_group`` when the secret header matches. With
    ``origin_domain`` (a name on the listener's certificate that points at the load balancer)
    CloudFront connects over HTTPS; without it, over HTTP to the load balancer's own DNS name.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        load_balancer: elbv2.ApplicationLoadBalancer,
        listener: elbv2.ApplicationListener,
        listener_port: int,
        target_group: elbv2.ApplicationTargetGroup,
        origin_domain: str | None,
        prefix_list_id: str | None,
        removal_policy: RemovalPolicy,
        log_retention: logs.RetentionDays,
        vpc_origin: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix_list_id = prefix_list_id or self._look_up_prefix_list(log_retention, removal_policy)
        load_balancer.connections.allow_from(
            ec2.Peer.prefix_list(self.prefix_list_id),
            ec2.Port.tcp(listener_port),
            "CloudFront origin-facing servers only",
        )
        https_origin = origin_domain is not None
        protocol_policy = (
            cloudfront.OriginProtocolPolicy.HTTPS_ONLY
            if https_origin
            else cloudfront.OriginProtocolPolicy.HTTP_ONLY
        )
        self.origin_secret: secretsmanager.Secret | None = None
        origin: cloudfront.IOrigin
        if vpc_origin:
            origin = origins.VpcOrigin.with_application_load_balancer(
                load_balancer,
                domain_name=origin_domain,
                protocol_policy=protocol_policy,
                http_port=listener_port if not https_origin else 80,
                https_port=listener_port if https_origin else 443,
                origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
                read_timeout=ORIGIN_READ_TIMEOUT,
                keepalive_timeout=ORIGIN_KEEPALIVE_TIMEOUT,
                connection_timeout=Duration.seconds(10),
                connection_attempts=3,
            )
        else:
            origin = self._secret_header_origin(
                load_balancer=load_balancer,
                listener=listener,
                target_group=target_group,
                listener_port=listener_port,
                origin_domain=origin_domain,
                protocol_policy=protocol_policy,
                removal_policy=removal_policy,
            )
        self.origin = origin
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="YouTube Research Tool: the page, its REST API and streams (SSE, WebSocket)",
            default_behavior=cloudfront.BehaviorOptions(origin=origin, **PASS_THROUGH),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_ipv6=True,
        )
        self.url = f"https://{self.distribution.distribution_domain_name}"
        self._acknowledge(https_origin=https_origin, vpc_origin=vpc_origin)

    def serve_rest_api(self, api: apigwv2.IHttpApi) -> None:
        """Send the REST routes to ``api`` (the page calls them on this origin, with the same
        headers) and keep the streaming routes, which share their /v1/ prefix, on the load
        balancer. CloudFront tries behaviours in the order they are added."""
        api_origin = origins.HttpOrigin(
            Fn.select(2, Fn.split("/", api.api_endpoint)),  # https://<id>.execute-api.<region>...
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            read_timeout=Duration.seconds(30),  # API Gateway answers within its 30 s integration limit
            connection_timeout=Duration.seconds(10),
            connection_attempts=3,
        )
        for path in STREAMING_PATHS:
            self.distribution.add_behavior(path, self.origin, **PASS_THROUGH)
        self.distribution.add_behavior(REST_PATHS, api_origin, **PASS_THROUGH)

    def _secret_header_origin(
        self,
        *,
        load_balancer: elbv2.ApplicationLoadBalancer,
        listener: elbv2.ApplicationListener,
        target_group: elbv2.ApplicationTargetGroup,
        listener_port: int,
        origin_domain: str | None,
        protocol_policy: cloudfront.OriginProtocolPolicy,
        removal_policy: RemovalPolicy,
    ) -> cloudfront.IOrigin:
        """The internet-facing load balancer as an HTTP origin, forwarding only requests that carry
        the secret header this distribution adds."""
        self.origin_secret = secretsmanager.Secret(
            self,
            "OriginSecret",
            description="Header value CloudFront adds to every request to the streaming load balancer",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=removal_policy,
        )
        acknowledge(
            self.origin_secret,
            "AwsSolutions-SMG4",
            "The origin header value lives in two places that must change together (the "
            "distribution's origin and the listener rule); a rotation Lambda cannot update "
            "CloudFormation-owned resources, so it changes by replacing the secret in a deploy.",
            checkov="CKV_AWS_149",
        )
        header_value = self.origin_secret.secret_value.unsafe_unwrap()  # a dynamic reference
        listener.add_action(
            "FromCloudFront",
            priority=1,
            conditions=[elbv2.ListenerCondition.http_header(ORIGIN_HEADER, [header_value])],
            action=elbv2.ListenerAction.forward([target_group]),
        )

        https_origin = origin_domain is not None
        return origins.HttpOrigin(
            origin_domain or load_balancer.load_balancer_dns_name,
            protocol_policy=protocol_policy,
            http_port=listener_port if not https_origin else 80,
            https_port=listener_port if https_origin else 443,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            custom_headers={ORIGIN_HEADER: header_value},
            read_timeout=ORIGIN_READ_TIMEOUT,
            keepalive_timeout=ORIGIN_KEEPALIVE_TIMEOUT,
            connection_timeout=Duration.seconds(10),
            connection_attempts=3,
        )

    def _look_up_prefix_list(self, log_retention: logs.RetentionDays, removal_policy: RemovalPolicy) -> str:
        """The prefix list's id in this region, looked up at deploy time (no credentials at synth)."""
        lookup = cr.AwsCustomResource(
            self,
            "PrefixListLookup",
            on_update=cr.AwsSdkCall(
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={"Filters": [{"Name": "prefix-list-name", "Values": [CLOUDFRONT_PREFIX_LIST]}]},
                physical_resource_id=cr.PhysicalResourceId.of(CLOUDFRONT_PREFIX_LIST),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
                resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE
            ),
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(
                self, "PrefixListLookupLogs", retention=log_retention, removal_policy=removal_policy
            ),
        )
        acknowledge(
            lookup,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeManagedPrefixLists supports no resource-level permissions, so the lookup's "
            "only statement must name every resource; it can read prefix list metadata and nothing else.",
        )
        # The lookup runs in CDK's one shared provider function, a child of the stack.
        provider = Stack.of(self).node.try_find_child(AWS_CUSTOM_RESOURCE_PROVIDER_ID)
        assert provider is not None, "AwsCustomResource's provider function moved"
        acknowledge(
            provider,
            f"AwsSolutions-IAM4[Policy::{_BASIC_EXECUTION_POLICY}]",
            "CDK's AwsCustomResource provider has only AWSLambdaBasicExecutionRole, the AWS-maintained "
            "minimum for writing its own logs; its one API permission is the lookup's inline policy.",
        )
        for check_id, reason in PROVIDER_CHECKOV_REASONS.items():
            skip_checkov(provider, check_id, reason)
        return lookup.get_response_field("PrefixLists.0.PrefixListId")

    def _acknowledge(self, *, https_origin: bool, vpc_origin: bool) -> None:
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "The research tool serves signed-in users wherever they are; there is no country the "
            "service must not reach, so a geo restriction would only lock out travelling users.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "No AWS WAF web ACL by default (at least $5/month plus $1 per rule): every route needs "
            "an API key or a verified Cognito token, and the app enforces per-user rate limits.",
            checkov="CKV_AWS_68",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "Nothing is cached, so every request CloudFront serves reaches the load balancer, whose "
            "access logs (in the log archive bucket) already record each one with its client address.",
            checkov="CKV_AWS_86",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The default *.cloudfront.net certificate gives HTTPS without a custom domain, and "
            "CloudFront fixes its viewer policy at TLSv1; a custom domain would allow TLS 1.2 only.",
            checkov="CKV_AWS_174",
        )
        if not https_origin and not vpc_origin:  # cdk-nag checks custom (internet) origins only
            acknowledge(
                self.distribution,
                "AwsSolutions-CFR5",
                "Without a domain name on an ACM certificate the load balancer cannot present a "
                "certificate CloudFront accepts, so the origin leg is HTTP; the security group admits "
                "only CloudFront's servers and the listener only the secret header. Set domain_name "
                "and certificate_arn for HTTPS to the origin.",
            )
