"""The container image, built the way the Dockerfile builds it but without Docker: a fresh venv
from the locked, hashed requirements, the project installed into it from a copy of exactly the
paths the Dockerfile copies, then the CMD's module run from outside the source tree."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.components.streaming import DOCKERFILE, HEALTH_PATH
from infra.lockfile import REPO_ROOT
from tests.support.postgres import free_port


def dockerfile_instructions() -> list[tuple[str, str]]:
    lines = (REPO_ROOT / DOCKERFILE).read_text().replace("\\\n", " ").splitlines()
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line.strip() and not line.lstrip().startswith("#") and len(line.split(None, 1)) == 2
    ]


@pytest.mark.network
def test_the_image_entry_point_serves_from_a_fresh_venv(tmp_path: Path) -> None:
    steps = dockerfile_instructions()
    cmd = json.loads(next(args for kind, args in steps if kind == "CMD"))
    venv, context = tmp_path / "venv", tmp_path / "src"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [
            *pip,
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "-r",
            str(REPO_ROOT / "infra" / "requirements" / "streaming.txt"),
        ],
        check=True,
        timeout=900,
    )
    for kind, args in steps:  # only what the Dockerfile copies reaches the build
        if kind == "COPY" and "--from" not in args and "requirements" not in args:
            for source in args.split()[:-1]:
                path = REPO_ROOT / source
                target = context / source
                if path.is_dir():
                    shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, target)
    subprocess.run([*pip, "--no-deps", str(context)], check=True, timeout=300)

    python = str(venv / "bin" / "python")
    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "YTR_ENVIRONMENT": "dev",
        "YTR_DATABASE_URL": f"sqlite:///{tmp_path}/app.db",
        "YTR_DRAIN_GRACE_SECONDS": "1",
    }
    subprocess.run(
        [python, "-c", "from ytresearch.db.migrations import upgrade_to_head; upgrade_to_head()"],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    assert cmd[0] == "python"
    args = [python, *cmd[1:]]
    args[args.index("--host") + 1], args[args.index("--port") + 1] = "127.0.0.1", str(port)
    server = subprocess.Popen(
        args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                live = httpx.get(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=1)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "the image's CMD did not serve"
                time.sleep(0.2)
        assert live.status_code == 200
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health["database"] == "up"
        server.send_signal(signal.SIGTERM)  # what ECS sends: drains and exits cleanly
        assert server.wait(30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    output = server.stdout.read() if server.stdout else ""
    assert "Traceback" not in output
    assert not os.path.exists(context / ".ytr")  # nothing written into the source copy
