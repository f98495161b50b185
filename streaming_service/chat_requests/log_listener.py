"""Waking the readers that follow a request from the event log: one ``LISTEN`` per process.

Every write of log events notifies ``ytr_chat_log`` with the request ids it wrote
(``ytresearch.db.notify``). One connection per process listens and fans each notification out in
memory to the readers watching those ids, so a reader on a process other than the request's owner
is woken when new events are committed instead of polling. A reader registers its watch before it
reads the log, so a notification that arrives between its read and its wait is not lost.

The listener is ``up`` only once a notification sent by another session has reached it (a proxy
that accepts ``LISTEN`` but never forwards notifications is caught here). When it is down (no
connection, the database restarting, the probe not answered) readers poll the log every
``stream_poll_seconds``, as without it; it reconnects by itself with a short backoff, reading the
database URL (and so a rotated secret) again each time. Going up or down wakes every watcher, so
none waits on notifications that can no longer come. On SQLite (one process) there is no listener.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from ytresearch.config import Settings
from ytresearch.db import tls
from ytresearch.db.engine import database_url
from ytresearch.db.notify import CHANNEL, parse_payload

if TYPE_CHECKING:
    from psycopg import AsyncConnection

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
PROBE_SECONDS = 5.0  # how long the first notification may take to arrive before the connection is dropped
IDLE_CHECK_SECONDS = 30.0  # a connection silent this long is checked with a query
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0  # seconds between reconnects, doubling up to the max
PROBE_PREFIX = "probe:"


def listens(settings: Settings) -> bool:
    """Whether this process should listen: PostgreSQL (several processes share it) and the setting
    on. Reads only settings (no secret, no connection)."""
    if not settings.stream_listen:
        return False
    if settings.database_secret_arn:
        return True
    return make_url(settings.database_url).get_backend_name() == "postgresql"


def conninfo_for(settings: Settings) -> str:
    """A libpq connection string for the configured database, with the engine's TLS: the mode of
    ``ytresearch.db.tls`` as libpq's ``sslmode``, and for verify-full the same CA bundle. Reads the
    RDS secret when there is one (boto3, blocking: call it in a thread)."""
    from psycopg.conninfo import make_conninfo

    url = database_url(settings)
    mode = tls.tls_mode(settings)
    params: dict[str, str | int | None] = {
        "host": settings.database_listen_host or url.host or "localhost",
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "application_name": "ytr-log-listener",
        # A peer that vanished (failover, network) shows within a minute even with no traffic.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "sslmode": mode,  # "prefer": pg8000's default and libpq's alike
    }
    if mode == "verify-full":
        bundle = tls.ca_bundle_path(settings)
        tls.verifying_context(bundle)  # a missing or empty bundle: the engine's ConfigurationError
        params["sslrootcert"] = str(bundle)
    return make_conninfo("", **params)


class Watch:
    """One reader's interest in one request's log: woken by a notification naming the request, or
    by the listener going up or down."""

    def __init__(self, request_id: uuid.UUID) -> None:
        self.request_id = request_id
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float) -> bool:
        """True when woken within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


class ListenerError(Exception):
    """The listening connection cannot be trusted to deliver notifications."""


class LogListener:
    """One listening connection for the process; ``run`` it as a background task."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = listens(settings)
        self._watches: dict[uuid.UUID, set[Watch]] = {}
        self._up = False
        self._outage_logged = False
        self.backend_pid: int | None = None  # the listening session's server process, when connected

    @property
    def up(self) -> bool:
        """Notifications arrive: readers may wait for them instead of polling."""
        return self._up

    # ------------------------------------------------------------------ watchers
    def watch(self, request_id: uuid.UUID) -> Watch:
        """Register before reading the log; ``unwatch`` when done."""
        watch = Watch(request_id)
        self._watches.setdefault(request_id, set()).add(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        watches = self._watches.get(watch.request_id)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.request_id]

    def dispatch(self, payload: str) -> None:
        """Wake every watcher of each request the payload names."""
        for request_id in parse_payload(payload):
            for watch in self._watches.get(request_id, ()):
                watch.set()

    def wake_all(self) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.set()

    # ------------------------------------------------------------------ the connection
    async def run(self) -> None:
        """Listen until cancelled; never raises anything else. Without PostgreSQL or with the
        setting off it returns at once (the listener stays down)."""
        if not self.enabled:
            return
        delay = BACKOFF_FIRST
        try:
            while True:
                try:
                    await self._listen()
                except Exception as exc:
                    if self._up:
                        delay = BACKOFF_FIRST  # it had been working: retry soon
                    self._mark_down(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
        finally:
            self._set_up(False)

    async def _listen(self) -> None:
        from psycopg import AsyncConnection, sql

        conninfo = await asyncio.to_thread(conninfo_for, self.settings)  # a rotated secret: read anew
        async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
            self.backend_pid = conn.info.backend_pid
            try:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
                async with await AsyncConnection.connect(conninfo, autocommit=True) as other:
                    await other.execute("SELECT pg_notify(%s, %s)", (CHANNEL, probe))
                await self._receive(conn, probe)
            finally:
                self.backend_pid = None

    async def _receive(self, conn: AsyncConnection, probe: str) -> None:
        """Dispatch notifications; up once the probe arrived. Raises when the connection fails."""
        probe_deadline = time.monotonic() + PROBE_SECONDS
        while True:
            wait = IDLE_CHECK_SECONDS if self._up else max(0.0, probe_deadline - time.monotonic())
            async for note in conn.notifies(timeout=wait):
                if note.payload == probe:
                    self._set_up(True)
                else:
                    self.dispatch(note.payload)
            if not self._up and time.monotonic() >= probe_deadline:
                raise ListenerError(
                    f"a notification sent by another session did not arrive within {PROBE_SECONDS:.0f} s "
                    "(is a proxy in between that does not forward them?)"
                )
            await conn.execute("SELECT 1")  # quiet for a while: is the connection still there?

    def _set_up(self, up: bool) -> None:
        if up != self._up:
            self._up = up
            self.wake_all()  # readers re-read the log, then wait the way that now works
        if up and self._outage_logged:
            self._outage_logged = False
            log.info("event log listener up again: followers on this process are woken by notifications")

    def _mark_down(self, exc: Exception) -> None:
        """One warning per outage (retries are quiet until it is up again)."""
        self._set_up(False)
        if self._outage_logged:
            log.debug("event log listener still down: %s: %s", type(exc).__name__, exc)
            return
        self._outage_logged = True
        log.warning(
            "event log listener down, followers on this process poll every %.2f s until it is back: %s: %s",
            self.settings.stream_poll_seconds,
            type(exc).__name__,
            exc,
        )
