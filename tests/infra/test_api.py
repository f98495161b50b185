"""The HTTP APIs: the main one behind a Cognito JWT authorizer, the API-key one checked by the app,
both to the CRUD function, with access logs, throttling, CORS and outputs."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from tests.infra.synth import Synth


def _api_id(synth: Synth, api: Any) -> str:
    return synth.logical_id(api)


def _routes(synth: Synth, api_id: str) -> dict[str, dict[str, Any]]:
    return {
        route["Properties"]["RouteKey"]: route["Properties"]
        for route in synth.of_type("AWS::ApiGatewayV2::Route").values()
        if route["Properties"]["ApiId"] == {"Ref": api_id}
    }


def _assert_both_apis_proxy_to(synth: Synth, target: dict[str, Any]) -> None:
    integrations = synth.of_type("AWS::ApiGatewayV2::Integration")

    for api in (synth.stack.http_api.api, synth.stack.key_api.api):
        routes = _routes(synth, _api_id(synth, api))
        assert set(routes) == {"GET /health", "ANY /{proxy+}"}
        for route in routes.values():
            integration = integrations[route["Target"]["Fn::Join"][1][1]["Ref"]]["Properties"]
            assert integration["IntegrationType"] == "AWS_PROXY"
            assert integration["IntegrationUri"] == target
            assert integration["PayloadFormatVersion"] == "2.0"
    template = Template.from_json(synth.template)
    template.resource_count_is("AWS::ApiGatewayV2::Api", 2)
    template.resource_count_is("AWS::Lambda::Permission", 4 + 1)  # 2 routes x 2 APIs, and Cognito's trigger


def test_both_apis_route_health_and_proxy_to_the_crud_function_alias(standard_synth: Synth) -> None:
    alias = standard_synth.stack.api_function.alias
    assert alias is not None  # SnapStart: the APIs invoke the live alias, never $LATEST

    _assert_both_apis_proxy_to(standard_synth, {"Ref": standard_synth.logical_id(alias)})


def test_lean_apis_route_health_and_proxy_to_the_crud_function(default_synth: Synth) -> None:
    assert default_synth.stack.api_function.alias is None  # no SnapStart in the lean profile
    function_id = default_synth.logical_id(default_synth.stack.api_function.function)

    _assert_both_apis_proxy_to(default_synth, {"Fn::GetAtt": [function_id, "Arn"]})


def test_the_main_api_requires_a_cognito_access_token_with_the_api_scope(default_synth: Synth) -> None:
    api_id = _api_id(default_synth, default_synth.stack.http_api.api)
    (authorizer,) = default_synth.of_type("AWS::ApiGatewayV2::Authorizer").values()
    props = authorizer["Properties"]
    pool_id = default_synth.logical_id(default_synth.stack.auth.user_pool)
    client_id = default_synth.logical_id(default_synth.stack.auth.client)
    routes = _routes(default_synth, api_id)

    assert props["ApiId"] == {"Ref": api_id}
    assert props["AuthorizerType"] == "JWT"
    assert props["IdentitySource"] == ["$request.header.Authorization"]
    assert props["JwtConfiguration"]["Audience"] == [{"Ref": client_id}]
    issuer = json.dumps(props["JwtConfiguration"]["Issuer"])
    assert "cognito-idp." in issuer and pool_id in issuer
    proxy = routes["ANY /{proxy+}"]
    assert proxy["AuthorizationType"] == "JWT"
    assert proxy["AuthorizerId"] == {
        "Ref": next(iter(default_synth.of_type("AWS::ApiGatewayV2::Authorizer")))
    }
    assert proxy["AuthorizationScopes"] == ["ytresearch/api"]
    assert routes["GET /health"].get("AuthorizationType", "NONE") == "NONE"  # open on purpose


def test_the_api_key_api_has_no_authorizer(default_synth: Synth) -> None:
    routes = _routes(default_synth, _api_id(default_synth, default_synth.stack.key_api.api))

    for route in routes.values():
        assert route.get("AuthorizationType", "NONE") == "NONE"
        assert "AuthorizerId" not in route


def test_cors_preflight_has_an_open_route_only_where_the_authorizer_would_block_it(
    default_synth: Synth, full_synth: Synth
) -> None:
    main = _routes(full_synth, _api_id(full_synth, full_synth.stack.http_api.api))
    keyed = _routes(full_synth, _api_id(full_synth, full_synth.stack.key_api.api))

    assert main["OPTIONS /{proxy+}"].get("AuthorizationType", "NONE") == "NONE"
    assert "OPTIONS /{proxy+}" not in keyed  # API Gateway answers preflights there itself
    assert "OPTIONS /{proxy+}" not in _routes(
        default_synth, _api_id(default_synth, default_synth.stack.http_api.api)
    )


def test_stages_log_access_as_json_and_throttle(default_synth: Synth) -> None:
    stages = default_synth.of_type("AWS::ApiGatewayV2::Stage")
    expected_logs = {
        default_synth.logical_id(default_synth.stack.http_api.access_logs),
        default_synth.logical_id(default_synth.stack.key_api.access_logs),
    }

    assert len(stages) == 2
    seen_logs = set()
    for stage in stages.values():
        props = stage["Properties"]
        assert props["StageName"] == "$default"
        assert props["AutoDeploy"] is True
        seen_logs.add(props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0])
        log_format = json.loads(props["AccessLogSettings"]["Format"])
        assert log_format["requestId"] == "$context.requestId"
        assert log_format["status"] == "$context.status"
        throttling = props["DefaultRouteSettings"]
        assert throttling["ThrottlingRateLimit"] == default_synth.stack.config.api_throttle_rate
        assert throttling["ThrottlingBurstLimit"] == default_synth.stack.config.api_throttle_burst
    assert seen_logs == expected_logs  # each API logs to its own group


def test_cors_is_off_without_origins_and_exact_with_them(default_synth: Synth, full_synth: Synth) -> None:
    for api in default_synth.of_type("AWS::ApiGatewayV2::Api").values():
        assert "CorsConfiguration" not in api["Properties"]
    full_apis = list(full_synth.of_type("AWS::ApiGatewayV2::Api").values())

    assert len(full_apis) == 2
    for api in full_apis:
        cors = api["Properties"]["CorsConfiguration"]
        assert cors["AllowOrigins"] == ["http://localhost:5173", "http://127.0.0.1:8000"]
        assert {"x-api-key", "authorization"} <= set(cors["AllowHeaders"])
        assert "*" not in cors["AllowOrigins"]


def test_outputs_name_the_urls_sign_in_settings_and_secrets(default_synth: Synth, full_synth: Synth) -> None:
    outputs = default_synth.template["Outputs"]

    assert {
        "ApiUrl",
        "KeyApiUrl",
        "StreamingUrl",
        "UserPoolId",
        "UserPoolClientId",
        "CognitoRegion",
        "CognitoIssuer",
        "HostedUiUrl",
        "AnthropicSecretName",
        "DatabaseSecretName",
    } <= set(outputs)
    assert outputs["ApiUrl"]["Value"] != outputs["KeyApiUrl"]["Value"]
    assert "TranscriptProxySecretName" not in outputs
    assert "TranscriptProxySecretName" in full_synth.template["Outputs"]
