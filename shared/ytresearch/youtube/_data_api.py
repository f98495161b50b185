"""What the YouTube Data API v3 adapters share: where it lives, how the key travels, and how its
values (ISO-8601 durations, timestamps, error reasons) are read.

Standard library only; httpx is imported by the adapters when they make a request.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

DATA_API_BASE_URL = "https://www.googleapis.com/youtube/v3"
# The key travels in this header, never in the query string: URLs end up in httpx's own log lines
# and in exception messages; headers do not.
API_KEY_HEADER = "X-Goog-Api-Key"

_DURATION_RE = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def parse_iso8601_duration(text: str) -> int | None:
    """Seconds in an ISO-8601 duration as the Data API gives it (``PT1H2M3S``, ``P1DT2H``).

    None for anything unparsable and for zero: live streams and premieres report ``P0D``, which
    means "unknown", not "zero seconds long".
    """
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groupdict().values()) or text.strip().endswith("T"):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    total = (
        parts["weeks"] * 604_800
        + parts["days"] * 86_400
        + parts["hours"] * 3_600
        + parts["minutes"] * 60
        + parts["seconds"]
    )
    return round(total) or None


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime from an ISO-8601 string (UTC when it names no zone), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def text_or_none(value: Any) -> str | None:
    """``value`` when it is a string with something in it, else None."""
    return value if isinstance(value, str) and value.strip() else None


def google_reasons(response: httpx.Response) -> list[str]:
    """Google's machine-readable error reasons (``quotaExceeded``, ``API_KEY_INVALID`` ...), from
    ``error.errors[].reason`` and ``error.details[].reason``, in that order. Only identifier-like
    values are kept, so they are safe to put in a log line or an error message."""
    try:
        error = response.json()["error"]
    except Exception:
        return []
    if not isinstance(error, dict):
        return []
    found: list[str] = []
    for key in ("errors", "details"):
        entries = error.get(key)
        for entry in entries if isinstance(entries, list) else []:
            reason = entry.get("reason") if isinstance(entry, dict) else None
            if isinstance(reason, str) and reason.isidentifier() and reason not in found:
                found.append(reason)
    return found
