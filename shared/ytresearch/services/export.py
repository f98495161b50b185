"""A research session as one Markdown document: its title, its videos in list order (each linked,
with its channel, duration, status, group and summary), then the whole conversation oldest first,
each reply's citations as timestamp links where the cited text starts (and a numbered list of
its sources under it) and its tool calls as a short list of actions, then the artifacts the
agent wrote (each at its latest version).

Everything in it but our own headings comes from strangers (titles, channels and transcripts on
YouTube, and the model that read them), so none of it can build Markdown structure: control
characters are dropped; one-line fields (titles, channels, quotes) have every character that
means something inline escaped; multi-line text (summaries, messages) keeps its emphasis, lists
and code but not links, images, raw HTML, reference definitions (brackets and ``<`` escaped) or
headings, and sits in a block quote, which ends any code fence it opens. An artifact keeps its
tables, headings and lists inside its block quote, and its links only when they point at a
YouTube video. Every URL is rebuilt from a checked video id and a whole second.
"""

from __future__ import annotations

import math
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard
from urllib.parse import parse_qs, urlsplit

from ytresearch.db.models import Artifact, ArtifactVersion, Message, ResearchSession, SessionVideo, Video
from ytresearch.errors import InvalidInputError
from ytresearch.pagination import Cursor
from ytresearch.repository import Repository, Store
from ytresearch.services.sessions import owned_session
from ytresearch.services.users import AuthUser
from ytresearch.windows import timestamp

FORMATS = ("md",)
MEDIA_TYPE = "text/markdown; charset=utf-8"
PAGE = 200  # messages read per query: every page is read, however long the conversation
ARTIFACTS = 10_000  # every artifact a session may hold (Settings.artifacts_per_session's bound)
SLUG_CHARS = 80

_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_]")
# Control characters (C0, DEL, C1) and the invisible marks that reorder or hide text.
_CONTROL = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)
_LINE_BREAKS = re.compile("\r\n|[\r\u2028\u2029\x85]")
# Inline: every character with a meaning inside a line (emphasis, code, links, HTML, tables, headings).
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~!&])")
# Blocks: only what builds links, images, reference definitions and HTML, with the backslashes
# just before it (doubled, so they cannot escape our escape), and a run at the very end (so a
# piece before an inserted link cannot escape the link's bracket).
_BLOCK_SPECIAL = re.compile(r"(\\*)([\[\]<]|\Z)")
# Lines that would make a heading (``# x``, or ``===`` / ``---`` under a line): the document's
# outline is ours. Their first character is escaped.
_HEADING_LINE = re.compile(r"^( {0,3})(#{1,6}(?=[ \t]|$)|=+[ \t]*$|-+[ \t]*$)", re.MULTILINE)
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_ENDINGS = {
    "cancelled": "This reply was cancelled before it finished: the text is what it had said.",
    "failed": "This reply failed before it finished: the text is what it had said.",
}


def check_format(fmt: str) -> None:
    """InvalidInputError (INVALID_FORMAT) unless ``fmt`` is a format we export."""
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"cannot export as {fmt[:20]!r}: the formats are " + ", ".join(FORMATS),
            code="INVALID_FORMAT",
            details={"formats": list(FORMATS)},
        )


def export_markdown(store: Store, user: AuthUser, session_id: uuid.UUID) -> tuple[str, str]:
    """The caller's session as ``(filename, markdown)``: the file name is the title's slug.
    NotFoundError (SESSION_NOT_FOUND) for another user's session, as everywhere."""
    with store.transaction() as repo:
        session = owned_session(repo, user, session_id)
        videos = repo.session_videos(session.id)
        messages = _oldest_first(repo, session.id)
        artifacts = repo.list_artifacts(session.id, ARTIFACTS, None)
        return filename_for(session), render(session, videos, messages, datetime.now(UTC), artifacts)


def _oldest_first(repo: Repository, session_id: uuid.UUID) -> list[Message]:
    """Every message of the session, page after page (the history's keyset order, reversed)."""
    newest_first: list[Message] = []
    cursor: Cursor | None = None
    while True:
        page = repo.list_messages(session_id, PAGE, cursor)
        newest_first += page
        if len(page) < PAGE:
            return newest_first[::-1]
        cursor = Cursor(page[-1].created_at, page[-1].id)


def filename_for(session: ResearchSession) -> str:
    """``<slug of the title>.md`` (ASCII letters, digits and dashes only, so any file system and
    any Content-Disposition takes it), or ``session-<id>.md`` for a title with none of those."""
    ascii_title = unicodedata.normalize("NFKD", session.title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:SLUG_CHARS].rstrip("-")
    return f"{slug or f'session-{str(session.id)[:8]}'}.md"


