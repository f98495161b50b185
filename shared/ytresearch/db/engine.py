"""Engine and session factories. Nothing connects until first use."""

from __future__ import annotations

import json
import socket
import ssl
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ytresearch.config import Settings
from ytresearch.db import prepared, tls


def database_url(settings: Settings) -> URL:
    """The configured URL, or one built from the RDS secret when a secret ARN is given."""
    if settings.database_secret_arn:
        secret = _read_database_secret(settings.database_secret_arn)
        return URL.create(
            "postgresql+pg8000",
            username=secret["username"],
            password=secret["password"],
            host=settings.database_host or secret["host"],
            port=int(secret.get("port", 5432)),
            database=secret.get("dbname") or settings.database_name,
        )
    url = make_url(settings.database_url)
    if url.get_backend_name() == "postgresql" and url.get_driver_name() != "pg8000":
        url = url.set(drivername="postgresql+pg8000")
    return url


SECRET_TTL_SECONDS = 300.0
_secret_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _read_database_secret(arn: str, *, fresh: bool = False) -> dict[str, Any]:
    """The RDS secret, cached for a few minutes: the password rotates every 30 days, so new
    connections must pick the new one up without a restart."""
    cached = _secret_cache.get(arn)
    if cached and not fresh and time.monotonic() - cached[0] < SECRET_TTL_SECONDS:
        return cached[1]
    import boto3  # only in the cloud, and only when a connection needs it

    value = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    data: dict[str, Any] = json.loads(value)
    _secret_cache[arn] = (time.monotonic(), data)
    return data


def _refresh_credentials(arn: str) -> Any:
    def do_connect(_dialect: Any, _conn_rec: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        secret = _read_database_secret(arn)
        cparams["user"], cparams["password"] = secret["username"], secret["password"]

    return do_connect


def make_engine(settings: Settings, url: URL | str | None = None) -> Engine:
    url = make_url(url) if url is not None else database_url(settings)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    tls_context = tls.ssl_context_for(settings)  # verify-full by default with the RDS secret
    kwargs["connect_args"] = {"timeout": 10}
    if tls_context is not None:
        kwargs["connect_args"]["ssl_context"] = tls_context
    # A round trip per checkout is a fifth of a short transaction's cost: ping only connections that
    # sat idle in the pool (see _ping_if_idle); fresh ones and busy ones need none.
    kwargs["pool_pre_ping"] = False
    if settings.db_pool_size == 0:
        kwargs["poolclass"] = NullPool  # Lambda: one connection per invocation, none left idle
    else:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,  # overflow connections close on return: keep them few
            pool_recycle=300,
        )
    engine = create_engine(url, **kwargs)
    # pg8000 runs executemany as one round trip per row; let SQLAlchemy batch plain multi-row
    # INSERTs into ``VALUES (...), (...)`` pages as it does for psycopg2 (the chat event log's
    # flushes; measured in docs/benchmarks.md).
    engine.dialect.use_insertmanyvalues_wo_returning = True
    event.listen(engine, "connect", _no_delay)
    event.listen(engine, "checkin", _mark_idle)
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "handle_error", _socket_errors_are_disconnects)
    if settings.db_prepared_statements:
        prepared.install(engine)
    if settings.database_secret_arn:
        event.listen(engine, "do_connect", _refresh_credentials(settings.database_secret_arn))
    if tls_context is None:  # pg8000's own choice ("prefer"): ask the server once per engine
        tls_probe = _TlsProbeOnce()
        event.listen(engine, "do_connect", tls_probe.reuse)
        event.listen(engine, "connect", tls_probe.learn)
    elif tls.tls_mode(settings) == "verify-full":
        # Last: this listener makes the connection, with the parameters the others filled in.
        event.listen(engine, "do_connect", tls.explain_certificate_errors(tls.ca_bundle_path(settings)))
    return engine


IDLE_PING_SECONDS = 10.0


def _mark_idle(_dbapi_conn: Any, record: Any) -> None:
    if record is not None:
        record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's "pessimistic disconnect handling", for connections idle more than a few
    seconds: a database restart or failover while they sat in the pool is found here, and the pool
    replaces them (DisconnectionError) before a request uses them. A connection that dies while
    in use fails that statement, invalidates the pool and answers 503, as with a ping."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_conn.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
    except Exception as exc:
        raise DisconnectionError("connection lost while idle in the pool") from exc


def _socket_errors_are_disconnects(context: Any) -> Any:
    """pg8000 lets a socket error on the first read of a reply escape as a bare OSError (e.g.
    ConnectionResetError when the server dropped the connection). SQLAlchemy would neither wrap it
    nor see a disconnect, so the dead connection went back to the pool and the request got a 500.
    Here it is a disconnect (the pool is renewed) raised as a DBAPI error (a 503 upstream)."""
    original = context.original_exception
    if isinstance(original, OSError) and context.sqlalchemy_exception is None:
        context.is_disconnect = True
        return DBAPIError(context.statement, context.parameters, original, connection_invalidated=True)
    return None


class _TlsProbeOnce:
    """Given no ``ssl_context`` (a plain ``postgresql://`` URL), pg8000 asks the server for TLS on
    every new connection and, to do so, first builds ``ssl.create_default_context()``, which loads
    the system CA bundle with the GIL held (its cost: docs/benchmarks.md). The first connection
    asks; later ones reuse its answer: one unverified context (what pg8000 would build) when the
    server spoke TLS, plain TCP (``False``) when it did not."""

    def __init__(self) -> None:
        self.answer: ssl.SSLContext | bool | None = None

    def reuse(self, _dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        if self.answer is not None and cparams.get("ssl_context") is None:
            cparams["ssl_context"] = self.answer

    def learn(self, dbapi_conn: Any, _record: Any) -> None:
        if self.answer is None:
            if isinstance(getattr(dbapi_conn, "_usock", None), ssl.SSLSocket):
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                self.answer = context
            else:
                self.answer = False


def _no_delay(dbapi_conn: Any, _record: Any) -> None:
    """TCP_NODELAY on pg8000's socket. pg8000 writes a statement through an 8 KB buffer; with
    Nagle's algorithm on, the tail of any larger statement (a long reply, a batch of events) waited
    for the server's delayed ACK (measured: docs/benchmarks.md)."""
    sock = getattr(dbapi_conn, "_usock", None)  # pg8000 keeps its socket here (no public accessor)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")  # cascades are part of the design
    cur.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer (local run)
    # In WAL mode NORMAL syncs at checkpoints, not on every commit: a process crash loses nothing,
    # only a power cut can drop the last commits. FULL made every chat event flush an fsync.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@lru_cache(maxsize=1)
def default_engine() -> Engine:
    from ytresearch.config import get_settings

    return make_engine(get_settings())
