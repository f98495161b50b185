"""Model adapters behind the ``ChatModel`` port, and the factory that picks one from settings.

Importing this package imports neither ``anthropic`` nor ``boto3``: the Claude adapter imports
the SDK when it is built, and the Secrets Manager read happens on the first model call.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from ytresearch.errors import ConfigurationError
from ytresearch.llm.anthropic_model import AnthropicChatModel, build_messages_params
from ytresearch.llm.breaker import CircuitBreakerChatModel
from ytresearch.llm.offline import OfflineChatModel

if TYPE_CHECKING:
    from ytresearch.config import Settings
    from ytresearch.ports import ChatModel

__all__ = [
    "AnthropicChatModel",
    "CircuitBreakerChatModel",
    "OfflineChatModel",
    "build_chat_model",
    "build_messages_params",
    "read_api_key_secret",
]

_SECRET_KEY_FIELD = "ANTHROPIC_API_KEY"


def read_api_key_secret(secret_arn: str) -> str:
    """The Anthropic API key stored in Secrets Manager: the secret string is either the raw key
    or JSON ``{"ANTHROPIC_API_KEY": "..."}``."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigurationError(
            f"could not read the Anthropic API key secret ({type(exc).__name__})"
        ) from exc
    value = (secret.get("SecretString") or "").strip()
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            raise ConfigurationError("the Anthropic API key secret is not valid JSON") from None
        key = document.get(_SECRET_KEY_FIELD) if isinstance(document, dict) else None
        if not isinstance(key, str):
            raise ConfigurationError(f"the Anthropic API key secret has no {_SECRET_KEY_FIELD} field")
        value = key.strip()
    if not value:
        raise ConfigurationError("the Anthropic API key secret is empty")
    return value


def build_chat_model(settings: Settings) -> ChatModel:
    """The offline model when ``settings.use_offline_model``, else Claude through the SDK, with
    the key from settings or (read lazily on first use) from Secrets Manager."""
    if settings.use_offline_model:
        return OfflineChatModel(token_delay=settings.offline_token_delay_seconds)
    key_source: str | Callable[[], str]
    if settings.anthropic_api_key is not None:
        key_source = settings.anthropic_api_key.get_secret_value()
    elif settings.anthropic_secret_arn:
        key_source = functools.partial(read_api_key_secret, settings.anthropic_secret_arn)
    else:
        raise ConfigurationError(
            "YTR_LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY or YTR_ANTHROPIC_SECRET_ARN"
        )
    claude = AnthropicChatModel(
        api_key=key_source,
        model=settings.model,
        base_url=settings.anthropic_base_url,
        max_retries=settings.llm_max_retries,
        timeout_seconds=settings.llm_timeout_seconds,
    )
    return CircuitBreakerChatModel(
        claude,
        failure_threshold=settings.breaker_failure_threshold,
        reset_seconds=settings.breaker_reset_seconds,
    )
