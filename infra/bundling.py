"""Lambda bundles built on the host, without Docker.

A bundle is a directory Lambda unzips into /var/task:

    ytresearch/   <- shared/ytresearch/ (the domain package)
    functions/    <- the Lambda entry points
    <packages>    <- the unit's locked requirements (infra/requirements/<profile>.txt)

Dependencies are installed with ``pip install --target`` for the Lambda platform (manylinux up to
glibc 2.34, aarch64, CPython 3.13, wheels only) from the hashed requirement file, ``--no-deps``
because the file is already the full locked closure. Environment markers are evaluated here for the
*target* platform (pip would evaluate them for the host). Before pip runs, :func:`missing_wheels`
checks that the lock names a wheel the target can load for every package, so a lock resolved for
another Python fails with the package names instead of a hash mismatch. When the host runs the
target's CPython, the bundle is byte-compiled with hash-based .pyc files so cold starts skip
compilation and the bundle stays reproducible (the API function's SnapStart snapshot holds the
compiled modules either way).

CDK calls :class:`LocalBundler` through ``BundlingOptions.local``. It always bundles (or raises), so
CDK never falls back to Docker; the image and command CDK requires are a placeholder that would
fail loudly if it ever did.
The asset hash is computed from the inputs (sources, requirement file, this module), so an
unchanged bundle already staged in cdk.out is reused instead of being rebuilt.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from packaging.markers import default_environment
from packaging.requirements import Requirement

from infra.lockfile import PROFILES, REPO_ROOT

# Paths copied into every bundle: (source in the repo, name inside the bundle).
SOURCE_TREES: tuple[tuple[str, str], ...] = (("shared/ytresearch", "ytresearch"), ("functions", "functions"))
IGNORED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo")

LAMBDA_PYTHON_VERSION = "3.13"
LAMBDA_ABI = "cp313"
# The python3.13 runtime runs on Amazon Linux 2023, glibc 2.34: manylinux2014 (= manylinux_2_17)
# wheels and newer-style tags up to manylinux_2_34 all load there (greenlet, for one, ships only
# manylinux_2_24+ wheels for aarch64). pip does not expand these tags itself, so list them.
LAMBDA_GLIBC_MINOR = 34
LAMBDA_PLATFORMS: tuple[str, ...] = (
    "manylinux2014_aarch64",
    *(f"manylinux_2_{minor}_aarch64" for minor in range(17, LAMBDA_GLIBC_MINOR + 1)),
)


@dataclass(frozen=True, kw_only=True)
class TargetPlatform:
    """Where the bundle will run: pip's platform flags and the PEP 508 marker environment."""

    name: str
    pip_args: tuple[str, ...]
    markers: dict[str, str]


def lambda_arm64() -> TargetPlatform:
    """The Lambda python3.13 runtime on Graviton (Amazon Linux 2023, glibc 2.34, aarch64)."""
    return TargetPlatform(
        name=f"lambda-python{LAMBDA_PYTHON_VERSION}-arm64",
        pip_args=(
            *(arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)),
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON_VERSION,
            "--abi",
            LAMBDA_ABI,
            "--only-binary=:all:",
        ),
        markers={
            "implementation_name": "cpython",
            "implementation_version": f"{LAMBDA_PYTHON_VERSION}.0",
            "os_name": "posix",
            "platform_machine": "aarch64",
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{LAMBDA_PYTHON_VERSION}.0",
            "python_version": LAMBDA_PYTHON_VERSION,
            "sys_platform": "linux",
        },
    )


def host_platform() -> TargetPlatform:
    """The machine running this code (used by the test that imports a bundle locally)."""
    return TargetPlatform(
        name="host",
        pip_args=("--only-binary=:all:",),
        markers={key: str(value) for key, value in default_environment().items()},
    )


@dataclass(frozen=True, kw_only=True)
class BundleSpec:
    """What goes into one function's bundle."""

    profile: str
    install_dependencies: bool = True
    platform: TargetPlatform | None = None

    @property
    def requirements_file(self) -> Path:
        return PROFILES[self.profile].path

    @property
    def target(self) -> TargetPlatform:
        return self.platform or lambda_arm64()


def _source_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in IGNORED_NAMES for part in relative.parts):
            continue
        if path.is_file() and not path.name.endswith(IGNORED_SUFFIXES):
            yield path


def input_hash(spec: BundleSpec, *, repo_root: Path = REPO_ROOT) -> str:
    """A digest of everything that decides the bundle's content (used as the asset hash)."""
    digest = hashlib.sha256()
    digest.update(f"profile={spec.profile}\n".encode())
    digest.update(f"dependencies={spec.install_dependencies}\n".encode())
    digest.update(f"platform={spec.target.name}\n".encode())
    inputs: list[tuple[str, Path]] = [
        ("bundling.py", Path(__file__)),
        ("requirements", spec.requirements_file),
    ]
    for source, _ in SOURCE_TREES:
        inputs += [
            (path.relative_to(repo_root).as_posix(), path) for path in _source_files(repo_root / source)
        ]
    for name, path in inputs:
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def select_requirements(text: str, markers: dict[str, str]) -> list[str]:
    """The requirement entries (with their hashes) whose markers hold on the target platform."""
    entries: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1].strip() + " "
            continue
        entries.append(current + line)
        current = ""
    if current:
        entries.append(current.strip())
    selected = []
    for entry in entries:
        spec, _, _hashes = entry.partition(" --hash")
        requirement = Requirement(spec.strip())
        if requirement.marker is None or requirement.marker.evaluate(markers):
            selected.append(entry)
    return selected


