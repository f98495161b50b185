"""What finding videos accepts: search queries, result counts and playlist or channel URLs, and the
error codes every VideoDiscovery adapter answers with.

Standard library only, like ``ytresearch.youtube.urls`` (whose host and port rules it shares).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from ytresearch.errors import InvalidInputError
from ytresearch.ports import DiscoveryError
from ytresearch.youtube.urls import _SCHEME_RE, _SHORT_HOSTS, _SITE_HOSTS, MAX_INPUT_CHARS, _check_port

__all__ = [
    "CHANNEL_NOT_FOUND",
    "DISCOVERY_ERROR_CODES",
    "DISCOVERY_NOT_CONFIGURED",
    "DISCOVERY_UNAVAILABLE",
    "INVALID_PLAYLIST_URL",
    "INVALID_SEARCH_QUERY",
    "MAX_LIST_ITEMS",
    "MAX_QUERY_CHARS",
    "MAX_SEARCH_RESULTS",
    "PLAYLIST_NOT_FOUND",
    "ChannelRef",
    "PlaylistRef",
    "checked_query",
    "clamp_count",
    "is_playlist_id",
    "parse_list_url",
]

INVALID_SEARCH_QUERY = "INVALID_SEARCH_QUERY"
INVALID_PLAYLIST_URL = "INVALID_PLAYLIST_URL"
PLAYLIST_NOT_FOUND = "PLAYLIST_NOT_FOUND"
CHANNEL_NOT_FOUND = "CHANNEL_NOT_FOUND"
DISCOVERY_UNAVAILABLE = "DISCOVERY_UNAVAILABLE"  # retryable unless the request itself was refused
DISCOVERY_NOT_CONFIGURED = "DISCOVERY_NOT_CONFIGURED"
DISCOVERY_ERROR_CODES = frozenset(
    {
        INVALID_SEARCH_QUERY,
        INVALID_PLAYLIST_URL,
        PLAYLIST_NOT_FOUND,
        CHANNEL_NOT_FOUND,
        DISCOVERY_UNAVAILABLE,
        DISCOVERY_NOT_CONFIGURED,
    }
)

MAX_QUERY_CHARS = 200
MAX_SEARCH_RESULTS = 25
MAX_LIST_ITEMS = 50


def checked_query(query: str) -> str:
    """``query`` stripped; DiscoveryError INVALID_SEARCH_QUERY when empty or too long."""
    text = query.strip() if isinstance(query, str) else ""
    if not text:
        raise DiscoveryError("Give some words to search for; the query is empty.", code=INVALID_SEARCH_QUERY)
    if len(text) > MAX_QUERY_CHARS:
        raise DiscoveryError(
            f"The search query is longer than {MAX_QUERY_CHARS} characters; shorten it.",
            code=INVALID_SEARCH_QUERY,
        )
    return text


def clamp_count(value: int, high: int) -> int:
    """A requested count held to 1..``high``."""
    return max(1, min(high, int(value)))


# ---------------------------------------------------------------- playlist and channel URLs


@dataclass(frozen=True)
class PlaylistRef:
    """A playlist named by a URL's ``list=`` parameter."""

    playlist_id: str


@dataclass(frozen=True)
class ChannelRef:
    """A channel named by a URL: its id (/channel/UC...), handle (/@name), custom name (/c/name)
    or legacy username (/user/name). A handle is kept without its ``@``."""

    kind: Literal["id", "handle", "custom", "username"]
    value: str


_PLAYLIST_ID_RE = re.compile(r"[A-Za-z0-9_-]{2,100}")
_CHANNEL_ID_RE = re.compile(r"UC[A-Za-z0-9_-]{22}")
# Handles: 3-30 letters (any script), digits, "_", "-", "." and the middle dot.
_HANDLE_RE = re.compile(r"[\w.·-]{3,30}")
_NAME_RE = re.compile(r"[\w.·-]{1,100}")
_VIDEO_PATHS = frozenset({"watch", "shorts", "embed", "live", "v", "e"})
_URL_RULE = (
    "give a playlist link (with list=...) or a channel link "
    "(youtube.com/@handle, /channel/UC..., /c/name or /user/name)"
)


