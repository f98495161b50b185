"""CRUD Lambda entry point: API Gateway HTTP API (payload v2) -> Mangum -> FastAPI.

Kept light on purpose: importing this module must not import boto3 or anthropic (cold start).
Observability sits on the handler only: JSON logs with API Gateway's request id as the
correlation id, the cold start metric (the request metrics are written by the middleware through
the Container's EMF adapter) and X-Ray tracing when the X-Ray SDK is present (see
``ytresearch.observability.lambdas``). Responses are not recorded in traces: they may hold
transcripts.

The function runs with Lambda SnapStart: Lambda initializes it once per published version and
restores later execution environments from a snapshot of that memory. The snapshot hooks below
keep what must be fresh or unique out of it: no database connection (an engine's pool would hand
every restored environment the same dead socket), no cached credentials or verified keys, and a
reseeded ``random``.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from functions.api.app import create_app
from ytresearch.bootstrap import Container
from ytresearch.observability.lambdas import lambda_logger, lambda_metrics, lambda_tracer

logger = lambda_logger()
metrics = lambda_metrics()
tracer = lambda_tracer()
app = create_app()
_asgi = Mangum(app, lifespan="off")
_loop: asyncio.AbstractEventLoop | None = None


def _fresh_container() -> None:
    """Close the current container's database connections and replace it with an empty one, so
    the engine, the store, the key cache and the token verifier are built again on first use."""
    old: Container = app.state.container
    engine = old.__dict__.get("engine")  # only if it was ever built (cached_property)
    if engine is not None:
        engine.dispose()
    app.state.container = Container(old.settings)


def before_snapshot() -> None:
    """SnapStart: runs once before Lambda takes the snapshot of the initialized function."""
    _fresh_container()


def after_restore() -> None:
    """SnapStart: runs in every execution environment restored from the snapshot."""
    random.seed()  # from os.urandom: restored environments must not share one random sequence
    _fresh_container()


def register_snapshot_hooks() -> bool:
    """Register the hooks with the runtime's ``snapshot_restore_py`` module. The Lambda Python
    runtime (3.12+) provides that module; it is not on PyPI, so local runs and tests without it
    import this file unchanged and simply have no snapshots to hook (returns False)."""
    try:
        import snapshot_restore_py
    except ImportError:
        return False
    snapshot_restore_py.register_before_snapshot(before_snapshot)
    snapshot_restore_py.register_after_restore(after_restore)
    return True


register_snapshot_hooks()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _ensure_event_loop()
    return _asgi(event, context)


def _ensure_event_loop() -> None:
    """Mangum runs each request on ``asyncio.get_event_loop()``. Since Python 3.12 that raises
    instead of creating a loop once anything in the process (``asyncio.run``, an SDK) has set and
    cleared the current loop: the handler keeps one loop of its own and sets it every time."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
