"""An HTTP API (API Gateway v2) in front of the CRUD function.

The stack builds two over the same function:

- the main API, where ``/{proxy+}`` has a JWT authorizer (Cognito): API Gateway rejects requests
  without a valid access token carrying the API scope before the function runs;
- the API-key API for scripts, with no authorizer. An HTTP API JWT authorizer answers 401 to any
  request without an ``Authorization`` header, so API-key clients cannot share the main API's
  routes; on their own API the application authenticates every ``/v1`` request itself (the
  X-API-Key against the stored digests, or a bearer token verified in full), 401 otherwise.

The application verifies bearer tokens on both, so a route left open by mistake is still closed.
"""

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
    apigwv2.CorsHttpMethod.PATCH,
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
    """Routes ``GET /health`` (always open) and ``ANY /{proxy+}`` to ``handler`` on the
    ``$default`` stage, with JSON access logs, stage throttling and CORS for ``cors_origins``
    (none: CORS off). With ``authorizer``, ``/{proxy+}`` requires it and ``authorization_scopes``.

    Exposes ``api``, ``stage``, ``access_logs`` and ``url``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        description: str,
        authorizer: apigwv2.IHttpRouteAuthorizer | None = None,
        authorization_scopes: Sequence[str] = (),
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
            description=description,
            create_default_stage=False,
            cors_preflight=cors,
        )
        integration = integrations.HttpLambdaIntegration(
            "Crud",
            handler,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            timeout=integration_timeout,
        )
        health = self.api.add_routes(
            path="/health", methods=[apigwv2.HttpMethod.GET], integration=integration
        )
        proxy = self.api.add_routes(
            path="/{proxy+}",
            methods=[apigwv2.HttpMethod.ANY],
            integration=integration,
            authorizer=authorizer,
            authorization_scopes=list(authorization_scopes) if authorizer is not None else None,
        )
        for route in health:
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "GET /health is open on purpose: it reports status, database state and version only "
                "(no user data) so uptime checks and operators can call it without credentials.",
            )
        if authorizer is not None and cors_origins:
            # Browsers send CORS preflights without credentials; on ANY /{proxy+} they would meet
            # the authorizer and fail, so OPTIONS gets its own open route (the app answers it).
            for route in self.api.add_routes(
                path="/{proxy+}", methods=[apigwv2.HttpMethod.OPTIONS], integration=integration
            ):
                acknowledge(
                    route,
                    "AwsSolutions-APIG4",
                    "OPTIONS is the CORS preflight, which browsers send without credentials by "
                    "standard; it returns only the allowed origins, methods and headers.",
                )
        if authorizer is None:
            for route in proxy:
                acknowledge(
                    route,
                    "AwsSolutions-APIG4",
                    "This API serves API-key clients (scripts), which a JWT authorizer would reject for "
                    "lacking an Authorization header; the application authenticates every /v1 request "
                    "(X-API-Key against hashed keys, or a fully verified Cognito token) and answers 401.",
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