# ---------------------------------------------------------------------- the document


def render(
    session: ResearchSession,
    videos: Sequence[tuple[SessionVideo, Video]],
    messages: Sequence[Message],
    exported_at: datetime,
    artifacts: Sequence[tuple[Artifact, ArtifactVersion]] = (),
) -> str:
    """The document (pure: what the rows say, nothing else read)."""
    parts = [
        f"# {inline(session.title)}",
        f"Exported from the YouTube Research Tool on {_when(exported_at)}: "
        f"{_count(len(videos), 'video')}, {_count(len(messages), 'message')}.",
        "## Videos",
    ]
    if not videos:
        parts.append("No videos.")
    for number, (link, video) in enumerate(videos, 1):
        parts += _video(number, link, video)
    parts.append("## Conversation")
    if not messages:
        parts.append("No messages.")
    for message in messages:
        parts += _message(message)
    if artifacts:
        parts.append("## Artifacts")
    for artifact, version in artifacts:
        parts.append(
            f"### {inline(version.title)}\n\n_{inline(artifact.kind)}, version {version.version} of "
            f"{artifact.latest_version}, {_when(version.created_at)}_"
        )
        parts.append(quoted(artifact_block(version.content)))
    return "\n\n".join(parts) + "\n"


def _video(number: int, link: SessionVideo, video: Video) -> list[str]:
    title = inline(video.title or "") or inline(video.id)
    url = watch_url(video.id)
    facts = [
        f"- Channel: {inline(video.channel or '') or 'unknown'}",
        f"- Duration: {timestamp(video.duration_seconds) if video.duration_seconds else 'unknown'}",
        f"- Status: {video.status}" + (f" ({inline(video.error_code)})" if video.error_code else ""),
    ]
    if link.group_label:
        facts.append(f"- Group: {inline(link.group_label)}")
    summary = quoted(block(video.summary)) if video.summary and video.summary.strip() else "No summary."
    heading = f"### {number}. [{title}]({url})" if url else f"### {number}. {title}"
    return [heading, "\n".join(facts), summary]


def _message(message: Message) -> list[str]:
    who = "You" if message.role == "user" else "Claude"
    parts = [f"### {who} · {_when(message.created_at)}"]
    if message.status != "complete":
        parts[0] += f" · {inline(message.status)}"
        ending = _ENDINGS.get(message.status, "This reply did not finish: the text is what it had said.")
        if message.error_code:
            ending = ending[:-1] + f" (error {inline(message.error_code)})."
        parts.append(f"_{ending}_")
    citations = [c for c in (message.citations or []) if isinstance(c, dict)]
    sources = _Sources()
    text = _with_citations(message.content, citations, sources)
    parts.append(quoted(text) if text.strip() else "(no text)")
    if sources.lines:
        parts.append("Sources:\n\n" + "\n".join(sources.lines))
    actions = [_action(call) for call in message.tool_calls or [] if isinstance(call, dict)]
    if actions:
        parts.append("Actions:\n\n" + "\n".join(actions))
    return parts


