"""Locked requirement files for the Lambda bundles and the streaming image, exported from uv.lock.

Each deployable unit installs exactly what it imports: its file is ``uv export`` of the project's
runtime dependencies with the packages it does not need pruned (``--prune`` drops a package and
whatever only it needed). The files carry the lock's hashes, so ``pip --require-hashes`` installs
the very artifacts the lock names.

Regenerate after ``uv lock``::

    .venv/bin/python -m infra.lockfile          # rewrite infra/requirements/*.txt
    .venv/bin/python -m infra.lockfile --check  # exit 1 when a file is stale
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_DIR = Path(__file__).resolve().parent / "requirements"

HEADER = (
    "# Locked requirements for the {name} {kind}, exported from uv.lock. Do not edit:\n"
    "# regenerate with `.venv/bin/python -m infra.lockfile` (tests/infra checks it is current).\n"
)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One deployable unit and the locked runtime packages it leaves out."""

    name: str
    kind: str
    prune: tuple[str, ...]

    @property
    def path(self) -> Path:
        return REQUIREMENTS_DIR / f"{self.name}.txt"


# boto3/botocore come from the Lambda runtime; uvicorn, websockets and psycopg (the event log's
# LISTEN connection) only serve the container; alembic only runs in the migration function;
# youtube-transcript-api only in ingest; the migration function authenticates nobody (pyjwt) and
# calls no model (anthropic, jiter).
PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="api",
            kind="Lambda bundle",
            prune=("uvicorn", "websockets", "psycopg", "youtube-transcript-api", "alembic", "boto3"),
        ),
        Profile(
            name="ingest",
            kind="Lambda bundle",
            prune=("uvicorn", "websockets", "psycopg", "alembic", "boto3"),
        ),
        Profile(
            name="migrate",
            kind="Lambda bundle",
            prune=(
                "fastapi",
                "mangum",
                "anthropic",
                "jiter",  # the Claude adapter's partial JSON: never imported by a migration
                "httpx",
                "uvicorn",
                "websockets",
                "psycopg",
                "youtube-transcript-api",
                "pyjwt",
                "boto3",
            ),
        ),
        Profile(name="streaming", kind="container image", prune=()),
    )
}


def find_uv() -> str:
    """The uv binary installed by `make install` (beside the venv's python), else one on PATH."""
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found: run `make install` (it installs uv into .venv)")
    return found


def export(profile: Profile, *, uv: str | None = None) -> str:
    """The requirement file text for ``profile``, exported from uv.lock without touching it."""
    command = [
        uv or find_uv(),
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-project",
        "--no-header",
        "--format",
        "requirements.txt",
    ]
    for package in profile.prune:
        command += ["--prune", package]
    result = subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, text=True, timeout=120)
    return HEADER.format(name=profile.name, kind=profile.kind) + result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    stale = []
    for profile in PROFILES.values():
        text = export(profile)
        current = profile.path.read_text() if profile.path.exists() else None
        if current == text:
            continue
        stale.append(profile.path)
        if not args.check:
            profile.path.parent.mkdir(parents=True, exist_ok=True)
            profile.path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(REPO_ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
