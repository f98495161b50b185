"""The streaming image's Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.components.streaming import CONTAINER_PORT, DOCKERFILE, HEALTH_PATH
from infra.config import DRAIN_GRACE_SECONDS, UVICORN_CLOSE_SECONDS, InfraConfig
from infra.lockfile import PROFILES
from tests.infra.synth import REPO_ROOT, Synth


@dataclass(frozen=True)
class Instruction:
    name: str
    args: str


def _parse(path: Path) -> list[list[Instruction]]:
    """Instructions grouped by build stage (each FROM starts one)."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        name, _, args = line.partition(" ")
        instruction = Instruction(name.upper(), args.strip())
        if instruction.name == "FROM":
            stages.append([])
        if stages:  # global ARGs before the first FROM belong to no stage
            stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return _parse(REPO_ROOT / DOCKERFILE)


def _all(stage: list[Instruction], name: str) -> list[str]:
    return [i.args for i in stage if i.name == name]


def _cmd(stages: list[list[Instruction]]) -> list[str]:
    (cmd,) = _all(stages[-1], "CMD")
    command: list[str] = json.loads(cmd)  # exec form, so SIGTERM reaches uvicorn directly
    return command


def test_every_stage_starts_from_one_pinned_python_3_13_slim_image() -> None:
    text = (REPO_ROOT / DOCKERFILE).read_text()
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.MULTILINE)
    froms = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)

    # An exact patch release on a named Debian release (or a digest), never a moving tag.
    assert re.fullmatch(r"python:3\.13\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", default)
    assert froms and all(image == "${PYTHON_IMAGE}" for image in froms)


def test_the_runtime_stage_runs_as_a_non_root_user(stages: list[list[Instruction]]) -> None:
    final = stages[-1]
    users = _all(final, "USER")

    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    names = [i.name for i in final]
    assert names.index("USER") < names.index("CMD")


def test_cmd_runs_the_draining_server_module(stages: list[list[Instruction]]) -> None:
    command = _cmd(stages)
    assert command[:3] == ["python", "-m", "streaming_service.serve"]
    assert (REPO_ROOT / "streaming_service" / "serve.py").is_file()
    assert command[command.index("--port") + 1] == str(CONTAINER_PORT)
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_drain_fits_inside_the_task_stop_timeout(default_synth: Synth) -> None:
    task = next(iter(default_synth.of_type("AWS::ECS::TaskDefinition").values()))
    container = task["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    drain = int(env["YTR_DRAIN_GRACE_SECONDS"])
    assert drain == DRAIN_GRACE_SECONDS
    assert (
        drain + UVICORN_CLOSE_SECONDS
        < container["StopTimeout"]
        == InfraConfig().container_stop_timeout_seconds
    )


def test_exposes_the_container_port_and_checks_health(stages: list[list[Instruction]]) -> None:
    final = stages[-1]

    assert _all(final, "EXPOSE") == [str(CONTAINER_PORT)]
    (healthcheck,) = _all(final, "HEALTHCHECK")
    assert f"127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}" in healthcheck


def test_dependencies_come_from_the_locked_hashed_requirements(
    stages: list[list[Instruction]],
) -> None:
    requirements = PROFILES["streaming"].path.relative_to(REPO_ROOT).as_posix()
    build = [i for stage in stages[:-1] for i in stage]
    copies = [i.args for i in build if i.name == "COPY"]
    installs = [i.args for i in build if i.name == "RUN" and "pip install" in i.args]

    assert any(shlex.split(copy)[0] == requirements for copy in copies)
    locked = [run for run in installs if "-r " in run]
    assert locked and all("--require-hashes" in run and "--no-deps" in run for run in locked)
    assert all("--no-deps" in run for run in installs)


def test_every_copied_path_exists_and_reaches_the_build_context(
    stages: list[list[Instruction]], default_synth: Synth
) -> None:
    (image,) = default_synth.assets_manifest()["dockerImages"].values()
    context = default_synth.outdir / image["source"]["directory"]
    sources = [
        source
        for stage in stages
        for copy in _all(stage, "COPY")
        if not copy.startswith("--from")
        for source in shlex.split(copy)[:-1]
    ]

    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repo"
        assert (context / source).exists(), f"COPY {source}: excluded by .dockerignore"
