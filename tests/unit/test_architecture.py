"""The rooms of the code base and what each may import (docs/architecture.md), read from the code."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Each room: where its code is, and the top-level packages of ours it must never import.
ROOMS = {
    "ytresearch": (REPO / "shared" / "ytresearch", {"functions", "streaming_service", "local_run", "ytr"}),
    "functions": (REPO / "functions", {"streaming_service", "local_run", "ytr"}),
    "streaming_service": (REPO / "streaming_service", {"functions", "local_run", "ytr"}),
    "ytr": (REPO / "client" / "ytr", {"ytresearch", "functions", "streaming_service", "local_run"}),
}
# The client's own dependencies (client/pyproject.toml); anything else it imports is the stdlib.
CLIENT_DEPENDENCIES = {"httpx", "websockets"}


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, lazy imports inside functions too."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def modules(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*.py") if "__pycache__" not in path.parts)


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_no_room_imports_another_deployable(room: str) -> None:
    root, forbidden = ROOMS[room]
    found = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules(root)
        for name in imported_packages(path) & forbidden
    }
    assert modules(root) and found == set()


def test_the_client_imports_only_the_stdlib_and_its_own_dependencies() -> None:
    allowed = set(sys.stdlib_module_names) | CLIENT_DEPENDENCIES | {"ytr", "__future__"}
    found = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules(ROOMS["ytr"][0])
        for name in imported_packages(path) - allowed
    }
    assert found == set()


def test_the_rules_see_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from functions.api.routes import router\n    import ytr.main\n")
    assert imported_packages(module) == {"functions", "ytr"}


# About 400 lines at most, so a module holds one concern a reader can take in. The exceptions, each
# with its reason (tests and the fake servers are not counted: a test module is a list of cases).
MAX_LINES = 420
LONGER_ON_PURPOSE = {
    "infra/stack.py": "the one place that wires every construct and makes the grants between them",
    "infra/config.py": "one validated model of every deploy-time setting and its cross-checks",
    "bench/relay_overhead.py": "a standalone benchmark: scenario, load generator and report together",
    "bench/retrieval.py": "a standalone benchmark: corpus generator, the old context kept for the "
    "comparison, measurement and report together",
}


def test_modules_stay_small_or_say_why() -> None:
    roots = [
        REPO / name
        for name in ("shared", "client", "functions", "streaming_service", "local_run", "infra", "bench")
    ]
    too_long = {
        path.relative_to(REPO).as_posix(): lines
        for root in roots
        for path in modules(root)
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert set(too_long) == set(LONGER_ON_PURPOSE), too_long
