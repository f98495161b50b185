"""Lambda bundles built without Docker: what goes in, for which platform, and (with the network)
that a bundle alone is enough to import the function."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra.bundling import (
    BundleSpec,
    _wheel_fits_lambda,
    build_bundle,
    host_platform,
    input_hash,
    lambda_arm64,
    missing_wheels,
    select_requirements,
)
from tests.infra.synth import Synth, function_by_handler

SAMPLE_REQUIREMENTS = textwrap.dedent(
    """\
    # header
    greenlet==3.5.6 ; platform_machine == 'aarch64' or platform_machine == 'x86_64' \\
        --hash=sha256:aaaa \\
        --hash=sha256:bbbb
        # via sqlalchemy
    colorama==0.4.6 ; sys_platform == 'win32' \\
        --hash=sha256:cccc
    uvloop==0.23.0 ; sys_platform != 'win32' and platform_python_implementation != 'PyPy'
    tomli==2.0.1 ; python_full_version < '3.11'
    six==1.17.0 \\
        --hash=sha256:dddd
    """
)


def test_markers_are_evaluated_for_lambda_not_for_the_host() -> None:
    selected = select_requirements(SAMPLE_REQUIREMENTS, lambda_arm64().markers)

    assert [entry.split("==")[0] for entry in selected] == ["greenlet", "uvloop", "six"]
    assert "--hash=sha256:aaaa" in selected[0] and "--hash=sha256:bbbb" in selected[0]


def test_lambda_bundles_use_cp313_manylinux_aarch64_wheels_only() -> None:
    args = " ".join(lambda_arm64().pip_args)

    assert "--platform manylinux2014_aarch64" in args
    assert "--python-version 3.13" in args
    assert "--abi cp313" in args
    assert "--implementation cp" in args
    assert "--only-binary=:all:" in args
    assert "x86_64" not in args
    # Amazon Linux 2023 has glibc 2.34: nothing newer may be accepted.
    assert "manylinux_2_34_aarch64" in args and "manylinux_2_35" not in args
    assert lambda_arm64().markers["python_version"] == "3.13"


@pytest.mark.parametrize(
    ("wheel", "fits"),
    [
        ("six-1.17.0-py2.py3-none-any.whl", True),
        ("pydantic_core-2.50.4-cp313-cp313-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", True),
        ("cryptography-46.0.0-cp311-abi3-manylinux_2_34_aarch64.whl", True),
        ("pydantic_core-2.50.4-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", False),
        ("greenlet-3.5.6-cp313-cp313-manylinux_2_39_aarch64.whl", False),  # glibc too new
        ("greenlet-3.5.6-cp313-cp313-manylinux_2_24_x86_64.whl", False),
    ],
)
def test_wheels_are_judged_for_the_lambda_runtime(wheel: str, fits: bool) -> None:
    assert _wheel_fits_lambda(wheel) is fits


@pytest.mark.parametrize("profile", ["api", "ingest", "migrate"])
def test_the_lock_has_a_lambda_wheel_for_every_bundled_package(profile: str) -> None:
    assert missing_wheels(BundleSpec(profile=profile)) == []


def test_bundle_holds_the_domain_package_as_ytresearch_and_the_entry_points(
    tmp_path: Path,
) -> None:
    out = build_bundle(BundleSpec(profile="api", install_dependencies=False), tmp_path / "b")

    assert (out / "ytresearch" / "__init__.py").is_file()
    assert (out / "ytresearch" / "config.py").is_file()
    assert (out / "functions" / "api" / "handler.py").is_file()
    assert (out / "functions" / "migrate" / "handler.py").is_file()
    assert not (out / "shared").exists()
    assert not list(out.rglob("__pycache__"))


def _fake_repo(root: Path) -> Path:
    for relative, text in {
        "shared/ytresearch/__init__.py": "",
        "shared/ytresearch/db/migrations/versions/0001_init.py": "revision = '0001'\n",
        "functions/__init__.py": "",
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_input_hash_follows_sources_but_not_bytecode(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path)
    spec = BundleSpec(profile="migrate")
    before = input_hash(spec, repo_root=repo)

    (repo / "shared" / "ytresearch" / "db" / "__pycache__").mkdir()
    (repo / "shared" / "ytresearch" / "db" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    unchanged = input_hash(spec, repo_root=repo)
    (repo / "shared/ytresearch/db/migrations/versions/0002_more.py").write_text("revision = '0002'\n")
    changed = input_hash(spec, repo_root=repo)

    assert unchanged == before
    assert changed != before
    assert input_hash(BundleSpec(profile="migrate", install_dependencies=False), repo_root=repo) != (changed)


def test_synth_in_tests_stages_sources_without_dependencies(default_synth: Synth) -> None:
    _, function = function_by_handler(default_synth, "functions.api.handler.handler")
    key = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    staged = default_synth.outdir / f"asset.{key}"

    assert (staged / "ytresearch" / "config.py").is_file()
    assert (staged / "functions" / "api" / "handler.py").is_file()
    assert not (staged / "fastapi").exists()


def test_no_lambda_asset_carries_client_code(default_synth: Synth) -> None:
    """The `ytr` client is its own package (client/): no function's bundle ships it."""
    keys = [
        fn["Properties"]["Code"].get("S3Key")
        for fn in default_synth.of_type("AWS::Lambda::Function").values()
    ]
    staged = [
        default_synth.outdir / f"asset.{key.removesuffix('.zip')}" for key in keys if isinstance(key, str)
    ]
    staged_assets = [asset for asset in staged if (asset / "functions").is_dir()]  # ours, not CDK's
    assert len(staged_assets) >= 4  # api, ingest, migrate, admin

    for staged in staged_assets:
        top = {path.name for path in staged.iterdir()}
        assert top == {"ytresearch", "functions"}, top
        assert not (staged / "ytresearch" / "cli").exists()
        importing_the_client = [
            path
            for path in staged.rglob("*.py")
            if any(
                line.startswith(("import ytr", "from ytr ", "from ytr."))
                for line in path.read_text().splitlines()
            )
        ]
        assert importing_the_client == []


