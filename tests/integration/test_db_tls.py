"""TLS to PostgreSQL against a real server whose certificate a throwaway CA signed: verify-full
checks the chain and the host name, require only encrypts, and the RDS secret verifies by
default."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import InterfaceError

from tests.support.aws import fake_aws
from tests.support.postgres import PostgresServer
from tests.support.settings import test_settings
from tests.support.tls import CertificateSet
from ytresearch.db.engine import make_engine
from ytresearch.db.outage import is_outage

pytestmark = pytest.mark.postgres


def url(server: PostgresServer, host: str) -> str:
    return f"postgresql+pg8000://postgres@{host}:{server.port}/postgres"


def encrypted(engine: Engine) -> bool:
    """What the server says about this session's connection."""
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar())


def engine_for(database_url: str, **settings: Any) -> Engine:
    return make_engine(test_settings(database_url, db_pool_size=0, **settings))


def test_verify_full_connects_when_the_chain_and_the_host_name_check_out(
    tls_server: PostgresServer, certificates: CertificateSet
) -> None:
    engine = engine_for(url(tls_server, "localhost"), db_tls="verify-full", db_ca_bundle=certificates.ca)
    try:
        assert encrypted(engine)
    finally:
        engine.dispose()


def test_verify_full_refuses_a_certificate_from_another_ca(
    tls_server: PostgresServer, certificates: CertificateSet
) -> None:
    engine = engine_for(
        url(tls_server, "localhost"), db_tls="verify-full", db_ca_bundle=certificates.other_ca
    )
    try:
        with pytest.raises(InterfaceError) as refused:
            encrypted(engine)
    finally:
        engine.dispose()
    message = str(refused.value)
    assert "the database at localhost failed TLS verification" in message
    assert "unable to get local issuer certificate" in message
    assert str(certificates.other_ca) in message
    assert is_outage(refused.value)  # callers answer 503, as for an unreachable database


def test_verify_full_refuses_a_certificate_for_another_host(
    tls_server: PostgresServer, certificates: CertificateSet
) -> None:
    # The certificate names localhost only; 127.0.0.1 is the same server under another name.
    engine = engine_for(url(tls_server, "127.0.0.1"), db_tls="verify-full", db_ca_bundle=certificates.ca)
    try:
        with pytest.raises(InterfaceError) as refused:
            encrypted(engine)
    finally:
        engine.dispose()
    assert "mismatch, certificate is not valid for '127.0.0.1'" in str(refused.value)


def test_require_encrypts_without_verifying(tls_server: PostgresServer, certificates: CertificateSet) -> None:
    # Wrong CA and wrong host name: require does not look.
    engine = engine_for(url(tls_server, "127.0.0.1"), db_tls="require", db_ca_bundle=certificates.other_ca)
    try:
        assert encrypted(engine)
    finally:
        engine.dispose()


def test_disable_connects_in_plain_text(tls_server: PostgresServer) -> None:
    engine = engine_for(url(tls_server, "localhost"), db_tls="disable")
    try:
        assert not encrypted(engine)
    finally:
        engine.dispose()


def test_require_refuses_a_server_without_tls(pg_server: PostgresServer) -> None:
    engine = engine_for(pg_server.admin_url, db_tls="require")
    try:
        with pytest.raises(InterfaceError, match="Server refuses SSL"):
            encrypted(engine)
    finally:
        engine.dispose()


def test_a_plain_url_learns_the_servers_tls_once(
    tls_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a mode, a plain URL keeps pg8000's unverified TLS, and the engine still asks the
    server only once: pg8000 builds a default context for the first connection and the probe
    builds the one it reuses; later connections build none."""
    built: list[int] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    engine = make_engine(test_settings(url(tls_server, "127.0.0.1"), db_pool_size=3))
    try:
        connections = [engine.connect() for _ in range(3)]
        sessions = [
            c.execute(text("SELECT pid, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).one()
            for c in connections
        ]
        for connection in connections:
            connection.close()
    finally:
        engine.dispose()
    assert len({pid for pid, _ in sessions}) == 3
    assert all(is_tls for _, is_tls in sessions)
    assert len(built) == 2


# ------------------------------------------------------------------ the RDS secret


@pytest.fixture
def rds_secret(tls_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An RDS-style secret (moto) naming the TLS server as ``localhost``."""
    from ytresearch.db import engine as engine_module

    monkeypatch.setattr(engine_module, "_secret_cache", {})
    with fake_aws(monkeypatch):
        secret = {
            "username": "postgres",
            "password": "unused-trust-auth",
            "host": "localhost",
            "port": tls_server.port,
            "dbname": "postgres",
        }
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        yield client.create_secret(Name="ytr-db", SecretString=json.dumps(secret))["ARN"]


def test_the_rds_secret_verifies_against_the_configured_bundle(
    rds_secret: str, certificates: CertificateSet
) -> None:
    engine = make_engine(
        test_settings(
            "sqlite://", database_secret_arn=rds_secret, db_ca_bundle=certificates.ca, db_pool_size=0
        )
    )
    try:
        assert encrypted(engine)
    finally:
        engine.dispose()


def test_the_rds_secret_alone_trusts_only_the_shipped_rds_bundle(rds_secret: str) -> None:
    # Nothing but the secret set: verify-full against the RDS CAs, which did not sign this server.
    engine = make_engine(test_settings("sqlite://", database_secret_arn=rds_secret, db_pool_size=0))
    try:
        with pytest.raises(InterfaceError) as refused:
            encrypted(engine)
    finally:
        engine.dispose()
    assert "rds-ca-bundle.pem" in str(refused.value)
    assert "unable to get local issuer certificate" in str(refused.value)


def test_a_missing_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    from ytresearch.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="does not exist"):
        engine_for(
            "postgresql+pg8000://postgres@localhost:1/postgres",
            db_tls="verify-full",
            db_ca_bundle=tmp_path / "nope.pem",
        )
