"""Streaming-service processes on loopback (python -m streaming_service.serve), for tests that
need several processes sharing one database, restarts and real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx

from tests.support.postgres import free_port


class ServiceProcess:
    def __init__(self, env: dict[str, str], port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.log_path = (log_dir or Path("/tmp")) / f"ytr-service-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    module = "streaming_service.serve"  # the production entry point: streaming routes only

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServiceProcess:
        """Start the process; with ``wait``, until /health answers 200 within ``timeout``."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child has its own copy of the descriptor
        if wait:
            self.wait_healthy(timeout)
        return self

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        """Started and healthy for the ``with`` block, then stopped (SIGINT, then SIGKILL if a
        wedged process ignores it); a start that times out does not leave the process behind."""
        try:
            self.start()
            yield self
        finally:
            if self.alive:
                self.stop()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("service did not become healthy")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def service_env(database_url: str, fake_base_url: str, api_key: str, **extra: Any) -> dict[str, str]:
    env = {
        "YTR_ENVIRONMENT": "test",
        "YTR_DATABASE_URL": database_url,
        "YTR_LLM_PROVIDER": "anthropic",
        "ANTHROPIC_API_KEY": api_key,
        "YTR_ANTHROPIC_BASE_URL": fake_base_url,
        "YTR_LLM_MAX_RETRIES": "2",
        "YTR_STREAM_POLL_SECONDS": "0.05",
        "YTR_STREAM_STALE_AFTER_SECONDS": "3",
        "YTR_TRANSCRIPT_SOURCE": "samples",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env
