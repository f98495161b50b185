"""The CDK runs on the Node.js that package.json pins (22+), not on whatever node the machine has."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.infra.synth import REPO_ROOT


def major(version: str) -> int:
    return int(version.strip().lstrip("v").split(".")[0])


def test_the_jsii_runtime_and_the_cdk_cli_find_node_22_first() -> None:
    # Given the pinned packages are installed (`make node`, which `make infra`/`synth`/`test` run)
    pinned = REPO_ROOT / "node_modules" / ".bin" / "node"
    assert pinned.exists(), "run `make node` (npm ci) to install the pinned Node.js and CDK CLI"

    # When a process of these tests looks for `node` (as jsii and `cdk`'s shebang do)
    found = shutil.which("node")

    # Then it finds the pinned one, at version 22 or later
    assert found == str(pinned)
    assert major(subprocess.run([found, "--version"], capture_output=True, text=True).stdout) >= 22


def test_package_json_requires_node_22_and_nvmrc_agrees() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text())
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())

    assert package["engines"]["node"] == ">=22"
    assert major(package["devDependencies"]["node"]) >= 22
    assert lock["packages"]["node_modules/node"]["version"] == package["devDependencies"]["node"]
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == package["devDependencies"]["aws-cdk"]
    assert major((REPO_ROOT / ".nvmrc").read_text()) >= 22


def test_npx_cdk_runs_the_pinned_cli_on_node_22() -> None:
    def npx(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["npx", "--no-install", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
        )

    # `cdk` starts with `#!/usr/bin/env node`: under npx that is the node npx puts first
    node, cdk = npx("node", "--version"), npx("cdk", "--version")

    assert major(node.stdout) >= 22
    assert cdk.returncode == 0, cdk.stderr
    pinned = json.loads((REPO_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert cdk.stdout.startswith(pinned)
    assert "end-of-life" not in cdk.stderr.lower() and "end of life" not in cdk.stderr.lower()
