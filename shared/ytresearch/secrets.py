"""Secrets Manager reads, done at run time (never baked into a template or an environment)."""

from __future__ import annotations

import json
import logging
from typing import Any

from ytresearch.config import Settings
from ytresearch.errors import ConfigurationError, DependencyUnavailableError

log = logging.getLogger(__name__)

# The proxy secret is JSON with either {"http_url", "https_url"} (any HTTP(S) proxy) or
# {"webshare_username", "webshare_password"} (Webshare residential proxies).
PROXY_FIELDS = {
    "http_url": "proxy_http_url",
    "https_url": "proxy_https_url",
    "webshare_username": "webshare_proxy_username",
    "webshare_password": "webshare_proxy_password",
}


def read_json_secret(arn: str) -> dict[str, Any]:
    import boto3

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        data = json.loads(value)
    except ValueError:
        raise ConfigurationError("the secret is not a JSON object") from None
    if not isinstance(data, dict):
        raise ConfigurationError("the secret is not a JSON object")
    return data


YOUTUBE_DATA_API_KEY_FIELD = "YOUTUBE_DATA_API_KEY"
# Secrets Manager answers that say "not now" rather than "not like this".
_TRANSIENT_SECRET_ERRORS = frozenset({"ThrottlingException", "InternalServiceError"})


def read_youtube_data_api_key(arn: str) -> str:
    """The YouTube Data API key stored in Secrets Manager (YTR_YOUTUBE_DATA_API_KEY_SECRET_ARN):
    the secret string is the raw key or JSON ``{"YOUTUBE_DATA_API_KEY": "..."}``, like the
    Anthropic key's secret. Raises ConfigurationError when the secret cannot serve as a key (the
    message names the setting and never holds the value), DependencyUnavailableError when Secrets
    Manager cannot answer right now."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    what = "the YouTube Data API key secret (YTR_YOUTUBE_DATA_API_KEY_SECRET_ARN)"
    try:
        secret = boto3.client("secretsmanager").get_secret_value(SecretId=arn)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _TRANSIENT_SECRET_ERRORS:
            raise DependencyUnavailableError(f"could not read {what} ({code})") from exc
        raise ConfigurationError(f"could not read {what} ({code or 'ClientError'})") from exc
    except BotoCoreError as exc:
        raise DependencyUnavailableError(f"could not read {what} ({type(exc).__name__})") from exc
    value = (secret.get("SecretString") or "").strip()
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            raise ConfigurationError(f"{what} is not valid JSON") from None
        key = document.get(YOUTUBE_DATA_API_KEY_FIELD) if isinstance(document, dict) else None
        if not isinstance(key, str):
            raise ConfigurationError(f"{what} has no {YOUTUBE_DATA_API_KEY_FIELD} field") from None
        value = key.strip()
    if not value:
        raise ConfigurationError(f"{what} is empty")
    return value


def with_proxy_secret(settings: Settings) -> Settings:
    """Settings with the transcript proxy filled in from YTR_PROXY_SECRET_ARN, when set. The
    stack creates the secret with a random placeholder; until an operator stores the JSON, fetches
    go without a proxy (and YouTube may block them), with a warning in the logs."""
    if not settings.proxy_secret_arn:
        return settings
    try:
        data = read_json_secret(settings.proxy_secret_arn)
    except ConfigurationError:
        log.warning("the transcript proxy secret holds no JSON settings yet; fetching without a proxy")
        return settings
    updates = {field: data[key] for key, field in PROXY_FIELDS.items() if data.get(key)}
    if not updates:
        return settings  # an empty placeholder secret: no proxy configured yet
    merged = {**settings.model_dump(), **updates}
    return Settings.model_validate(merged)
