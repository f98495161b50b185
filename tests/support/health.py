"""Health checks of a server under test: waiting for a started process to answer, and a
background poller (GET /health every ~100 ms with a 1 s timeout, recording every answer) for tests
that must show a server kept answering while a fault happened.

Any HTTP status counts as an answer (during a database outage /health rightly answers 503 at
once). A poll that times out, or finds nothing listening, is a failure: the event loop was blocked,
or the process was gone. While a test takes a server away on purpose (kill -9 and restart), it
wraps that in ``paused()``.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx


def wait_until_healthy(
    base_url: str,
    process: subprocess.Popen[Any],
    *,
    timeout: float = 60.0,
    failure: str | Callable[[], str] = "the server did not come up",
) -> None:
    """GET /health (1 s timeout, every 100 ms) until it answers 200. Fails the test with
    ``failure`` (or what it returns) when ``process`` exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base_url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() >= deadline:
            raise AssertionError(failure() if callable(failure) else failure)
        time.sleep(0.1)


@dataclass(frozen=True)
class Poll:
    at: float  # seconds since the poller started
    elapsed: float
    status: int | None  # the HTTP status, or None when there was no answer
    error: str | None  # why there was no answer (exception type and message)


class HealthPoller:
    def __init__(self, base_url: str, *, interval: float = 0.1, timeout: float = 1.0) -> None:
        self.url = base_url + "/health"
        self.interval, self.timeout = interval, timeout
        self.polls: list[Poll] = []
        self._paused = threading.Event()
        self._polling = threading.Lock()  # held while a poll is in flight
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"health-{base_url}", daemon=True)
        # A fresh connection per poll, as a load balancer's health check makes: a stuck keep-alive
        # connection must not hide a server that accepts no new ones, nor the other way round.
        self._client = httpx.Client(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))

    def start(self) -> HealthPoller:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout * 4 + 2)
        self._client.close()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Polls are not made while the server is taken away on purpose. A poll already in flight
        is let finish first: the test's kill must not cut it and count it unanswered."""
        self._paused.set()
        with self._polling:  # the poll in flight, if any, ends; none starts after this
            pass
        try:
            yield
        finally:
            self._paused.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            with self._polling:
                if not self._paused.is_set():
                    self.polls.append(self._poll(began))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def _poll(self, began: float) -> Poll:
        status, error = None, None
        try:
            status = self._client.get(self.url).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        return Poll(began - self._started, now - began, status, error)

    # ------------------------------------------------------------------ what the test asserts

    @property
    def failures(self) -> list[Poll]:
        return [p for p in list(self.polls) if p.status is None]

    def summary(self) -> str:
        polls = list(self.polls)
        answered = [p for p in polls if p.status is not None]
        statuses = sorted({p.status for p in answered if p.status is not None})
        slowest = max((p.elapsed for p in answered), default=0.0)
        lines = [
            f"/health polls: {len(polls)}, answered {len(answered)} (statuses {statuses}, "
            f"slowest {slowest:.2f} s), unanswered {len(polls) - len(answered)}"
        ]
        lines += [f"  at {p.at:6.2f} s after {p.elapsed:.2f} s: {p.error}" for p in self.failures[:10]]
        return "\n".join(lines)

    def assert_always_answered(self) -> None:
        """Every poll so far was answered, including one made after this call began (so the
        server is shown answering after whatever the test did, however short the test was)."""
        since = time.monotonic() - self._started
        deadline = time.monotonic() + self.timeout * 3 + 2
        while not any(p.at >= since for p in list(self.polls)) and time.monotonic() < deadline:
            time.sleep(self.interval / 2)
        assert any(p.at >= since for p in list(self.polls)), f"the health poller stopped: {self.summary()}"
        assert not self.failures, "the server stopped answering /health within 1 s:\n" + self.summary()
