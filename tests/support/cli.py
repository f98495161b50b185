"""The local system (what `make run` starts) served on loopback, with one user's key, and the
real `ytr` command run against it as a user runs it (a subprocess)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from local_run.app import build_local_app
from tests.support.clients import client_for
from tests.support.server import serve
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import Settings

YTR = str(Path(sys.executable).parent / "ytr")  # the client installed next to this Python


@dataclass
class System:
    """The local system (REST + streaming + embedded ingest queue) and one user's key."""

    base_url: str
    container: Container
    key: str
    workdir: Path

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            **os.environ,
            "YTR_API_URL": self.base_url,
            "YTR_STREAM_URL": self.base_url,
            "YTR_API_KEY": self.key,
            "YTR_CONFIG": str(self.workdir / "absent-config.toml"),  # never the developer's own
        }
        env.update(overrides)
        return env

    def ytr(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [YTR, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=self.workdir,
            timeout=120,
        )

    def ytr_json(self, *args: str) -> Any:
        result = self.ytr("--json", *args)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def api(self) -> httpx.Client:
        return client_for(self.base_url, self.key)


@contextlib.contextmanager
def local_system(settings: Settings, workdir: Path, **adapters: Any) -> Iterator[System]:
    """What `make run` starts, on a free loopback port, with the given adapters."""
    container = Container(settings, **adapters)
    app, queue = build_local_app(container)
    queue.start()
    try:
        with serve(app) as server:
            yield System(server.base_url, container, make_user(container)[1], workdir)
    finally:
        queue.stop()
        container.engine.dispose()
