"""What a failed Anthropic call means for us: the ``ModelError`` codes, their user-facing messages,
and ``classify_failure``, which maps an SDK or transport exception to a code, whether retrying can
help, and the ``retry-after`` the API asked for. The retry loop itself is ``AnthropicChatModel``'s.

A model the API does not know (404 ``not_found_error``, e.g. one past its end of life) is
``MODEL_UNAVAILABLE``: never retried, and it does not trip the circuit breaker (it is ours to fix).
The SDK (and its ``httpx2``) is imported when an exception is classified, never at import.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ytresearch.ports import ModelError

if TYPE_CHECKING:
    from httpx2 import Headers

MODEL_RATE_LIMITED = "MODEL_RATE_LIMITED"
MODEL_OVERLOADED = "MODEL_OVERLOADED"
MODEL_UNREACHABLE = "MODEL_UNREACHABLE"
MODEL_TIMEOUT = "MODEL_TIMEOUT"
MODEL_AUTH_FAILED = "MODEL_AUTH_FAILED"
MODEL_BAD_REQUEST = "MODEL_BAD_REQUEST"
MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
MODEL_STREAM_INTERRUPTED = "MODEL_STREAM_INTERRUPTED"
MODEL_ERROR = "MODEL_ERROR"

ERROR_MESSAGES = {
    MODEL_RATE_LIMITED: "The AI model is rate limited right now; try again shortly.",
    MODEL_OVERLOADED: "The AI model is overloaded right now; try again shortly.",
    MODEL_UNREACHABLE: "The AI model could not be reached; try again shortly.",
    MODEL_TIMEOUT: "The AI model did not answer in time.",
    MODEL_AUTH_FAILED: "The AI model rejected the service's credentials.",
    MODEL_BAD_REQUEST: "The AI model rejected the request.",
    MODEL_UNAVAILABLE: "The configured AI model does not exist or is no longer available.",
    MODEL_STREAM_INTERRUPTED: "The AI model's reply was interrupted before it finished.",
    MODEL_ERROR: "The AI model failed.",
}


@dataclass(frozen=True)
class ProviderFailure:
    """One classified failure: our code, whether a retry may help, and what the API said."""

    code: str
    retryable: bool
    status: int | None = None
    provider_type: str | None = None
    retry_after: float | None = None

    def error(self, *, attempts: int) -> ModelError:
        err = ModelError(ERROR_MESSAGES[self.code], code=self.code, retryable=self.retryable)
        details: dict[str, Any] = {"attempts": attempts}
        if self.status is not None:
            details["status"] = self.status
        if self.provider_type:
            details["provider_error"] = self.provider_type
        if self.retry_after is not None:
            details["retry_after"] = math.ceil(self.retry_after)
        err.details = details
        return err


class StreamEndedEarlyError(Exception):
    """The response ended cleanly but without ``message_stop``."""


def parse_retry_after(headers: Headers | None) -> float | None:
    """The wait the API asked for, in seconds (``retry-after-ms``, or ``retry-after`` as seconds or
    an HTTP date); None when it did not say."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        with contextlib.suppress(ValueError):
            return max(0.0, float(value) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify_failure(exc: BaseException) -> ProviderFailure | None:
    """Map an SDK/transport exception to our error code; None for exceptions that are not a
    provider failure (programming errors propagate unchanged)."""
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        # Mid-stream ``event: error`` frames arrive on a 200 response: the body's type decides.
        kind = exc.type
        headers = exc.response.headers if exc.response is not None else None
        if kind == "overloaded_error" or status == 529:
            failure = ProviderFailure(MODEL_OVERLOADED, True, status, kind, parse_retry_after(headers))
        elif kind == "rate_limit_error" or status == 429:
            # Spend limits are 429s too, but waiting seconds will not lift them.
            spend_limit = (exc.error_code or "").endswith("spend_limit_reached")
            failure = ProviderFailure(
                MODEL_RATE_LIMITED, not spend_limit, status, kind, parse_retry_after(headers)
            )
        elif kind in ("authentication_error", "permission_error") or status in (401, 403):
            failure = ProviderFailure(MODEL_AUTH_FAILED, False, status, kind)
        elif kind == "timeout_error" or status in (408, 504):
            failure = ProviderFailure(MODEL_TIMEOUT, True, status, kind)
        elif kind == "api_error" or status >= 500 or status == 409:
            failure = ProviderFailure(MODEL_UNREACHABLE, True, status, kind)
        elif kind == "billing_error" or status == 402:
            failure = ProviderFailure(MODEL_UNREACHABLE, False, status, kind)
        elif kind == "not_found_error":
            # The adapter only calls POST /v1/messages, so "not found" means the model.
            failure = ProviderFailure(MODEL_UNAVAILABLE, False, status, kind)
        elif kind in ("invalid_request_error", "request_too_large"):
            failure = ProviderFailure(MODEL_BAD_REQUEST, False, status, kind)
        elif status < 400:  # an unknown error event mid-stream: the provider failed, not us
            failure = ProviderFailure(MODEL_UNREACHABLE, True, status, kind)
        else:  # 400, 413, 422 ...: the request itself is wrong
            failure = ProviderFailure(MODEL_BAD_REQUEST, False, status, kind)
        if failure.retryable and headers is not None and headers.get("x-should-retry") == "false":
            failure = ProviderFailure(failure.code, False, status, kind, failure.retry_after)
        return failure
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return ProviderFailure(MODEL_TIMEOUT, True)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError | StreamEndedEarlyError):
        return ProviderFailure(MODEL_UNREACHABLE, True)
    if isinstance(exc, anthropic.AnthropicError):
        return ProviderFailure(MODEL_ERROR, False)
    return None