CLEAN_IMPORT = textwrap.dedent(
    """\
    import importlib, importlib.util, sys
    bundle, module, absent, lazy, present = sys.argv[1:6]
    sys.path.insert(0, bundle)
    entry = importlib.import_module(module)
    assert callable(entry.handler), "no handler"
    for name in filter(None, lazy.split(",")):
        assert name not in sys.modules, name + " imported at cold start"
    for name in filter(None, absent.split(",")):
        assert importlib.util.find_spec(name) is None, name + " is in the bundle"
    for name in filter(None, present.split(",")):
        importlib.import_module(name)
    print("imported", entry.__file__)
    """
)

# (profile, entry module, must be absent, must not be imported by the entry, must import)
BUNDLES = [
    (
        "api",
        "functions.api.handler",
        "uvicorn,youtube_transcript_api,alembic,moto,aws_cdk,boto3,websockets",
        "anthropic,boto3",
        "anthropic,mangum,pg8000,sqlalchemy.dialects.postgresql.pg8000,jwt",
    ),
    (
        "migrate",
        "functions.migrate.handler",
        "fastapi,anthropic,uvicorn,youtube_transcript_api,moto,aws_cdk,boto3",
        "",
        "ytresearch.db.migrations,alembic,pg8000",
    ),
]


@pytest.mark.network
@pytest.mark.parametrize(("profile", "module", "absent", "lazy", "present"), BUNDLES)
def test_bundle_alone_imports_the_function_in_a_clean_interpreter(
    tmp_path: Path, profile: str, module: str, absent: str, lazy: str, present: str
) -> None:
    # Given the profile's bundle built for this machine from the package index
    bundle = build_bundle(BundleSpec(profile=profile, platform=host_platform()), tmp_path / "b")

    # When a fresh interpreter with no site-packages (-I -S) imports the entry point from it
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CLEAN_IMPORT, str(bundle), module, absent, lazy, present],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then it imports, carries none of what it must not, and loads heavy clients lazily
    assert result.returncode == 0, result.stderr
    assert str(bundle) in result.stdout