def is_playlist_id(text: str) -> bool:
    """True when ``text`` has the shape of a playlist id (PL..., UU..., OLAK5uy_...)."""
    return _PLAYLIST_ID_RE.fullmatch(text) is not None


def parse_list_url(text: str) -> PlaylistRef | ChannelRef:
    """What a playlist or channel URL names. Any YouTube host and link form with a ``list=``
    parameter names a playlist (``/playlist?list=``, ``/watch?v=..&list=``, ``youtu.be/ID?list=``);
    ``/channel/UC..``, ``/@handle``, ``/c/name`` and ``/user/name`` (and a bare ``@handle``) name a
    channel. Raises DiscoveryError INVALID_PLAYLIST_URL, saying what was wrong, for anything else."""
    if not isinstance(text, str):
        raise _invalid_url("the URL must be text")
    raw = text.strip()
    if not raw:
        raise _invalid_url("the URL is empty")
    if len(raw) > MAX_INPUT_CHARS:
        raise _invalid_url(f"the URL is longer than {MAX_INPUT_CHARS} characters")
    if raw.startswith("@") and "/" not in raw:
        return _channel("handle", raw[1:], _HANDLE_RE)
    if "/" not in raw and "." not in raw:
        raise _invalid_url("this is not a URL")

    url = raw if _SCHEME_RE.match(raw) else "https://" + raw.lstrip("/")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        raise _invalid_url("this is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid_url(f"unsupported URL scheme {parts.scheme[:20]!r}")
    if host not in _SITE_HOSTS and host not in _SHORT_HOSTS:
        raise _invalid_url(f"{host[:100] or '(no host)'} is not a YouTube host")
    try:
        _check_port(parts.netloc, raw)
    except InvalidInputError as exc:
        raise _invalid_url(exc.details.get("reason", "unsupported port")) from None

    lists = [v for v in parse_qs(parts.query).get("list", []) if v]
    if lists:
        if not is_playlist_id(lists[0]):
            raise _invalid_url("the list= parameter is not a playlist id")
        return PlaylistRef(lists[0])
    segments = [unquote(s) for s in parts.path.split("/") if s]
    first = segments[0].lower() if segments else ""
    if host in _SHORT_HOSTS or first in _VIDEO_PATHS:
        raise _invalid_url("this is a link to one video, not to a playlist or channel")
    if first == "playlist":
        raise _invalid_url("the playlist link has no list= parameter")
    if first.startswith("@"):
        return _channel("handle", segments[0][1:], _HANDLE_RE)
    if first in ("channel", "c", "user") and len(segments) < 2:
        raise _invalid_url("the channel link names no channel")
    if first == "channel":
        if not _CHANNEL_ID_RE.fullmatch(segments[1]):
            raise _invalid_url("a /channel/ link needs a channel id: UC and 22 more characters")
        return ChannelRef("id", segments[1])
    if first == "c":
        return _channel("custom", segments[1], _NAME_RE)
    if first == "user":
        return _channel("username", segments[1], _NAME_RE)
    raise _invalid_url("it names no playlist or channel")


def _channel(kind: Literal["handle", "custom", "username"], value: str, rule: re.Pattern[str]) -> ChannelRef:
    if not rule.fullmatch(value):
        raise _invalid_url(f"{'@' if kind == 'handle' else ''}{value[:40]} is not a valid channel name")
    return ChannelRef(kind, value)


def _invalid_url(reason: str) -> DiscoveryError:
    return DiscoveryError(
        f"Not a YouTube playlist or channel URL: {reason}; {_URL_RULE}.", code=INVALID_PLAYLIST_URL
    )
