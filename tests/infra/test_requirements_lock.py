"""The requirement files behind the Lambda bundles and the image agree with uv.lock, and each unit
carries only what it imports."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.lockfile import PROFILES, export
from tests.infra.synth import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def _lock() -> dict[str, dict[str, Any]]:
    data = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {canonicalize_name(p["name"]): p for p in data["package"]}


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _lock_hashes(package: dict[str, Any]) -> set[str]:
    artifacts = [*package.get("wheels", []), package.get("sdist")]
    return {str(a["hash"]).removeprefix("sha256:") for a in artifacts if a}


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_pin_and_hash_matches_uv_lock(profile: str) -> None:
    lock = _lock()
    path = PROFILES[profile].path
    text = path.read_text()
    pins = _pins(path)

    assert pins, f"{path} pins nothing"
    for name, version in pins.items():
        assert name in lock, f"{name} is not in uv.lock"
        assert version == lock[name]["version"], f"{name}=={version} but uv.lock has {lock[name]}"
    # Every hash belongs to an artifact of the locked version of its package.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for block in blocks:
        if not (match := PIN.match(block)):
            continue
        hashes = set(HASH.findall(block))
        assert hashes, f"{match.group(1)} has no hashes"
        assert hashes <= _lock_hashes(lock[canonicalize_name(match.group(1))])


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_files_are_current_with_uv_lock(profile: str) -> None:
    expected = export(PROFILES[profile])

    assert PROFILES[profile].path.read_text() == expected, "stale: run `.venv/bin/python -m infra.lockfile`"


def _names(profile: str) -> set[str]:
    return set(_pins(PROFILES[profile].path))


def test_crud_bundle_carries_what_the_crud_function_imports_and_nothing_more() -> None:
    names = _names("api")

    assert {
        "fastapi",
        "mangum",
        "pydantic",
        "pydantic-settings",
        "sqlalchemy",
        "pg8000",
        "aws-lambda-powertools",
        "anthropic",
        "httpx",
    } <= names
    assert not names & {
        "uvicorn",
        "websockets",
        "psycopg",  # the streaming service's LISTEN connection only
        "psycopg-binary",
        "youtube-transcript-api",
        "alembic",
        "moto",
        "aws-cdk-lib",
        "boto3",
        "botocore",
        "pytest",
    }


def test_ingest_bundle_adds_the_transcript_client() -> None:
    names = _names("ingest")

    assert {"youtube-transcript-api", "requests"} <= names
    assert _names("api") <= names
    assert not names & {"uvicorn", "websockets", "psycopg", "alembic", "boto3", "botocore", "moto"}


def test_migrate_bundle_carries_alembic_and_the_database_stack_only() -> None:
    names = _names("migrate")

    assert {"sqlalchemy", "pg8000", "alembic", "pydantic-settings", "aws-lambda-powertools"} <= (names)
    assert not names & {"fastapi", "anthropic", "uvicorn", "psycopg", "youtube-transcript-api", "boto3"}


def test_image_carries_the_full_runtime_including_its_own_boto3() -> None:
    names = _names("streaming")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

    direct = {canonicalize_name(Requirement(d).name) for d in project["dependencies"]}
    assert direct <= names
    assert not names & {"moto", "pytest", "aws-cdk-lib", "cdk-nag", "mypy"}
