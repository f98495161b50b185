"""Turn whatever people paste (watch links, short links, Shorts, embeds, bare ids) into a video id.

Standard library only: the CRUD Lambda imports this on its cold-start path.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from ytresearch.errors import InvalidInputError

VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{11}")
ERROR_CODE = "INVALID_VIDEO_URL"
MAX_INPUT_CHARS = 2048  # a real YouTube link is far shorter; refuse pathological input early

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_ID_RULE = "video id must be 11 characters of letters, digits, - and _"

# Hosts serving the full site (watch pages, Shorts, embeds ...).
_SITE_HOSTS = frozenset(
    {
        "youtube.com",
        "www.youtube.com",
        "m.youtube.com",
        "music.youtube.com",
        "gaming.youtube.com",
        "youtube-nocookie.com",
        "www.youtube-nocookie.com",
    }
)
_SHORT_HOSTS = frozenset({"youtu.be", "www.youtu.be"})
_PORTS = frozenset({"", "443", "80"})  # an empty port means the scheme's default (RFC 3986)

# Path prefixes followed directly by the video id: /shorts/ID, /embed/ID, /live/ID, /v/ID, /e/ID.
_ID_PATH_PREFIXES = frozenset({"shorts", "embed", "live", "v", "e"})
# Path prefixes that name a channel, never a single video.
_CHANNEL_PATH_PREFIXES = frozenset({"channel", "c", "user"})


def is_video_id(text: str) -> bool:
    """True when ``text`` is exactly an 11-character YouTube video id."""
    return VIDEO_ID_RE.fullmatch(text) is not None


def canonical_url(video_id: str) -> str:
    """The one watch URL we store and show for a video id."""
    if not is_video_id(video_id):
        raise _invalid(_ID_RULE, video_id)
    return f"https://www.youtube.com/watch?v={video_id}"


def parse_video_id(text: str) -> str:
    """Return the 11-character video id in ``text``: a bare id or any common YouTube URL form.

    Raises InvalidInputError (code INVALID_VIDEO_URL) with a message that says what was wrong.
    """
    if not isinstance(text, str):
        raise _invalid("give a YouTube video URL or id as text", repr(text))
    raw = text.strip()
    if not raw:
        raise _invalid("give a YouTube video URL or id; the input is empty", raw)
    if len(raw) > MAX_INPUT_CHARS:
        raise _invalid(f"the input is longer than {MAX_INPUT_CHARS} characters", raw)
    if is_video_id(raw):
        return raw
    if "/" not in raw and "." not in raw:
        # No host and no path: the person meant an id, so explain the id rule.
        raise _invalid(_ID_RULE, raw)

    url = raw if _SCHEME_RE.match(raw) else "https://" + raw.lstrip("/")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError as exc:  # e.g. an unbalanced "[" (urlsplit reads it as an IPv6 literal)
        raise _invalid(f"not a valid URL: {exc}", raw) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid(f"unsupported URL scheme: {parts.scheme}", raw)
    if host not in _SHORT_HOSTS and host not in _SITE_HOSTS:
        raise _invalid(f"not a YouTube host: {host or '(none)'}", raw)
    _check_port(parts.netloc, raw)
    if host in _SHORT_HOSTS:
        return _id_from_short_link(parts.path, raw)
    return _id_from_site_url(parts.path, parts.query, raw)


def _check_port(netloc: str, raw: str) -> None:
    """YouTube serves only the web's ports. Compared as text: only the plain spellings pass
    (``urlsplit().port`` reads "0443" as 443, and what it accepts varies between Pythons)."""
    host_port = netloc.rpartition("@")[2]  # the host is a name here, never a bracketed IPv6 literal
    _, colon, port = host_port.partition(":")
    if colon and port not in _PORTS:
        raise _invalid(f"unsupported port: {port[:20]} (YouTube links use 443 or 80, or none)", raw)


def _id_from_short_link(path: str, raw: str) -> str:
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise _invalid("no video id in the URL", raw)
    return _checked_id(segments[0], raw)


def _id_from_site_url(path: str, query: str, raw: str) -> str:
    segments = [s for s in path.split("/") if s]
    params = parse_qs(query, keep_blank_values=True)
    first = segments[0].lower() if segments else ""

    if first == "watch":
        video_ids = [v for v in params.get("v", []) if v]
        if video_ids:
            return _checked_id(video_ids[0], raw)
        if len(segments) > 1:  # the rare /watch/ID form
            return _checked_id(segments[1], raw)
        if "list" in params:
            raise _playlist_only(raw)
        raise _invalid("no video id in the URL", raw)
    if first in _ID_PATH_PREFIXES:
        if len(segments) < 2:
            raise _invalid("no video id in the URL", raw)
        if first == "embed" and segments[1] == "videoseries":
            raise _playlist_only(raw)
        return _checked_id(segments[1], raw)
    if first == "playlist" or (not segments and "list" in params):
        raise _playlist_only(raw)
    if first.startswith("@") or first in _CHANNEL_PATH_PREFIXES:
        raise _invalid(
            "this is a channel URL, not a video: open one of its videos and copy that link",
            raw,
        )
    # e.g. the home page with ?v=ID (old share links), or /results, /feed/...
    video_ids = [v for v in params.get("v", []) if v]
    if not segments and video_ids:
        return _checked_id(video_ids[0], raw)
    raise _invalid("no video id in the URL", raw)


def _checked_id(candidate: str, raw: str) -> str:
    if not is_video_id(candidate):
        raise _invalid(_ID_RULE, raw)
    return candidate


def _playlist_only(raw: str) -> InvalidInputError:
    return _invalid(
        "this is a playlist URL without a video: open one video of the playlist and copy its link",
        raw,
    )


def _invalid(reason: str, raw: str) -> InvalidInputError:
    # The input is echoed (truncated) so the client can show what was refused.
    return InvalidInputError(
        reason[:1].upper() + reason[1:] + ".",
        code=ERROR_CODE,
        details={"input": raw[:200], "reason": reason},
    )
