"""checkov (IaC policy checks) over the synthesized templates (lean dev, standard dev, prod): no
finding that is not suppressed in code with a reason, and no suppression that answers no finding.

checkov runs from its own virtualenv (scripts/ensure-checkov.sh installs the pinned version on
first use), so its dependencies never meet the application's locked ones.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import infra.nag
from tests.infra.synth import CONFIGURATIONS, REPO_ROOT, Synth

ENSURE_CHECKOV = REPO_ROOT / "scripts" / "ensure-checkov.sh"


@pytest.fixture(scope="session")
def checkov() -> str:
    result = subprocess.run([str(ENSURE_CHECKOV)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(params=sorted(CONFIGURATIONS))
def synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(f"{request.param}_synth")


def run_checkov(checkov: str, template: Path) -> dict[str, Any]:
    result = subprocess.run(
        [checkov, "--file", str(template), "--framework", "cloudformation", "--output", "json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: failed checks, reported below
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    if "results" not in report:  # nothing failed with --quiet: checkov prints only the summary
        report["results"] = {"failed_checks": [], "skipped_checks": []}
    return report


def _template_path(synth: Synth) -> Path:
    return synth.outdir / f"{synth.stack.stack_name}.template.json"


def _findings(checks: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(check["check_id"], check["resource"].split(".", 1)[1]) for check in checks}


def test_checkov_finds_nothing_unsuppressed(checkov: str, synth: Synth) -> None:
    report = run_checkov(checkov, _template_path(synth))

    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]
    ]
    print(f"checkov {synth.stack.stack_name}: {report['summary']}")  # shown with -s
    assert failed == [], "\n".join(failed)


def test_every_checkov_skip_has_a_specific_reason(synth: Synth) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in synth.resources.items()
        for skip in resource.get("Metadata", {}).get(infra.nag.CHECKOV_METADATA_KEY, {}).get("skip", [])
    ]

    assert skips
    for logical_id, skip in skips:
        assert skip["id"].startswith("CKV"), logical_id
        assert len(skip["comment"]) >= infra.nag.MIN_REASON_CHARS, f"{skip['id']} on {logical_id}"


def test_every_checkov_skip_is_still_needed(checkov: str, synth: Synth, tmp_path: Path) -> None:
    # Given the template with every checkov skip removed
    template = copy.deepcopy(synth.template)
    skipped: set[tuple[str, str]] = set()
    for logical_id, resource in template["Resources"].items():
        metadata = resource.get("Metadata", {})
        for skip in metadata.pop(infra.nag.CHECKOV_METADATA_KEY, {}).get("skip", []):
            skipped.add((skip["id"], logical_id))
    bare = tmp_path / "bare.template.json"
    bare.write_text(json.dumps(template))

    # When checkov checks it
    failed = _findings(run_checkov(checkov, bare)["results"]["failed_checks"])

    # Then each skip answered a finding on its own resource
    assert skipped
    assert sorted(skipped - failed) == []
