"""The README's quick start, word for word: the local system started as `make run` starts it (a
real process on loopback), driven by the `ytr` commands from the README."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.health import wait_until_healthy
from tests.support.postgres import free_port

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def readme_quickstart() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```", text, re.S)
    assert match, "README has no quick start block"
    return match.group(1)


def test_readme_quick_start_reaches_a_streamed_answer(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # As `make run` does, from a fresh directory: SQLite, embedded queue, offline model, samples.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YTR_", "ANTHROPIC"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "local_run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_healthy(base, server, failure="make run did not come up")
        key = (tmp_path / ".ytr" / "dev_api_key").read_text().strip()
        script = readme_quickstart().replace(".venv/bin/ytr", str(Path(sys.executable).parent / "ytr"))
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            env={**env, "YTR_API_URL": base, "YTR_STREAM_URL": base, "YTR_API_KEY": key},
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "How Solar Panels Actually Work" in out  # the video's title from its metadata
        assert "Offline summary" in out  # its summary, when ingest finished
        assert out.count("Offline model: here is what the videos say about that") == 2  # answer + history
        assert "How do solar panels make electricity?" in out  # the history shows the question
    finally:
        server.terminate()
        startup = server.communicate(timeout=20)[0]
    assert "API key:" in startup and "YouTube Research Tool running at" in startup  # it says how to use it