@dataclass
class _Sources:
    """A reply's cited moments, numbered in order of first use, one per (video, second)."""

    numbers: dict[tuple[str, int], int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def number(self, citation: dict[str, Any]) -> tuple[int, str, str] | None:
        """The citation's number, link and link title; None when it names no valid video."""
        video_id, second = str(citation.get("video_id") or ""), whole_second(citation.get("start"))
        if not _VIDEO_ID.fullmatch(video_id):
            return None
        title = one_line(str(citation.get("title") or "")) or video_id
        url = watch_url(video_id, second)
        key = (video_id, second)
        if key not in self.numbers:
            self.numbers[key] = len(self.numbers) + 1
            span = timestamp(second)
            end = whole_second(citation.get("end"))
            if end > second:
                span += f" to {timestamp(end)}"
            line = f"{self.numbers[key]}. [{inline(title)} at {span}]({url})"
            quote = one_line(str(citation.get("quote") or ""))
            self.lines.append(line + (f": “{inline(quote)}”" if quote else ""))
        return self.numbers[key], url, f"{title} {timestamp(second)}"


def _with_citations(content: str, citations: list[dict[str, Any]], sources: _Sources) -> str:
    """The message's text with each citation's link inserted at its ``at`` (the offset in the raw
    text where the cited text starts), every piece escaped on its own so no link can be split."""
    placed: list[tuple[int, int, str]] = []
    for order, citation in enumerate(citations):
        found = sources.number(citation)
        if found is None:
            continue
        number, url, title = found
        at = citation.get("at")
        offset = min(max(int(at), 0), len(content)) if _is_number(at) else len(content)
        link = f'[{str(number).translate(_SUPERSCRIPT)}]({url} "{_link_title(title)}")'
        placed.append((offset, order, link))
    pieces: list[str] = []
    start = 0
    for offset, _, link in sorted(placed):
        pieces.append(block(content[start:offset]))
        # Apart from the words it supports, so a renderer never glues it to them.
        pieces.append(link + ("" if offset < len(content) and content[offset].isspace() else " "))
        start = offset
    pieces.append(block(content[start:]))
    return "".join(pieces)


def _action(call: dict[str, Any]) -> str:
    name = _TOOL_NAME.sub("", str(call.get("name") or "")) or "tool"
    raw_input = call.get("input")
    args = ", ".join(
        f"{inline(str(key))}: {inline(_short(value))}"
        for key, value in (raw_input.items() if isinstance(raw_input, dict) else [])
    )
    outcome = "done" if call.get("ok") else "failed"
    summary = one_line(str(call.get("summary") or ""))
    line = f"- `{name}`" + (f" ({args})" if args else "") + f": {outcome}"
    return line + (f", {inline(summary)}" if summary else "")


# ---------------------------------------------------------------------- escaping


def one_line(text: str) -> str:
    """``text`` without control characters, its whitespace (line breaks too) as single spaces."""
    return " ".join(_CONTROL.sub("", _LINE_BREAKS.sub(" ", text)).split())


def inline(text: str) -> str:
    """One line of text that can only be text: every inline Markdown character escaped."""
    return _INLINE_SPECIAL.sub(r"\\\1", one_line(text))


def block(text: str) -> str:
    """Multi-line text without control characters, whose brackets and ``<`` are escaped (no link,
    image, reference definition, autolink or HTML can come of it) and whose would-be headings are
    plain lines. Emphasis, lists and code stay."""
    text = _no_links(_CONTROL.sub("", _LINE_BREAKS.sub("\n", text)))
    return _HEADING_LINE.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


_MD_LINK = re.compile(r"\[([^\[\]\n]{0,500})\]\(<?([^()\s<>]{1,2048})>?\)")
_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be"})


def artifact_block(text: str) -> str:
    """An artifact's Markdown with its structure (tables, headings, lists, emphasis, code) but no
    raw HTML, and only the links that point at a YouTube video, each rebuilt from its checked id
    and whole second; any other link keeps its text only."""
    text = _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))
    pieces: list[str] = []
    start = 0
    for found in _MD_LINK.finditer(text):
        pieces.append(_no_links(text[start : found.start()]))
        label = _no_links(found.group(1))
        url = _youtube_moment(found.group(2))
        pieces.append(f"[{label}]({url})" if url else label)
        start = found.end()
    pieces.append(_no_links(text[start:]))
    return "".join(pieces)


def _no_links(text: str) -> str:
    """``text`` with its brackets and ``<`` escaped (see ``_BLOCK_SPECIAL``)."""
    return _BLOCK_SPECIAL.sub(lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""), text)


def _youtube_moment(url: str) -> str | None:
    """The canonical link for a YouTube video URL (at its ``t`` second, when it has one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or (parts.hostname or "") not in _YOUTUBE_HOSTS:
        return None
    query = parse_qs(parts.query)
    video_id = parts.path.strip("/") if parts.hostname == "youtu.be" else (query.get("v") or [""])[0]
    if not _VIDEO_ID.fullmatch(video_id):
        return None
    seconds = (query.get("t") or [""])[0].rstrip("s")
    return watch_url(video_id, int(seconds) if seconds.isdigit() else None)


def quoted(escaped: str) -> str:
    """Escaped text (``block``) as a block quote: every line prefixed, so whatever it opens (a code
    fence, a heading) ends with the quote."""
    return "\n".join(f"> {line}".rstrip() for line in escaped.strip("\n").split("\n"))


def _link_title(text: str) -> str:
    # A backtick could close a code span the message's text opened before the link, and take the
    # link with it (backslashes do not escape inside code spans): it becomes a quote mark.
    return one_line(text).replace("\\", "\\\\").replace('"', '\\"').replace("`", "'")


# ---------------------------------------------------------------------- values


def watch_url(video_id: str, second: int | None = None) -> str:
    """The video's watch URL (at ``second``), or "" for an id that is not an 11-character one."""
    if not _VIDEO_ID.fullmatch(video_id):
        return ""
    return f"https://www.youtube.com/watch?v={video_id}" + (f"&t={second}" if second is not None else "")


def whole_second(value: Any) -> int:
    """A time as whole seconds; 0 unless a finite number at or after 0."""
    return int(value) if _is_number(value) and value >= 0 else 0


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")  # stored in UTC; SQLite gives it back naive


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
