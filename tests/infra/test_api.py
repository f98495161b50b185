"""The HTTP API: routes to the CRUD function, access logs, throttling, CORS, outputs."""

from __future__ import annotations

import json

from aws_cdk.assertions import Template

from tests.infra.synth import Synth, function_by_handler


def test_health_and_proxy_routes_go_to_the_crud_function(default_synth: Synth, template: Template) -> None:
    crud_id, _ = function_by_handler(default_synth, "functions.api.handler.handler")
    routes = {
        route["Properties"]["RouteKey"]: route["Properties"]
        for route in default_synth.of_type("AWS::ApiGatewayV2::Route").values()
    }
    (integration_id, integration), *others = default_synth.of_type("AWS::ApiGatewayV2::Integration").items()

    assert set(routes) == {"GET /health", "ANY /{proxy+}"}
    assert others == []
    for route in routes.values():
        assert route["Target"]["Fn::Join"][1][1] == {"Ref": integration_id}
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [crud_id, "Arn"]}
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    template.resource_count_is("AWS::Lambda::Permission", 2)


def test_default_stage_logs_access_as_json_and_throttles(default_synth: Synth) -> None:
    (stage,) = default_synth.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    log_group_id = default_synth.logical_id(default_synth.stack.http_api.access_logs)

    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert log_format["requestId"] == "$context.requestId"
    assert log_format["status"] == "$context.status"
    throttling = props["DefaultRouteSettings"]
    assert throttling["ThrottlingRateLimit"] == default_synth.stack.config.api_throttle_rate
    assert throttling["ThrottlingBurstLimit"] == default_synth.stack.config.api_throttle_burst


def test_cors_is_off_without_origins_and_exact_with_them(default_synth: Synth, full_synth: Synth) -> None:
    (api,) = default_synth.of_type("AWS::ApiGatewayV2::Api").values()
    (full_api,) = full_synth.of_type("AWS::ApiGatewayV2::Api").values()

    assert "CorsConfiguration" not in api["Properties"]
    cors = full_api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["http://localhost:5173", "http://127.0.0.1:8000"]
    assert "x-api-key" in cors["AllowHeaders"]
    assert "*" not in cors["AllowOrigins"]


def test_outputs_name_the_urls_and_the_secrets(default_synth: Synth, full_synth: Synth) -> None:
    outputs = default_synth.template["Outputs"]

    assert {"ApiUrl", "StreamingUrl", "AnthropicSecretName", "DatabaseSecretName"} <= set(outputs)
    assert "TranscriptProxySecretName" not in outputs
    assert "TranscriptProxySecretName" in full_synth.template["Outputs"]
