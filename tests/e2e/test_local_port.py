"""`make run PORT=8100`: the local system on a port other than 8000, used with `ytr` as its start-up
banner says (a real process on loopback, the real `ytr` client in real subprocesses)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import YTR
from tests.support.health import wait_until_healthy
from tests.support.postgres import free_port

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
        wait_until_healthy(base, server, failure="make run did not come up")
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


def _client_dependencies() -> set[str]:
    """The top-level import names of the client's declared dependencies and everything they need
    (read from the installed distributions' metadata, markers evaluated for this interpreter)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    names: set[str] = set()
    pending, seen = ["ytr-client"], set()
    while pending:
        dist = metadata.distribution(pending.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        if dist.metadata["Name"] != "ytr-client":
            tops = (dist.read_text("top_level.txt") or "").split()
            tops += [f.parts[0] for f in dist.files or [] if f.parts[0].endswith((".py", ".so"))]
            tops += [f.parts[0] for f in dist.files or [] if len(f.parts) > 1 and f.parts[1] == "__init__.py"]
            names.update(top.removesuffix(".py") for top in tops)
        for raw in dist.requires or []:
            requirement = Requirement(raw)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return names


def test_the_client_installed_alone_talks_to_the_system(local_run: LocalRun, tmp_path: Path) -> None:
    """`pip install ./client` into an environment with nothing else: its wheel holds only `ytr`,
    declares only its small dependencies, and `ytr` works against a running system."""
    import sysconfig
    import zipfile

    uv = str(Path(sys.executable).parent / "uv")
    repo = Path(__file__).resolve().parents[2]
    source = tmp_path / "client"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(
        repo / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [
            uv,
            "build",
            "--wheel",
            "--python",
            sys.executable,
            "--out-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    (wheel,) = (tmp_path / "dist").glob("ytr_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packages = {
            name.split("/")[0] for name in archive.namelist() if not name.split("/")[0].endswith(".dist-info")
        }
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read("ytr_client-0.1.0.dist-info/METADATA").decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert packages == {"ytr"}
    assert sorted(r.split(">")[0].split("=")[0].split("<")[0] for r in requires) == ["httpx", "websockets"]

    # A fresh environment: the wheel, plus only its dependency closure (offline, from this .venv).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run(
        [uv, "pip", "install", "--no-deps", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    site = Path(sysconfig.get_paths()["purelib"])
    deps = tmp_path / "deps"
    deps.mkdir()
    for name in _client_dependencies():
        for candidate in (site / name, site / f"{name}.py"):
            if candidate.exists():
                (deps / candidate.name).symlink_to(candidate)
    (venv_site,) = (venv / "lib").glob("python3.*/site-packages")
    (venv_site / "client-deps.pth").write_text(f"{deps}\n")

    env = {**local_run.env, "YTR_API_URL": local_run.base, "HOME": str(tmp_path)}

    def ytr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "ytr"), *args],
            cwd=local_run.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    server_side = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; print([m for m in "
            "('ytresearch', 'sqlalchemy', 'fastapi', 'boto3', 'anthropic', 'pydantic') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert server_side.stdout.strip() == "[]"
    created = ytr("--json", "sessions", "create", "--title", "client alone")
    assert created.returncode == 0, created.stderr
    sid = json.loads(created.stdout)["id"]
    added = ytr("--json", "videos", "add", sid, "https://youtu.be/SoLarP4nels")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["video"]["status"] == "ready"
    chat = ytr("--json", "chat", sid, "How do solar panels make electricity?", "--transport", "ws")
    assert chat.returncode == 0, chat.stderr
    assert json.loads(chat.stdout)["status"] == "complete"
