"""Secrets are read from Secrets Manager (moto) at run time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support.aws import fake_aws
from ytresearch.config import load_settings
from ytresearch.secrets import with_proxy_secret


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with fake_aws(monkeypatch):
        yield boto3.client("secretsmanager", region_name="eu-west-1")


def test_proxy_secret_fills_the_webshare_settings(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(
        Name="proxy", SecretString=json.dumps({"webshare_username": "u", "webshare_password": "p"})
    )["ARN"]
    settings = with_proxy_secret(load_settings(proxy_secret_arn=arn))
    assert settings.webshare_proxy_username == "u"
    assert settings.webshare_proxy_password is not None
    assert settings.webshare_proxy_password.get_secret_value() == "p"


def test_empty_placeholder_secret_means_no_proxy(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="proxy", SecretString="{}")["ARN"]
    settings = with_proxy_secret(load_settings(proxy_secret_arn=arn))
    assert settings.proxy_http_url is None and settings.webshare_proxy_username is None


def test_database_url_is_built_from_the_rds_secret(secretsmanager: Any) -> None:
    from ytresearch.db.engine import database_url

    arn = secretsmanager.create_secret(
        Name="db",
        SecretString=json.dumps(
            {"username": "app", "password": "s3cret", "host": "db.internal", "port": 5432, "dbname": "ytr"}
        ),
    )["ARN"]
    url = database_url(load_settings(database_secret_arn=arn))
    assert (url.drivername, url.host, url.database, url.username) == (
        "postgresql+pg8000",
        "db.internal",
        "ytr",
        "app",
    )
    assert "s3cret" not in str(url)  # rendered URLs hide the password


def test_new_connections_pick_up_a_rotated_password(
    secretsmanager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ytresearch.db import engine as engine_module

    arn = secretsmanager.create_secret(
        Name="db2",
        SecretString=json.dumps(
            {"username": "app", "password": "old", "host": "db.internal", "port": 5432, "dbname": "ytr"}
        ),
    )["ARN"]
    connect = engine_module._refresh_credentials(arn)
    params: dict[str, Any] = {}
    connect(None, None, None, params)
    assert params["password"] == "old"
    secretsmanager.put_secret_value(
        SecretId=arn,
        SecretString=json.dumps(
            {"username": "app", "password": "new", "host": "db.internal", "port": 5432, "dbname": "ytr"}
        ),
    )
    monkeypatch.setattr(engine_module, "SECRET_TTL_SECONDS", 0.0)
    connect(None, None, None, params)
    assert params["password"] == "new"


def test_rds_proxy_host_overrides_the_secret_host(secretsmanager: Any) -> None:
    from ytresearch.db.engine import database_url

    arn = secretsmanager.create_secret(
        Name="db3",
        SecretString=json.dumps(
            {"username": "app", "password": "p", "host": "db.internal", "port": 5432, "dbname": "ytr"}
        ),
    )["ARN"]
    url = database_url(load_settings(database_secret_arn=arn, database_host="proxy.internal"))
    assert url.host == "proxy.internal"


def test_placeholder_proxy_secret_is_not_fatal(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="proxy-placeholder", SecretString="x9#Jq!random-placeholder")[
        "ARN"
    ]
    settings = with_proxy_secret(load_settings(proxy_secret_arn=arn))
    assert settings.proxy_http_url is None and settings.webshare_proxy_username is None
