"""Pooled PostgreSQL connections: one that died while idle in the pool is replaced before a
request uses it (a ping after idling); one in steady use is not pinged."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.support.settings import test_settings
from ytresearch.bootstrap import Container
from ytresearch.db import engine as engine_module

pytestmark = pytest.mark.postgres


def _backend_pid(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_killed_while_idle_is_replaced_unnoticed(pg_url: str, monkeypatch: pytest.MonkeyPatch):
    container = Container(test_settings(pg_url, db_pool_size=1))
    other = Container(test_settings(pg_url, db_pool_size=1))
    try:
        first = _backend_pid(container)
        with other.engine.connect() as admin:  # e.g. a database restart while the pool sat idle
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            admin.commit()
        monkeypatch.setattr(engine_module, "IDLE_PING_SECONDS", 0.0)

        second = _backend_pid(container)  # no error: the ping found the dead one

        assert second != first
    finally:
        container.engine.dispose()
        other.engine.dispose()


def test_a_connection_killed_between_busy_uses_fails_once_then_the_pool_recovers(pg_url: str):
    """The trade-off of pinging only idle connections: one in steady use is not pinged, so if it
    dies between two uses the next statement fails (a 503 for that request) and the pool is
    renewed."""
    from sqlalchemy.exc import DBAPIError

    container = Container(test_settings(pg_url, db_pool_size=1))
    other = Container(test_settings(pg_url, db_pool_size=1))
    try:
        first = _backend_pid(container)
        with other.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            admin.commit()

        with pytest.raises(DBAPIError) as failed:
            _backend_pid(container)
        assert failed.value.connection_invalidated

        assert _backend_pid(container) != first
    finally:
        container.engine.dispose()
        other.engine.dispose()


def test_only_the_first_new_connection_builds_a_tls_context_to_probe(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
):
    """pg8000, given a plain URL, builds ssl.create_default_context() (18 ms of CPU) on every new
    connection to ask the server for TLS; the engine asks once and reuses the answer."""
    import ssl

    built: list[int] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    container = Container(test_settings(pg_url, db_pool_size=2))
    try:
        connections = [container.engine.connect() for _ in range(3)]  # three new connections
        pids = {int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in connections}
        for connection in connections:
            connection.close()

        assert len(pids) == 3
        assert len(built) == 1
    finally:
        container.engine.dispose()
