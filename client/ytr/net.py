"""What the HTTP client and the chat WebSocket share: the User-Agent, ids in URL paths, and the
"cannot reach" error (stdlib only, so neither transport's library is imported for it)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from ytr.errors import EXIT_UNAVAILABLE, CliError

USER_AGENT = "ytr-cli/0.1"


def path_id(value: str) -> str:
    """An id as one URL path segment."""
    return quote(value.strip(), safe="")


def _is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def unreachable(base_url: str, detail: str = "") -> CliError:
    hint = "is `make run` running?" if _is_loopback(base_url) else "check the URL and your network"
    suffix = f" ({detail})" if detail else ""
    return CliError("CONNECTION_FAILED", f"cannot reach {base_url}: {hint}{suffix}", EXIT_UNAVAILABLE)
