"""Secrets Manager reads, done at run time (never baked into a template or an environment)."""

from __future__ import annotations

import json
import logging
from typing import Any

from ytresearch.config import Settings
from ytresearch.errors import ConfigurationError

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
