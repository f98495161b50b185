"""Which TLS mode applies to the database, and the RDS CA bundle shipped with the code."""

from __future__ import annotations

import ssl
import time

from ytresearch.config import Settings
from ytresearch.db.tls import SHIPPED_CA_BUNDLE, ssl_context_for, tls_mode

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"


def test_the_rds_secret_means_verify_full_against_the_shipped_bundle() -> None:
    settings = Settings(database_secret_arn=SECRET)
    context = ssl_context_for(settings)
    assert tls_mode(settings) == "verify-full"
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    trusted = repr(context.get_ca_certs())  # the subjects of every CA it trusts
    assert "'Amazon RDS us-east-1 Root CA RSA2048 G1'" in trusted  # DB instances (the default region)
    assert "'Amazon Root CA 1'" in trusted  # RDS Proxy's ACM certificates
    assert "ISRG Root" not in trusted  # not the system store (Let's Encrypt's root is in that)


def test_a_plain_url_keeps_pg8000s_own_choice() -> None:
    settings = Settings(database_url="postgresql://db.internal/ytr")
    assert tls_mode(settings) == "prefer"
    assert ssl_context_for(settings) is None


def test_an_explicit_mode_wins_over_the_secret() -> None:
    required = ssl_context_for(Settings(database_secret_arn=SECRET, db_tls="require"))
    assert isinstance(required, ssl.SSLContext) and required.verify_mode == ssl.CERT_NONE
    assert ssl_context_for(Settings(database_secret_arn=SECRET, db_tls="disable")) is False


def test_the_shipped_bundle_holds_only_current_ca_certificates() -> None:
    blocks = SHIPPED_CA_BUNDLE.read_text().count("-----BEGIN CERTIFICATE-----")
    loaded = ssl.create_default_context(cafile=str(SHIPPED_CA_BUNDLE)).get_ca_certs()  # CAs only
    a_year_from_now = time.time() + 365 * 86400
    assert blocks >= 80 and len(loaded) == blocks
    for cert in loaded:
        assert ssl.cert_time_to_seconds(str(cert["notAfter"])) > a_year_from_now, cert["subject"]
