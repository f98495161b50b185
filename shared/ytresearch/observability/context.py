"""What every log line and metric of one process shares: the request being handled, the service."""

from __future__ import annotations

import contextvars
import os

DEFAULT_SERVICE = "ytresearch"

# Set by the request middleware for the duration of one HTTP request or WebSocket; tasks started
# while handling it (a chat reply) inherit it, so their log lines and metrics carry it too.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def service_name() -> str:
    """POWERTOOLS_SERVICE_NAME (set on every function and task by the infrastructure), else ours."""
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE


# The authenticated user's id (never a key or a token), set once a request is authenticated; the
# request's own log line and every line logged while it is handled carry it.
user_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("user_id", default=None)
