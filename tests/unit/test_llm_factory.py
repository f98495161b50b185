"""build_chat_model picks the adapter from settings without touching the network."""

from __future__ import annotations

import logging

import pytest

from ytresearch.config import Settings
from ytresearch.errors import ConfigurationError
from ytresearch.llm import AnthropicChatModel, CircuitBreakerChatModel, OfflineChatModel, build_chat_model


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ANTHROPIC_API_KEY",
        "YTR_ANTHROPIC_API_KEY",
        "YTR_ANTHROPIC_SECRET_ARN",
        "YTR_LLM_PROVIDER",
        "YTR_ANTHROPIC_BASE_URL",
        "YTR_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_no_key_builds_the_offline_model():
    model = build_chat_model(Settings())

    assert isinstance(model, OfflineChatModel)
    assert model.name == "offline"


def test_offline_provider_wins_over_a_key():
    model = build_chat_model(Settings(ANTHROPIC_API_KEY="sk-ant-x", llm_provider="offline"))

    assert isinstance(model, OfflineChatModel)


def test_a_key_builds_the_claude_adapter_with_the_configured_options():
    settings = Settings(
        ANTHROPIC_API_KEY="sk-ant-x",
        model="claude-configured",
        anthropic_base_url="http://127.0.0.1:9",
        llm_max_retries=5,
        llm_timeout_seconds=12.5,
    )

    model = build_chat_model(settings)

    assert isinstance(model, CircuitBreakerChatModel)  # Claude always sits behind the breaker
    assert isinstance(model.inner, AnthropicChatModel)
    assert model.name == "claude-configured"
    assert model.inner.max_retries == 5


def test_a_secret_arn_is_not_read_when_the_model_is_built():
    # No AWS credentials or endpoint here: building must not call Secrets Manager.
    settings = Settings(anthropic_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:anthropic")

    model = build_chat_model(settings)

    assert isinstance(model, CircuitBreakerChatModel) and isinstance(model.inner, AnthropicChatModel)


def test_anthropic_provider_without_any_key_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        build_chat_model(Settings(llm_provider="anthropic"))


def test_an_empty_key_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        AnthropicChatModel(api_key="  ", model="m")


def test_a_model_the_sdk_lists_as_deprecated_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    from ytresearch.llm import anthropic_model

    # A table of our own: which models the SDK deprecates changes with every release.
    monkeypatch.setattr(anthropic_model, "sdk_deprecated_models", lambda: {"claude-old": "June 1st, 2026"})
    assert anthropic_model.model_end_of_life("claude-old") == "June 1st, 2026"
    assert anthropic_model.model_end_of_life("claude-new") is None
    with caplog.at_level(logging.WARNING, logger="ytresearch.llm.anthropic_model"):
        AnthropicChatModel(api_key="k", model="claude-old")
        AnthropicChatModel(api_key="k", model="claude-new")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "claude-old reaches end of life on June 1st, 2026" in warnings[0]
