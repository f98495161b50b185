"""The migration custom resource handler (functions/migrate/handler.py)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from typing import Any, cast

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.migrate import handler as migrate


@dataclass
class _Context:
    function_name: str = "migrate"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:migrate"
    aws_request_id: str = "req-1"


CONTEXT = cast(LambdaContext, _Context())


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Replace ytresearch.db.migrations with a fake whose upgrade_to_head records calls."""
    calls: list[object] = []
    fake = types.ModuleType("ytresearch.db.migrations")

    def upgrade_to_head(settings: object = None) -> str:
        calls.append(settings)
        return "0007_head"

    fake.upgrade_to_head = upgrade_to_head  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ytresearch.db.migrations", fake)
    return calls


def _event(request_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResourceProperties": {"MigrationsHash": "abc"},
        **extra,
    }


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_migrate_to_head_and_report_the_revision(
    upgrades: list[object], request_type: str
) -> None:
    extra = {"PhysicalResourceId": migrate.PHYSICAL_RESOURCE_ID} if request_type == "Update" else {}

    response = migrate.handler(_event(request_type, **extra), CONTEXT)

    assert upgrades == [None]
    assert response == {
        "PhysicalResourceId": migrate.PHYSICAL_RESOURCE_ID,
        "Data": {"Revision": "0007_head"},
    }


def test_delete_leaves_the_schema_alone(upgrades: list[object]) -> None:
    response = migrate.handler(_event("Delete", PhysicalResourceId=migrate.PHYSICAL_RESOURCE_ID), CONTEXT)

    assert upgrades == []
    assert response == {"PhysicalResourceId": migrate.PHYSICAL_RESOURCE_ID}


def test_a_failed_migration_fails_the_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("ytresearch.db.migrations")

    def upgrade_to_head(settings: object = None) -> str:
        raise RuntimeError("relation already exists")

    fake.upgrade_to_head = upgrade_to_head  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ytresearch.db.migrations", fake)

    with pytest.raises(RuntimeError, match="relation already exists"):
        migrate.handler(_event("Create"), CONTEXT)


def test_unknown_request_types_are_refused(upgrades: list[object]) -> None:
    with pytest.raises(ValueError, match="unknown custom resource request type"):
        migrate.handler(_event("Rollback"), CONTEXT)
    assert upgrades == []
