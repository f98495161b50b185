"""Token sign-in settings: both halves or neither, HTTPS issuers in the cloud, and a verifier only
when configured."""

from __future__ import annotations

import pytest

from ytresearch.bootstrap import Container
from ytresearch.config import load_settings
from ytresearch.errors import ConfigurationError

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"


def test_token_sign_in_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("YTR_COGNITO_ISSUER", "YTR_COGNITO_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()

    assert settings.token_auth_enabled is False
    assert Container(settings).token_verifier is None


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTR_COGNITO_ISSUER", ISSUER + "/")
    monkeypatch.setenv("YTR_COGNITO_CLIENT_ID", "client123")
    monkeypatch.setenv("YTR_COGNITO_SCOPE", "research/api")

    settings = load_settings()
    verifier = Container(settings).token_verifier

    assert settings.token_auth_enabled
    assert settings.cognito_issuer == ISSUER  # a trailing slash would never match the iss claim
    assert verifier is not None
    assert (verifier.issuer, verifier.client_id, verifier.scope) == (ISSUER, "client123", "research/api")
    assert verifier.keys.url == ISSUER + "/.well-known/jwks.json"


@pytest.mark.parametrize(
    "values",
    [
        {"cognito_issuer": ISSUER},
        {"cognito_client_id": "client123"},
        {"cognito_issuer": " ", "cognito_client_id": "c"},
    ],
)
def test_half_a_configuration_is_refused(values: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="YTR_COGNITO_ISSUER and YTR_COGNITO_CLIENT_ID"):
        load_settings(**values)


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_cloud_environments_need_an_https_issuer(environment: str) -> None:
    with pytest.raises(ConfigurationError, match="https"):
        load_settings(
            environment=environment,
            cognito_issuer="http://cognito-idp.example/pool",
            cognito_client_id="c",
            queue_backend="embedded",
        )


def test_local_runs_may_use_a_loopback_issuer() -> None:
    settings = load_settings(
        environment="local", cognito_issuer="http://127.0.0.1:9000/pool", cognito_client_id="c"
    )

    assert settings.token_auth_enabled


def test_an_empty_scope_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="COGNITO_SCOPE"):
        load_settings(cognito_issuer=ISSUER, cognito_client_id="c", cognito_scope="")
