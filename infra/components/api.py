"""The HTTP API (API Gateway v2) in front of the CRUD function."""

from __future__ import annotations

import json
from collections.abc import Sequence

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "sourceIp": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationStatus": "$context.integrationStatus",
        "integrationError": "$context.integrationErrorMessage",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)
CORS_HEADERS = ("content-type", "x-api-key", "authorization", "last-event-id")
CORS_METHODS = (
    apigwv2.CorsHttpMethod.GET,
    apigwv2.CorsHttpMethod.POST,
    apigwv2.CorsHttpMethod.DELETE,
    apigwv2.CorsHttpMethod.OPTIONS,
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """JSON access logs into ``log_group`` (IAccessLogSettings is an interface, not a struct)."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT)


class HttpApi(Construct):
    """Routes ``GET /health`` and ``ANY /{proxy+}`` to ``handler`` on the ``$default`` stage, with
    JSON access logs, stage throttling and CORS for ``cors_origins`` (none: CORS off).

    Exposes ``api``, ``stage``, ``access_logs`` and ``url``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        integration_timeout: Duration,
        cors_origins: Sequence[str],
        throttle_rate: int,
        throttle_burst: int,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        cors = (
            apigwv2.CorsPreflightOptions(
                allow_origins=list(cors_origins),
                allow_methods=list(CORS_METHODS),
                allow_headers=list(CORS_HEADERS),
                expose_headers=["retry-after"],
                max_age=Duration.hours(1),
            )
            if cors_origins
            else None
        )
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="YouTube Research Tool REST API (CRUD Lambda)",
            create_default_stage=False,
            cors_preflight=cors,
        )
        integration = integrations.HttpLambdaIntegration(
            "Crud",
            handler,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            timeout=integration_timeout,
        )
        routes = [
            *self.api.add_routes(path="/health", methods=[apigwv2.HttpMethod.GET], integration=integration),
            *self.api.add_routes(path="/{proxy+}", methods=[apigwv2.HttpMethod.ANY], integration=integration),
        ]
        for route in routes:
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "Authentication is done by the application (X-API-Key checked against hashed "
                "keys in the database, 401 otherwise) so that /health stays open and errors "
                "keep the API's JSON shape; a Cognito JWT authorizer is planned.",
            )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate, burst_limit=throttle_burst),
            access_log_settings=_AccessLogSettings(self.access_logs),
        )
        self.url = self.stage.url
