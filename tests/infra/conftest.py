"""Infrastructure tests: synthesize the CDK app once per session per configuration, then inspect
the templates, the validation report (cdk-nag, CloudFormation checks) and the staged assets."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# The CDK's Node.js is the one package.json pins (node_modules/.bin/node, Node 22; `make node`),
# ahead of the system's: for the jsii runtime, which starts when aws_cdk is first imported (so this
# comes first), and for any `cdk` command the tests run.
os.environ["PATH"] = os.pathsep.join(
    (str(Path(__file__).parents[2] / "node_modules" / ".bin"), os.environ["PATH"])
)
# jsii warns on every synth that the machine's Node.js 20 nears end of life; CI's Node is fixed.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import pytest
from aws_cdk.assertions import Template

from tests.infra.synth import FULL_OPTIONS, STANDARD_OPTIONS, Synth, synthesize


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "network: downloads packages from the package index (deselect with -m 'not network')",
    )


@pytest.fixture(scope="session")
def synth_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ytr-cdk-test-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def default_synth(synth_dir: Path) -> Synth:
    """The app exactly as `cdk synth` builds it from cdk.json (dev, all defaults: the lean profile)."""
    return synthesize({}, synth_dir / "default")


@pytest.fixture(scope="session")
def standard_synth(synth_dir: Path) -> Synth:
    """dev with the standard profile: NAT gateway, public load balancer, on-demand Fargate."""
    return synthesize(STANDARD_OPTIONS, synth_dir / "standard")


@pytest.fixture(scope="session")
def full_synth(synth_dir: Path) -> Synth:
    """Production with every optional feature on (proxy, HTTPS, CORS, transcript proxy...)."""
    return synthesize(FULL_OPTIONS, synth_dir / "full")


@pytest.fixture(scope="session")
def template(default_synth: Synth) -> Template:
    return Template.from_json(default_synth.template)


@pytest.fixture(scope="session")
def standard_template(standard_synth: Synth) -> Template:
    return Template.from_json(standard_synth.template)


@pytest.fixture(scope="session")
def full_template(full_synth: Synth) -> Template:
    return Template.from_json(full_synth.template)
