"""cfn-lint over every synthesized template: zero errors (warnings are reported, not fatal)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.infra.synth import CONFIGURATIONS, TEST_REGION, Synth


@pytest.fixture(params=sorted(CONFIGURATIONS))
def synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(f"{request.param}_synth")


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    templates = sorted(synth.outdir.glob("*.template.json"))
    assert templates

    errors = []
    for template in templates:
        for match in lint_file(Path(template), ManualArgs(regions=[TEST_REGION])):
            if match.rule.id.startswith("E"):
                errors.append(f"{match.rule.id} {template.name}:{match.linenumber}: {match.message}")

    assert errors == [], "\n".join(errors)
