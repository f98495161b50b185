"""SnapStart on the CRUD function in the standard profile: published versions behind the ``live``
alias, the HTTP APIs invoking the alias, and the handler's snapshot hooks leaving no connection or
cache in a snapshot. The lean profile leaves it off (its snapshot cache costs about $4 a month) and
``-c api_snap_start=true`` turns it on there."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.config import InfraConfig
from tests.infra.synth import Synth, function_by_handler

API_HANDLER = "functions.api.handler.handler"


def test_the_api_function_snapshots_published_versions(standard_synth: Synth) -> None:
    _, function = function_by_handler(standard_synth, API_HANDLER)

    assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    for handler in ("functions.ingest.handler.handler", "functions.migrate.handler.handler"):
        assert "SnapStart" not in function_by_handler(standard_synth, handler)[1]["Properties"]


def test_the_live_alias_points_at_a_published_version(standard_synth: Synth) -> None:
    api_id, _ = function_by_handler(standard_synth, API_HANDLER)
    (alias,) = standard_synth.of_type("AWS::Lambda::Alias").values()
    versions = standard_synth.of_type("AWS::Lambda::Version")

    assert alias["Properties"]["Name"] == "live"
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert versions[version_id]["Properties"]["FunctionName"] == {"Ref": api_id}


def test_both_http_apis_invoke_the_alias(standard_synth: Synth) -> None:
    assert standard_synth.stack.api_function.alias is not None  # SnapStart publishes behind it
    alias_id = standard_synth.logical_id(standard_synth.stack.api_function.alias)
    integrations = standard_synth.of_type("AWS::ApiGatewayV2::Integration").values()

    assert len(integrations) == 2
    for integration in integrations:
        assert integration["Properties"]["IntegrationUri"] == {"Ref": alias_id}


def test_the_api_function_concurrency_is_capped(standard_synth: Synth) -> None:
    _, function = function_by_handler(standard_synth, API_HANDLER)

    assert function["Properties"]["ReservedConcurrentExecutions"] == (
        standard_synth.stack.config.api_max_concurrency
    )


def test_lean_leaves_snap_start_off_and_the_apis_invoke_the_function(default_synth: Synth) -> None:
    api_id, function = function_by_handler(default_synth, API_HANDLER)
    integrations = default_synth.of_type("AWS::ApiGatewayV2::Integration").values()

    assert "SnapStart" not in function["Properties"]
    assert default_synth.stack.api_function.alias is None
    assert not default_synth.of_type("AWS::Lambda::Alias")
    assert not default_synth.of_type("AWS::Lambda::Version")
    assert len(integrations) == 2
    for integration in integrations:
        assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [api_id, "Arn"]}
    assert function["Properties"]["ReservedConcurrentExecutions"] == (
        default_synth.stack.config.api_max_concurrency
    )


def test_snap_start_follows_the_profile_unless_set() -> None:
    assert InfraConfig(environment="dev").snap_start is False  # lean
    assert InfraConfig(environment="dev", api_snap_start=True).snap_start is True
    assert InfraConfig(environment="dev", profile="standard").snap_start is True
    assert InfraConfig(environment="prod").snap_start is True
    assert InfraConfig(environment="prod", api_snap_start=False).snap_start is False


# --- the hooks in functions/api/handler.py, without the Lambda runtime's module


class _FakeEngine:
    def __init__(self) -> None:
        self.disposed = False

    def dispose(self) -> None:
        self.disposed = True


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Callable[[], None]]]:
    """The hooks as registered with a stand-in ``snapshot_restore_py`` (the runtime provides the
    real one; it is not on PyPI)."""
    registered: dict[str, Callable[[], None]] = {}
    stand_in: Any = types.ModuleType("snapshot_restore_py")
    stand_in.register_before_snapshot = lambda func: registered.setdefault("before", func)
    stand_in.register_after_restore = lambda func: registered.setdefault("after", func)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", stand_in)
    from functions.api import handler

    original = handler.app.state.container
    assert handler.register_snapshot_hooks() is True
    yield registered
    handler.app.state.container = original


def _container_with_engine(engine: _FakeEngine) -> Any:
    from functions.api import handler
    from ytresearch.bootstrap import Container

    container = Container(handler.app.state.container.settings, engine=engine)
    handler.app.state.container = container
    return container


def test_without_the_runtime_module_nothing_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.api import handler

    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import fails

    assert handler.register_snapshot_hooks() is False


@pytest.mark.parametrize("hook", ["before", "after"])
def test_hooks_close_connections_and_drop_cached_adapters(
    hooks: dict[str, Callable[[], None]], hook: str
) -> None:
    from functions.api import handler

    # Given a container whose engine (and so its pool) was built before the snapshot
    engine = _FakeEngine()
    old = _container_with_engine(engine)
    old.__dict__["key_cache"] = object()

    # When the runtime calls the hook
    hooks[hook]()

    # Then the pool is closed and the app serves from a new, empty container
    assert engine.disposed
    new = handler.app.state.container
    assert new is not old
    assert "engine" not in new.__dict__ and "key_cache" not in new.__dict__
    assert new.settings is old.settings


def test_after_restore_reseeds_random(hooks: dict[str, Callable[[], None]]) -> None:
    # Given the random state a snapshot would carry
    random.seed(1234)
    state = random.getstate()

    # When an environment is restored
    hooks["after"]()

    # Then it draws its own sequence
    assert random.getstate() != state
