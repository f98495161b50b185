"""Whether a process listens for event log writes, and how its listening connection is made: the
engine's database and TLS, in libpq's words."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from streaming_service.chat_requests.log_listener import conninfo_for, listens
from ytresearch.config import Settings
from ytresearch.db.tls import SHIPPED_CA_BUNDLE
from ytresearch.errors import ConfigurationError

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"
URL = "postgresql://reader:s3cret@db.internal:6543/ytr"


def test_only_postgresql_with_the_setting_on_listens() -> None:
    assert listens(Settings(database_url=URL))
    assert listens(Settings(database_secret_arn=SECRET))  # decided without reading the secret
    assert not listens(Settings(database_url="sqlite:///.ytr/local.db"))  # one process: nobody to hear
    assert not listens(Settings(database_url=URL, stream_listen=False))


def test_the_connection_names_the_engines_database() -> None:
    params = conninfo_to_dict(conninfo_for(Settings(database_url=URL)))
    assert (params["host"], params["port"], params["dbname"]) == ("db.internal", "6543", "ytr")
    assert (params["user"], params["password"]) == ("reader", "s3cret")
    assert params["sslmode"] == "prefer"  # pg8000's own choice for a plain URL


@pytest.mark.parametrize("mode", ["require", "disable"])
def test_an_explicit_tls_mode_is_libpqs_sslmode(mode: str) -> None:
    params = conninfo_to_dict(conninfo_for(Settings(database_url=URL, db_tls=mode)))
    assert params["sslmode"] == mode and "sslrootcert" not in params


def test_verify_full_checks_the_server_against_the_engines_ca_bundle() -> None:
    params = conninfo_to_dict(conninfo_for(Settings(database_url=URL, db_tls="verify-full")))
    assert params["sslmode"] == "verify-full"
    assert params["sslrootcert"] == str(SHIPPED_CA_BUNDLE)


def test_verify_full_without_a_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigurationError, match="does not exist"):
        conninfo_for(Settings(database_url=URL, db_tls="verify-full", db_ca_bundle=missing))
