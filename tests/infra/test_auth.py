"""Sign-in: the Cognito user pool, its API scope, the app client, the hosted UI domain, the token
trigger that puts the scope into CLI tokens, and the settings the code gets to verify tokens."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.components.auth import API_SCOPE, TRIGGER_CODE
from infra.config import ConfigError, InfraConfig
from tests.infra.synth import Synth, cdk_json_context, container_environment, function_by_handler


def _one(synth: Synth, resource_type: str) -> dict[str, Any]:
    (resource,) = synth.of_type(resource_type).values()
    return resource


def _pool(synth: Synth) -> dict[str, Any]:
    props: dict[str, Any] = _one(synth, "AWS::Cognito::UserPool")["Properties"]
    return props


def _client(synth: Synth) -> dict[str, Any]:
    props: dict[str, Any] = _one(synth, "AWS::Cognito::UserPoolClient")["Properties"]
    return props


# ------------------------------------------------------------------ the user pool


def test_users_sign_in_with_email_and_are_invited_by_an_admin(default_synth: Synth) -> None:
    pool = _pool(default_synth)

    assert pool["UsernameAttributes"] == ["email"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["AutoVerifiedAttributes"] == ["email"]
    assert pool["AccountRecoverySetting"]["RecoveryMechanisms"] == [{"Name": "verified_email", "Priority": 1}]


def test_passwords_are_strong(default_synth: Synth) -> None:
    policy = _pool(default_synth)["Policies"]["PasswordPolicy"]

    assert policy["MinimumLength"] >= 12
    assert policy["RequireLowercase"] and policy["RequireUppercase"]
    assert policy["RequireNumbers"] and policy["RequireSymbols"]


def test_mfa_is_optional_with_an_authenticator_app_only(default_synth: Synth) -> None:
    pool = _pool(default_synth)

    assert pool["MfaConfiguration"] == "OPTIONAL"
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]  # no SMS: no SNS role, no per-message cost


def test_threat_protection_is_the_plus_plan_when_asked_for(default_synth: Synth, full_synth: Synth) -> None:
    default, full = _pool(default_synth), _pool(full_synth)

    assert default["UserPoolTier"] == "ESSENTIALS"  # the least that runs version 2 token triggers
    assert "UserPoolAddOns" not in default
    assert full["UserPoolTier"] == "PLUS"
    assert full["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}


def test_production_keeps_the_pool(default_synth: Synth, full_synth: Synth) -> None:
    dev = _one(default_synth, "AWS::Cognito::UserPool")
    prod = _one(full_synth, "AWS::Cognito::UserPool")

    assert dev["DeletionPolicy"] == "Delete" and dev["Properties"]["DeletionProtection"] == "INACTIVE"
    assert prod["DeletionPolicy"] == "Retain" and prod["Properties"]["DeletionProtection"] == "ACTIVE"


# ------------------------------------------------------------------ scope, client, domain


def test_a_resource_server_defines_the_api_scope(default_synth: Synth) -> None:
    server = _one(default_synth, "AWS::Cognito::UserPoolResourceServer")["Properties"]

    assert server["Identifier"] == API_SCOPE.split("/")[0]
    assert server["Scopes"] == [
        {"ScopeName": API_SCOPE.split("/")[1], "ScopeDescription": "Use the YouTube Research Tool API"}
    ]


def test_the_app_client_is_public_with_password_srp_and_code_flows(default_synth: Synth) -> None:
    client = _client(default_synth)

    assert client["GenerateSecret"] is False
    assert set(client["ExplicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    scopes = json.dumps(client["AllowedOAuthScopes"])
    assert "openid" in scopes and "/api" in scopes
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    assert (client["AccessTokenValidity"], client["TokenValidityUnits"]["AccessToken"]) == (60, "minutes")


def test_callback_urls_come_from_context_and_follow_the_https_page(
    default_synth: Synth, full_synth: Synth
) -> None:
    for synth in (default_synth, full_synth):
        assert synth.stack.edge is not None  # CloudFront is on by default
        distribution = synth.logical_id(synth.stack.edge.distribution)
        page = {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}, "/"]]}
        client = _client(synth)
        assert client["CallbackURLs"][-1] == page
        assert client["LogoutURLs"][-1] == page
    assert _client(default_synth)["CallbackURLs"][:-1] == ["http://localhost:8000/"]
    full = _client(full_synth)
    assert full["CallbackURLs"][:-1] == ["https://research.example.org/", "http://localhost:8000/"]
    assert full["LogoutURLs"][:-1] == ["https://research.example.org/"]


def test_the_hosted_ui_domain_is_unique_per_account_and_environment(
    default_synth: Synth, full_synth: Synth
) -> None:
    default = _one(default_synth, "AWS::Cognito::UserPoolDomain")["Properties"]["Domain"]
    full = _one(full_synth, "AWS::Cognito::UserPoolDomain")["Properties"]["Domain"]

    assert default == "ytresearch-dev-123456789012"  # the test synth runs with an account
    assert full == "ytresearch-prod-test"


# ------------------------------------------------------------------ the token trigger


def test_the_token_trigger_is_a_version_2_pre_token_generation_trigger(default_synth: Synth) -> None:
    trigger_id = default_synth.logical_id(default_synth.stack.auth.token_trigger)
    config = _pool(default_synth)["LambdaConfig"]["PreTokenGenerationConfig"]
    function = default_synth.resources[trigger_id]["Properties"]

    assert config == {"LambdaArn": {"Fn::GetAtt": [trigger_id, "Arn"]}, "LambdaVersion": "V2_0"}
    assert function["Environment"]["Variables"] == {"API_SCOPE": API_SCOPE}
    assert function["Timeout"] <= 5
    assert "VpcConfig" not in function  # it calls nothing, so it needs no network


def _run_trigger(event: dict[str, Any]) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    import os

    os.environ["API_SCOPE"] = API_SCOPE
    try:
        exec(compile(TRIGGER_CODE, "index.py", "exec"), namespace)  # the code Lambda runs
        result: dict[str, Any] = namespace["handler"](event, None)
    finally:
        del os.environ["API_SCOPE"]
    return result


def test_the_trigger_adds_the_api_scope_to_access_tokens() -> None:
    event = {
        "version": "2",
        "triggerSource": "TokenGeneration_Authentication",
        "request": {"userAttributes": {}, "scopes": ["aws.cognito.signin.user.admin"]},
        "response": {"claimsAndScopeOverrideDetails": None},
    }

    result = _run_trigger(event)

    assert result["response"]["claimsAndScopeOverrideDetails"] == {
        "accessTokenGeneration": {"scopesToAdd": [API_SCOPE]}
    }


def test_the_trigger_keeps_other_overrides_and_adds_the_scope_once() -> None:
    event = {
        "response": {
            "claimsAndScopeOverrideDetails": {
                "idTokenGeneration": {"claimsToAddOrOverride": {"team": "a"}},
                "accessTokenGeneration": {"scopesToAdd": [API_SCOPE, "other/read"]},
            }
        }
    }

    details = _run_trigger(event)["response"]["claimsAndScopeOverrideDetails"]

    assert details["idTokenGeneration"] == {"claimsToAddOrOverride": {"team": "a"}}
    assert details["accessTokenGeneration"]["scopesToAdd"] == [API_SCOPE, "other/read"]


# ------------------------------------------------------------------ what the code is told


def test_the_api_function_and_the_streaming_tasks_can_verify_tokens(default_synth: Synth) -> None:
    pool_id = default_synth.logical_id(default_synth.stack.auth.user_pool)
    client_id = default_synth.logical_id(default_synth.stack.auth.client)
    _, api = function_by_handler(default_synth, "functions.api.handler.handler")
    _, ingest = function_by_handler(default_synth, "functions.ingest.handler.handler")

    for variables in (api["Properties"]["Environment"]["Variables"], container_environment(default_synth)):
        # https://cognito-idp.<region>.amazonaws.com/<pool id>: the tokens' iss, the JWKS base
        assert variables["YTR_COGNITO_ISSUER"] == {"Fn::GetAtt": [pool_id, "ProviderURL"]}
        assert variables["YTR_COGNITO_CLIENT_ID"] == {"Ref": client_id}
        assert variables["YTR_COGNITO_SCOPE"] == API_SCOPE
    assert "YTR_COGNITO_ISSUER" not in ingest["Properties"]["Environment"]["Variables"]  # it serves no one


# ------------------------------------------------------------------ settings


def _config(**context: Any) -> InfraConfig:
    return InfraConfig.from_context({**cdk_json_context(), **context}.get, {})


def test_sign_in_settings_have_safe_defaults() -> None:
    config = _config()

    assert config.auth_callback_urls == ("http://localhost:8000/",)
    assert config.cognito_threat_protection is False
    assert config.cognito_domain_prefix is None


@pytest.mark.parametrize(
    ("context", "problem"),
    [
        ({"auth_callback_urls": "http://research.example.org/"}, "auth_callback_urls entry"),
        ({"auth_callback_urls": "https://research.example.org/#token"}, "without a fragment"),
        ({"auth_logout_urls": ""}, "auth_logout_urls needs at least one URL"),
        ({"cognito_domain_prefix": "my-aws-login"}, "must not contain aws"),
        ({"cognito_domain_prefix": "Upper_Case"}, "cognito_domain_prefix"),
    ],
)
def test_bad_sign_in_settings_fail_early(context: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        _config(**context)
