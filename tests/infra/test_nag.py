"""cdk-nag (AwsSolutions) and CDK's own CloudFormation checks run on every synth: no unacknowledged
findings, and every acknowledgement is specific and still needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cdk import Validations
from constructs import IConstruct

import infra.nag
from tests.infra.synth import CONFIGURATIONS, Synth, synthesize


@pytest.fixture(params=sorted(CONFIGURATIONS))
def configuration(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def synth(configuration: str, request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(f"{configuration}_synth")


def _describe(violations: list[tuple[str, str, str]]) -> str:
    return "\n".join(f"{severity}: {rule} at {path}" for rule, path, severity in violations)


def test_no_unacknowledged_aws_solutions_findings(synth: Synth) -> None:
    violations = synth.violations("AwsSolutions")

    assert violations == [], _describe(violations)
    assert synth.error is None, synth.error


def test_cloudformation_validation_finds_no_errors(synth: Synth) -> None:
    errors = [v for v in synth.violations("CloudFormation Validate") if v[2] == "error"]

    assert errors == [], _describe(errors)


def _acknowledgements(root: IConstruct) -> Iterator[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every AwsSolutions acknowledgement in the app."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    for construct in root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != key:
                continue
            for rule_id, reason in dict(entry.data).items():
                if rule_id.startswith(f"{infra.nag.PACK}::"):
                    yield construct.node.path, rule_id.split("::", 1)[1], reason


def test_every_acknowledgement_has_a_specific_reason(synth: Synth) -> None:
    acknowledgements = list(_acknowledgements(synth.app))
    reasons_by_rule: dict[str, set[str]] = {}
    for _, rule, reason in acknowledgements:
        reasons_by_rule.setdefault(rule.split("[")[0], set()).add(reason)

    assert acknowledgements
    for path, rule, reason in acknowledgements:
        assert len(reason) >= infra.nag.MIN_REASON_CHARS, f"{rule} at {path}: {reason!r}"
    # One boilerplate sentence pasted under different rules would not explain either of them.
    all_reasons = [reason for reasons in reasons_by_rule.values() for reason in reasons]
    assert len(all_reasons) == len(set(all_reasons))


class _Recorder:
    """Stands in for ``Validations`` in infra.nag: records acknowledgements, applies none."""

    def __init__(self) -> None:
        self.acknowledged: list[tuple[str, str]] = []

    def of(self, scope: IConstruct) -> _Recorder._Scope:
        return _Recorder._Scope(self, scope.node.path)

    class _Scope:
        def __init__(self, recorder: _Recorder, path: str) -> None:
            self._recorder = recorder
            self._path = path

        def acknowledge(self, *rules: object) -> None:
            for rule in rules:
                rule_id = str(rule.id).split("::", 1)[1]  # type: ignore[attr-defined]
                self._recorder.acknowledged.append((self._path, rule_id))


def test_every_acknowledgement_is_still_needed(
    configuration: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the app synthesized with every acknowledgement withheld
    recorder = _Recorder()
    monkeypatch.setattr(infra.nag, "Validations", recorder)
    bare = synthesize(CONFIGURATIONS[configuration], tmp_path / "bare")
    findings = bare.violations("AwsSolutions")

    # Then each acknowledgement answers a finding at or below the construct it was made on
    assert recorder.acknowledged
    stale = [
        (path, rule)
        for path, rule in recorder.acknowledged
        if not any(
            found_rule == rule and (found_path == path or found_path.startswith(f"{path}/"))
            for found_rule, found_path, _ in findings
        )
    ]
    assert stale == [], f"acknowledgements without a finding: {stale}"
