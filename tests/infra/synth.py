"""Synthesizing the CDK app for tests: no Docker, no network, no credentials."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The jsii runtime prints a banner about the host's Node.js version to stderr; not our concern here.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, CfnElement, Stack
from constructs import IConstruct

from infra.app import build_app
from infra.stack import YtResearchStack

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_ACCOUNT = "123456789012"
TEST_REGION = "us-east-1"
TEST_ENVIRON = {"CDK_DEFAULT_ACCOUNT": TEST_ACCOUNT, "CDK_DEFAULT_REGION": TEST_REGION}
# What `cdk deploy` would have looked up with credentials and cached in cdk.context.json.
AZ_CONTEXT = {
    f"availability-zones:account={TEST_ACCOUNT}:region={TEST_REGION}": [
        f"{TEST_REGION}a",
        f"{TEST_REGION}b",
    ]
}
TEST_CERTIFICATE_ARN = (
    f"arn:aws:acm:{TEST_REGION}:{TEST_ACCOUNT}:certificate/0e6f1c2a-1111-2222-3333-444455556666"
)
TEST_DOMAIN_NAME = "stream-origin.example.org"
# Every optional feature switched on, production settings.
FULL_OPTIONS: dict[str, Any] = {
    "environment": "prod",
    "certificate_arn": TEST_CERTIFICATE_ARN,
    "domain_name": TEST_DOMAIN_NAME,
    "cors_origins": "http://localhost:5173,http://127.0.0.1:8000",
    "db_proxy": "true",
    "db_multi_az": "true",
    "transcript_proxy": "true",
    "container_insights": "true",
    "alarm_email": "alerts@localhost",
    "nat_gateways": "2",
    "auth_callback_urls": "https://research.example.org/,http://localhost:8000/",
    "auth_logout_urls": "https://research.example.org/",
    "cognito_domain_prefix": "ytresearch-prod-test",
    "cognito_threat_protection": "true",
}


# The standard profile in dev: the NAT gateway, the public load balancer and the rest of what the
# standard profile (staging's and prod's default) deploys, with dev's other settings.
STANDARD_OPTIONS: dict[str, Any] = {"profile": "standard"}
# Every synthesized configuration the whole-template checks (cdk-nag, cfn-lint, checkov, tags)
# run over: the lean dev default, the standard profile, and prod with every feature on.
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "standard": STANDARD_OPTIONS,
    "full": FULL_OPTIONS,
}


def cdk_json_context() -> dict[str, Any]:
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass
class Synth:
    """One synthesized app: its stack object, the files in its cloud assembly, and the outcome
    of synth-time validation (cdk-nag and CDK's CloudFormation checks)."""

    app: App
    stack: YtResearchStack
    outdir: Path
    error: str | None
    _template: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def template(self) -> dict[str, Any]:
        if self._template is None:
            path = self.outdir / f"{self.stack.stack_name}.template.json"
            self._template = json.loads(path.read_text())
        return self._template

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    @property
    def report(self) -> dict[str, Any]:
        path = self.outdir / "validation-report.json"
        return json.loads(path.read_text()) if path.exists() else {"pluginReports": []}

    def violations(self, plugin: str) -> list[tuple[str, str, str]]:
        """(rule, construct path, severity) of every unacknowledged finding of ``plugin``."""
        found = []
        for report in self.report["pluginReports"]:
            if report["pluginName"] != plugin:
                continue
            for violation in report["violations"]:
                for construct in violation["violatingConstructs"]:
                    found.append((violation["ruleName"], construct["constructPath"], violation["severity"]))
        return found

    def logical_id(self, construct: IConstruct) -> str:
        element = construct if isinstance(construct, CfnElement) else construct.node.default_child
        assert isinstance(element, CfnElement), f"{construct.node.path} has no CFN resource"
        stack = Stack.of(element)
        resolved: str = stack.resolve(stack.get_logical_id(element))
        return resolved

    def assets_manifest(self) -> dict[str, Any]:
        path = self.outdir / f"{self.stack.stack_name}.assets.json"
        manifest: dict[str, Any] = json.loads(path.read_text())
        return manifest


def synthesize(options: Mapping[str, Any], outdir: Path) -> Synth:
    """Synthesize with cdk.json's context plus ``options``, without installing Lambda
    dependencies (sources only), so neither Docker nor the network is needed."""
    context = {**cdk_json_context(), **AZ_CONTEXT, "bundle_dependencies": False, **options}
    app = build_app(context=context, outdir=str(outdir), environ=TEST_ENVIRON)
    stacks = [child for child in app.node.children if isinstance(child, YtResearchStack)]
    assert len(stacks) == 1
    try:
        app.synth()
        error = None
    except RuntimeError as exc:  # validation failures; the templates are written before them
        error = str(exc)
    return Synth(app=app, stack=stacks[0], outdir=outdir, error=error)


def function_by_handler(synth: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (logical_id, resource)
        for logical_id, resource in synth.of_type("AWS::Lambda::Function").items()
        if resource["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, f"expected one function with handler {handler}, got {matches}"
    return matches[0]


def is_intrinsic(value: Any) -> bool:
    """A CloudFormation intrinsic (Ref, Fn::*) rather than a literal."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::"))


def container_environment(synth: Synth) -> dict[str, Any]:
    """The streaming service container's environment variables."""
    task = next(iter(synth.of_type("AWS::ECS::TaskDefinition").values()))["Properties"]
    (container,) = task["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}
