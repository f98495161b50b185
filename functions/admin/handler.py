"""Admin Lambda entry point: users and API keys in a deployed stack, where the database sits in
isolated subnets and nobody connects to it directly.

Only IAM can call it (``lambda:InvokeFunction``; no function URL, no API route): ``ytr-admin
--deployed <function>`` or ``aws lambda invoke``. The event names one action:

    {"action": "create-user", "email": "you@example.com"}
    {"action": "create-key",  "email": "you@example.com"}
    {"action": "list-keys",   "email": "you@example.com"}
    {"action": "revoke-key",  "email": "you@example.com", "key_id": "<uuid>"}   # or "prefix": "ytr_abc123"

and the answer is JSON: the result, or the project's error shape
``{"error": {"code", "message", "details"}}`` (returned, not raised, so the caller gets the
message rather than a stack trace). New API keys appear once in the answer and never in the logs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ytresearch.bootstrap import Container
from ytresearch.errors import AppError, DatabaseUnavailableError
from ytresearch.observability.lambdas import lambda_logger
from ytresearch.services.admin import run_admin_action

logger = lambda_logger()

Handler = Callable[[Any, Any], dict[str, Any]]


def error_body(exc: AppError) -> dict[str, Any]:
    return {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}


def make_handler(container_factory: Callable[[], Container]) -> Handler:
    def handle(event: Any, context: Any) -> dict[str, Any]:
        action = event.get("action") if isinstance(event, dict) else None
        try:
            container = container_factory()
            result = run_admin_action(container.store, event, cache=container.key_cache)
        except AppError as exc:
            logger.info("admin action refused", extra={"action": action, "code": exc.code})
            return error_body(exc)
        except Exception as exc:
            from ytresearch.db.outage import is_outage

            if is_outage(exc):
                logger.warning("admin action failed: the database is unreachable", extra={"action": action})
                return error_body(
                    DatabaseUnavailableError("the database is unreachable right now; try again shortly")
                )
            logger.exception("admin action failed", extra={"action": action})
            return error_body(AppError("the action failed on the server; see the function's logs"))
        logger.info("admin action done", extra={"action": action})
        return result

    return handle


@lru_cache(maxsize=1)
def _container() -> Container:
    return Container()


_handle = make_handler(_container)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    return _handle(event, context)
