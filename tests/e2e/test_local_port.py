"""`make run PORT=8100`: the local system on a port other than 8000, used with `ytr` as its start-up
banner says (a real process on loopback, the real `ytr` client in real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port

YTR = str(Path(sys.executable).parent / "ytr")

pytestmark = pytest.mark.slow


@dataclass
class LocalRun:
    base: str
    folder: Path
    banner: list[str]
    env: dict[str, str]  # the environment of a shell with no YTR_ settings


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    folder = tmp_path_factory.mktemp("clone")
    port = free_port()
    while port == 8000:
        port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YTR_", "ANTHROPIC"))}
    env["YTR_CONFIG"] = str(folder / "no-config.toml")  # never the developer's own
    with (folder / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "local_run", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=log,  # the JSON logs
            stderr=subprocess.PIPE,  # the banner, for the person at the terminal
            text=True,
        )
    try:
        assert server.stderr is not None
        banner: list[str] = []
        while not any("YTR_API_KEY=" in line for line in banner):
            line = server.stderr.readline()
            assert line, f"no banner: {banner}"
            banner.append(line.rstrip("\n"))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "make run did not come up"
            time.sleep(0.1)
        yield LocalRun(base, folder, banner, env)
    finally:
        server.terminate()
        server.wait(20)


def test_the_banner_prints_the_exports_for_this_port(local_run: LocalRun) -> None:
    key = (local_run.folder / ".ytr" / "dev_api_key").read_text().strip()

    exports = [line.strip() for line in local_run.banner if line.strip().startswith("export ")]

    assert exports == [
        f"export YTR_API_URL={local_run.base} YTR_STREAM_URL={local_run.base}",
        f"export YTR_API_KEY={key}",
    ]


def test_from_the_clone_only_the_api_url_is_needed(local_run: LocalRun) -> None:
    # The key is found in .ytr/dev_api_key for this local port; the stream URL follows the API URL.
    env = {**local_run.env, "YTR_API_URL": local_run.base}

    def ytr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [YTR, *args], cwd=local_run.folder, env=env, capture_output=True, text=True, timeout=120
        )

    created = ytr("--json", "sessions", "create", "--title", "port 8100")
    assert created.returncode == 0, created.stderr
    sid = json.loads(created.stdout)["id"]
    for transport in ("sse", "ws"):
        chat = ytr("--json", "chat", sid, "What is this about?", "--transport", transport)
        assert chat.returncode == 0, chat.stderr
        assert json.loads(chat.stdout)["status"] == "complete"


def test_from_anywhere_the_banners_exports_are_enough(local_run: LocalRun, tmp_path: Path) -> None:
    exports = "\n".join(line.strip() for line in local_run.banner if line.strip().startswith("export "))
    new_session = "import json,sys; print(json.load(sys.stdin)['id'])"
    script = (
        f"{exports}\n"
        f'SID=$({YTR} --json sessions create | python3 -c "{new_session}")\n'
        f'{YTR} chat "$SID" "What is this about?"\n'
    )

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,  # no .ytr/dev_api_key here
        env=local_run.env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "Offline model" in result.stdout
