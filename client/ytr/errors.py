"""The client's one error type and its exit codes (kept free of httpx so the CLI starts fast)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # generic or API error (invalid input, conflict, failed ingest...)
EXIT_USAGE = 2  # bad command line or configuration
EXIT_AUTH = 3  # 401: missing or invalid API key or token, failed sign-in
EXIT_NOT_FOUND = 4  # 404
EXIT_RATE_LIMITED = 5  # 429
EXIT_UNAVAILABLE = 6  # 5xx, connection refused, lost stream
EXIT_CANCELLED = 130  # Ctrl-C


class CliError(Exception):
    """An expected failure: shown as one line, ``error: <message> (<CODE>)``, and an exit code."""

    def __init__(
        self, code: str, message: str, exit_code: int = EXIT_ERROR, *, retry_after: int | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code
        self.retry_after = retry_after

    def line(self) -> str:
        return f"error: {self.message} ({self.code})"

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "message": self.message, "exit_code": self.exit_code}
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        return {"error": body}

    def __repr__(self) -> str:
        return f"CliError({self.code!r}, {self.message!r}, {self.exit_code})"


def exit_for_status(status: int) -> int:
    if status in (401, 403):
        return EXIT_AUTH
    if status == 404:
        return EXIT_NOT_FOUND
    if status == 429:
        return EXIT_RATE_LIMITED
    if status >= 500:
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


SERVER_SIDE_CODES = frozenset(
    {
        "DEPENDENCY_UNAVAILABLE",
        "DATABASE_UNAVAILABLE",
        "QUEUE_UNAVAILABLE",
        "SERVICE_DRAINING",
        "INTERNAL_ERROR",
        "REQUEST_INTERRUPTED",
    }
)


def exit_for_code(code: str, retryable: bool = False) -> int:
    """For errors that arrive without an HTTP status (WebSocket frames, stream events)."""
    if code in (
        "UNAUTHORIZED",
        "MISSING_API_KEY",
        "INVALID_API_KEY",
        "INVALID_TOKEN",
        "TOKEN_EXPIRED",
        "TOKEN_AUTH_NOT_CONFIGURED",
        "SESSION_EXPIRED",
        "LOGIN_FAILED",
    ):
        return EXIT_AUTH
    if code == "NOT_FOUND" or code.endswith("_NOT_FOUND"):
        return EXIT_NOT_FOUND
    if code in ("RATE_LIMITED", "TOO_MANY_ACTIVE_REQUESTS"):
        return EXIT_RATE_LIMITED
    if retryable or code in SERVER_SIDE_CODES:
        return EXIT_UNAVAILABLE
    return EXIT_ERROR


def with_retry_hint(message: str, retry_after: int | None) -> str:
    if retry_after is None:
        return message
    return f"{message}; retry after {retry_after} s"
