"""Domain errors. Each carries a stable UPPER_SNAKE code; transports map classes to HTTP statuses."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base for every error a client may see. ``message`` is a human sentence, safe to show."""

    code = "INTERNAL_ERROR"
    retryable = False

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}


class InvalidInputError(AppError):
    code = "INVALID_INPUT"


class UnauthorizedError(AppError):
    code = "UNAUTHORIZED"


class NotFoundError(AppError):
    code = "NOT_FOUND"


class ConflictError(AppError):
    code = "CONFLICT"


class GoneError(AppError):
    code = "GONE"


class PayloadTooLargeError(AppError):
    code = "PAYLOAD_TOO_LARGE"


class RateLimitedError(AppError):
    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after


class DependencyUnavailableError(AppError):
    """A dependency (database, model provider, YouTube) cannot serve us right now."""

    code = "DEPENDENCY_UNAVAILABLE"
    retryable = True


class DatabaseUnavailableError(DependencyUnavailableError):
    code = "DATABASE_UNAVAILABLE"


class ConfigurationError(AppError):
    code = "CONFIGURATION_ERROR"
