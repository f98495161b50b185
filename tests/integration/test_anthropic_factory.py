"""build_chat_model end to end: the key from Secrets Manager (moto) authenticates against the
fake Anthropic server through the real SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic, Reply
from tests.support.aws import fake_aws
from ytresearch.config import Settings
from ytresearch.errors import ConfigurationError
from ytresearch.llm import AnthropicChatModel, CircuitBreakerChatModel, build_chat_model, read_api_key_secret
from ytresearch.ports import ContentBlock, ModelMessage, ModelRequest

pytestmark = pytest.mark.anyio


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("ANTHROPIC_API_KEY", "YTR_ANTHROPIC_API_KEY", "YTR_LLM_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with fake_aws(monkeypatch, region="us-east-1"):
        yield


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def store_secret(value: str) -> str:
    client = boto3.client("secretsmanager")
    return client.create_secret(Name="anthropic-api-key", SecretString=value)["ARN"]


def question() -> ModelRequest:
    return ModelRequest(system=[], messages=[ModelMessage("user", [ContentBlock("Hello?")])], max_tokens=50)


@pytest.mark.parametrize(
    "secret_string",
    [DEFAULT_API_KEY, json.dumps({"ANTHROPIC_API_KEY": DEFAULT_API_KEY})],
    ids=["raw-key", "json-document"],
)
async def test_key_from_secrets_manager_authenticates(aws: None, fake: FakeAnthropic, secret_string: str):
    arn = store_secret(secret_string)
    settings = Settings(anthropic_secret_arn=arn, anthropic_base_url=fake.base_url)
    fake.enqueue(Reply(text="authenticated"))
    model = build_chat_model(settings)
    assert isinstance(model, CircuitBreakerChatModel) and isinstance(model.inner, AnthropicChatModel)

    completion = await model.complete(question())
    await model.aclose()

    assert completion.text == "authenticated"
    assert fake.requests[0].headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"


def test_a_json_secret_without_the_key_field_is_a_configuration_error(aws: None):
    arn = store_secret(json.dumps({"api_key": "sk-ant-x"}))

    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        read_api_key_secret(arn)


def test_a_missing_secret_is_a_configuration_error(aws: None):
    with pytest.raises(ConfigurationError):
        read_api_key_secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf")
