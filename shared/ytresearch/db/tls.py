"""TLS to PostgreSQL: which mode applies, and the ``ssl_context`` pg8000 is given for it.

Modes (``YTR_DB_TLS``), named after libpq's ``sslmode``:

- ``verify-full``: encrypt, check the server's certificate against a CA bundle and its name against
  the host connected to. The default when the database comes from the RDS secret. The bundle is
  ``YTR_DB_CA_BUNDLE``, else the one shipped here (``certs/rds-ca-bundle.pem``: the RDS regional
  roots and the Amazon roots behind RDS Proxy's certificates).
- ``require``: encrypt without checking who answers (a server that refuses TLS is an error).
- ``disable``: plain TCP.
- ``auto`` (the default): ``verify-full`` with the RDS secret; for a plain URL, what pg8000 does
  by itself (TLS without verification when the server offers it, else plain), learned once per
  engine (``engine._TlsProbeOnce``).
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from ytresearch.config import Settings
from ytresearch.errors import ConfigurationError

SHIPPED_CA_BUNDLE = Path(__file__).with_name("certs") / "rds-ca-bundle.pem"

TlsMode = Literal["verify-full", "require", "disable", "prefer"]


def tls_mode(settings: Settings) -> TlsMode:
    """The mode in force: ``auto`` resolved (``prefer`` is pg8000's own opportunistic TLS)."""
    if settings.db_tls != "auto":
        return settings.db_tls
    return "verify-full" if settings.database_secret_arn else "prefer"


def ca_bundle_path(settings: Settings) -> Path:
    """The CA bundle that ``verify-full`` trusts: the configured one, else the shipped one."""
    return Path(settings.db_ca_bundle) if settings.db_ca_bundle else SHIPPED_CA_BUNDLE


def ssl_context_for(settings: Settings) -> ssl.SSLContext | Literal[False] | None:
    """What to hand pg8000 as ``ssl_context``: a context, ``False`` (plain TCP) or ``None``
    (pg8000's default, the ``prefer`` mode). Raises ConfigurationError when the CA bundle is
    missing or unreadable: a verify-full engine never falls back to trusting anyone."""
    mode = tls_mode(settings)
    if mode == "disable":
        return False
    if mode == "prefer":
        return None
    if mode == "require":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return verifying_context(ca_bundle_path(settings))


@lru_cache(maxsize=4)
def verifying_context(bundle: Path) -> ssl.SSLContext:
    """A context that requires a certificate chaining to ``bundle`` and naming the host (one per
    bundle per process: loading ~90 CA certificates is a few milliseconds, not per connection)."""
    if not bundle.is_file():
        raise ConfigurationError(
            f"the database CA bundle {bundle} does not exist: set YTR_DB_CA_BUNDLE to a PEM file "
            "(for RDS, AWS's global-bundle.pem), or ship certs/rds-ca-bundle.pem with the package"
        )
    try:
        # Only this bundle, not the system store: nobody else signs RDS or RDS Proxy endpoints.
        context = ssl.create_default_context(cafile=str(bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"the database CA bundle {bundle} cannot be loaded: {exc}") from exc
    if not context.get_ca_certs():
        raise ConfigurationError(f"the database CA bundle {bundle} holds no CA certificate")
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def explain_certificate_errors(bundle: Path) -> Any:
    """A ``do_connect`` listener (register it last: it makes the connection) that turns pg8000's
    bare ``ssl.SSLCertVerificationError`` into the DBAPI's InterfaceError naming the host, the
    reason and the bundle: callers then see an unreachable database (a 503), and operators
    see why."""

    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except ssl.SSLCertVerificationError as exc:
            host = cparams.get("host", "?")
            raise dialect.loaded_dbapi.InterfaceError(
                f"the database at {host} failed TLS verification (YTR_DB_TLS=verify-full, CA bundle "
                f"{bundle}): {exc.verify_message or exc}"
            ) from exc

    return do_connect