def copy_sources(out_dir: Path, *, repo_root: Path = REPO_ROOT) -> None:
    """Copy the domain package and the entry points into ``out_dir``."""
    for source, name in SOURCE_TREES:
        for path in _source_files(repo_root / source):
            target = out_dir / name / path.relative_to(repo_root / source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def install_dependencies(spec: BundleSpec, out_dir: Path) -> None:
    """pip-install the profile's locked requirements for the target platform into ``out_dir``."""
    entries = select_requirements(spec.requirements_file.read_text(), spec.target.markers)
    with tempfile.TemporaryDirectory(prefix="ytr-bundle-") as scratch:
        requirements = Path(scratch) / "requirements.txt"
        requirements.write_text("\n".join(entries) + "\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--no-compile",
            "--target",
            str(out_dir),
            *spec.target.pip_args,
            "--requirement",
            str(requirements),
        ]
        subprocess.run(command, check=True, timeout=900)
    # Console scripts carry the host interpreter's path in their shebang; Lambda never runs them.
    shutil.rmtree(out_dir / "bin", ignore_errors=True)


def missing_wheels(spec: BundleSpec) -> list[str]:
    """``name==version`` of each selected requirement whose hashes name no wheel that the Lambda
    target can load (checked against the wheel file names recorded in uv.lock)."""
    entries = select_requirements(spec.requirements_file.read_text(), spec.target.markers)
    wheels = _locked_wheel_names()
    missing = []
    for entry in entries:
        pin = entry.split(" ", 1)[0].split(";", 1)[0].strip()
        hashes = {part.split("=", 1)[1] for part in entry.split() if part.startswith("--hash=")}
        names = [wheels[digest] for digest in hashes if digest in wheels]
        if not any(_wheel_fits_lambda(name) for name in names):
            missing.append(pin)
    return missing


def _locked_wheel_names() -> dict[str, str]:
    """sha256 digest -> wheel file name, for every wheel uv.lock records."""
    import tomllib

    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    names: dict[str, str] = {}
    for package in lock.get("package", []):
        for wheel in package.get("wheels", []):
            names[wheel["hash"]] = wheel["url"].rsplit("/", 1)[-1]
    return names


def _wheel_fits_lambda(filename: str) -> bool:
    """A wheel loads on the Lambda target: pure Python, or cp313/abi3 for a manylinux aarch64 tag
    no newer than the runtime's glibc."""
    stem = filename.removesuffix(".whl").split("-")
    python_tags, abi_tags, platform_tags = (set(stem[-3].split(".")), stem[-2], stem[-1].split("."))
    if "any" in platform_tags:
        return bool(python_tags & {"py3", "py2.py3", "py30"} or python_tags & {"py313", LAMBDA_ABI})
    python_ok = LAMBDA_ABI in python_tags or (
        "abi3" in abi_tags and any(tag.startswith("cp3") and int(tag[3:]) <= 13 for tag in python_tags)
    )
    platform_ok = any(
        tag == "manylinux2014_aarch64"
        or (
            tag.startswith("manylinux_2_")
            and tag.endswith("_aarch64")
            and int(tag.split("_")[2]) <= LAMBDA_GLIBC_MINOR
        )
        for tag in platform_tags
    )
    return python_ok and platform_ok


class LockedForAnotherPythonError(RuntimeError):
    """uv.lock names no wheel the Lambda runtime can load for some packages."""


def byte_compile(out_dir: Path) -> None:
    """Pre-compile with hash-based .pyc (reproducible; /var/task is read-only at run time)."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != LAMBDA_PYTHON_VERSION:
        return  # .pyc files are version-specific; without a matching host, Lambda compiles on import
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(out_dir),
        ],
        check=True,
        timeout=600,
    )


def build_bundle(spec: BundleSpec, out_dir: Path, *, repo_root: Path = REPO_ROOT) -> Path:
    """Build a complete bundle for ``spec`` into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_sources(out_dir, repo_root=repo_root)
    if spec.install_dependencies:
        if spec.platform is None and (missing := missing_wheels(spec)):
            raise LockedForAnotherPythonError(
                f"uv.lock has no {LAMBDA_ABI} manylinux aarch64 wheel for {', '.join(missing)}: "
                f"widen pyproject's requires-python to include {LAMBDA_PYTHON_VERSION}, run "
                "`uv lock`, then `python -m infra.lockfile`"
            )
        install_dependencies(spec, out_dir)
        byte_compile(out_dir)
    return out_dir


@jsii.implements(ILocalBundling)
class LocalBundler:
    """``ILocalBundling`` for CDK: builds the bundle on the host, so no Docker engine is needed."""

    def __init__(self, spec: BundleSpec) -> None:
        self._spec = spec

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        # jsii passes the BundlingOptions positionally; everything needed is in the spec.
        del options
        build_bundle(self._spec, Path(output_dir))
        return True


# CDK requires an image for Docker bundling; it is never run (see the module docstring).
NO_DOCKER_IMAGE = "ytresearch/no-docker-bundling"
NO_DOCKER_COMMAND = [
    "sh",
    "-c",
    "echo 'bundles are built locally by infra/bundling.py; Docker bundling is unsupported' >&2; exit 1",
]


def lambda_code(spec: BundleSpec, *, repo_root: Path = REPO_ROOT) -> lambda_.Code:
    """Lambda code for ``spec``: an asset bundled locally, hashed by its inputs.

    The asset source is the repo root. With a custom hash CDK never walks it; the local bundler
    copies only what the bundle needs.
    """
    return lambda_.Code.from_asset(
        str(repo_root),
        asset_hash=input_hash(spec, repo_root=repo_root),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=DockerImage.from_registry(NO_DOCKER_IMAGE),
            command=NO_DOCKER_COMMAND,
            # jsii hands the options over positionally, which the generated Protocol cannot express.
            local=cast(ILocalBundling, LocalBundler(spec)),
        ),
    )
