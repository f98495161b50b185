"""The offline model as an agent: plain intents in the person's message become tool calls, and
tool results become an honest reply.

Deterministic and extractive like the rest of the offline model. Intents are read only from the
person's own message (never from transcripts, titles or tool results, which are data), and the
reply after tool results only repeats what the tools said, so it never calls a tool again.

- video URLs -> add_video each; playlist (list=) or channel (/@x, /channel/ ...) -> add_playlist
- "remove the second video" / "delete video 3" / "remove <id or URL>" -> remove_video
- "find videos about X" / "search YouTube for X" -> search_youtube
- "sort (the videos) by date|duration|length|channel|topic" -> organize_videos
- "make a comparison table" / "make an outline" / "write study notes" -> create_artifact
- "list my videos" / "what videos do I have" -> list_videos
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ytresearch.errors import InvalidInputError
from ytresearch.llm.offline_artifacts import Videos, announcement, artifact_input, no_videos, wanted_kind
from ytresearch.llm.offline_quotes import content_words
from ytresearch.ports import ToolResultBlock, ToolSpec, ToolUseBlock
from ytresearch.youtube.urls import canonical_url, is_video_id, parse_video_id

MAX_LISTED = 10  # videos listed from one tool result
_MAX_LINE_CHARS = 300  # a tool's summary or error is one line for people; cut anything longer
_MAX_TITLE_CHARS = 120
_MAX_QUERY_CHARS = 200
_MAX_GROUPS = 20
NO_TOPIC_GROUPS = (
    "Offline model: no AI model is configured, so I can only group videos whose titles share "
    "words, and these titles share none. I can sort the videos by date, duration or channel."
)


@dataclass(frozen=True)
class PlannedCall:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class AgentReply:
    """What the offline model says, then the tool calls it asks for (none: the turn ends)."""

    text: str
    calls: tuple[PlannedCall, ...] = ()


# ---------------------------------------------------------------- intents


def _ci(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_ORDINALS = "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth"
_ORDINAL = rf"(?:{_ORDINALS}|\d{{1,3}}(?:st|nd|rd|th))"

# Polite or chatty openings before an imperative ("ok, could you please sort ...").
_LEAD = _ci(
    r"(?:(?:please|ok(?:ay)?|hey|hi|so|now|also|then|and|alright|great|thanks|thank\s+you)\b[,!]?\s*"
    r"|(?:could|can|would|will)\s+you\s+"
    r"|(?:i\s+want|i'd\s+like|i\s+would\s+like)\s+(?:you\s+)?to\s+"
    r"|let's\s+|lets\s+|go\s+ahead\s+and\s+|help\s+me\s+)*"
)
_CLAUSE_END = re.compile(r"[.!?;]+(?:\s+|$)|\n+")

_REMOVE_VERB = r"(?:remove|delete|drop)\s+(?:the\s+)?"
_REMOVE_POSITION = _ci(  # "the second video", "the 3rd one", "video 3", "video #3", "number 3"
    _REMOVE_VERB + rf"(?:(?P<ord>{_ORDINAL})\s+(?:video|one)\b"
    rf"|(?:video\s*(?:number\s+|no\.?\s*|#)?|number\s+|#)(?P<pos>\d{{1,3}}|{_ORDINAL})\b)"
)
_REMOVE_TARGETS = _ci(_REMOVE_VERB + r"(?:videos?\s+)?(?P<rest>\S.*)")
_ADD_ID = _ci(r"add\s+(?:the\s+)?(?:video\s+)?(?P<rest>\S.*)")

_ORGANIZE = _ci(
    r"(?:organi[sz]e|sort|order|group|arrange|reorder|rearrange)\s+(?:[\w']+\s+){0,4}?by\s+"
    r"(?:(?:the\s+)?(?:upload|publish(?:ed|ing)?|release)\s+)?"
    r"(?P<key>date|duration|length|channel|topic|subject|theme)s?\b"
)
_STRATEGIES = {"length": "duration", "subject": "topic", "theme": "topic"}

_SEARCH_PATTERNS = (
    _ci(
        r"(?:find|search\s+for|search|look\s+for|look\s+up|get)\s+(?:me\s+)?(?:(?P<n>\d{1,2})\s+)?"
        r"(?:(?:some|more|other|a\s+few|new|good)\s+)?(?:youtube\s+)?videos?\s+"
        r"(?:about|on|for|of|covering|regarding)\s+(?P<q>.+)"
    ),
    _ci(r"search\s+(?:on\s+)?youtube\s+(?:for\s+|about\s+)?(?P<q>.+)"),
    _ci(r"(?:search\s+for|find|look\s+for|look\s+up)\s+(?P<q>.+?)\s+(?:on|in)\s+youtube\W*$"),
)
_QUERY_TAIL = _ci(r"(?:\s+(?:on|in)\s+youtube|\s+please|\s+for\s+me|[\s\"'.,!?])+$")

_LIST_PATTERNS = (
    _ci(
        r"(?:list|show|display)\s+(?:me\s+)?(?:all\s+)?(?:of\s+)?(?:my|the|our|all)?\s*"
        r"(?:session'?s?\s+)?videos\b"
    ),
    _ci(r"(?:what|which)\s+videos\s+(?:do|did|have)\s+(?:i|we)\b"),
    _ci(
        r"(?:what|which)\s+videos\s+are\s+(?:there|loaded|added|here|in\s+(?:my|this|the|our)\s+"
        r"(?:session|list|chat))\b"
    ),
    _ci(r"what\s+videos\W*$"),
)

_URL = _ci(
    r"(?<![\w.@/-])(?:https?://)?(?:[a-z0-9-]+\.)*(?:youtube\.com|youtu\.be|youtube-nocookie\.com)(?:[/?#:]\S*)?"
)
_URL_TRAILER = ".,;:!?)]}>'\""
_LIMIT = _ci(
    r"\b(?:limit(?:ed)?(?:\s+(?:of|to|it\s+to))?|first|latest|newest|last|top)\s+(?P<n>\d{1,4})\b"
    r"|\b(?P<m>\d{1,4})\s+(?:videos|uploads)\b"
)
_CHANNEL_PREFIXES = frozenset({"channel", "c", "user"})


@dataclass(frozen=True)
class _Ask:
    text: str  # the person's message
    clauses: list[str]  # its sentences, without polite openings ("could you please ...")
    titles: list[tuple[str, str]]  # (video id, title) of the videos in the context, in order
    videos: Videos  # what the request holds about each video (``request_videos``), for artifacts


def plan_tool_calls(
    text: str, tools: Sequence[ToolSpec], titles: Sequence[tuple[str, str]] = (), videos: Videos = ()
) -> AgentReply | None:
    """The tool calls the person's message ``text`` asks for, with one sentence saying so; None
    when it asks for none of ``tools`` (the model answers from the transcripts instead). One kind
    of action per message, the first that matches: remove, add, organize, search, artifact, list.

    ``titles`` (the videos' (id, title): ``video_titles``) only serve grouping by topic and
    ``videos`` (``request_videos``) only fill artifacts; nothing in them asks for an action."""
    specs = {t.name: t for t in tools}
    clauses = [_LEAD.sub("", c, count=1).strip() for c in _CLAUSE_END.split(text)]  # lead is at 0
    ask = _Ask(text, [c for c in clauses if c], list(titles), videos)
    for plan in (_plan_remove, _plan_add, _plan_organize, _plan_search, _plan_artifact, _plan_list):
        calls = [_fit_schema(c, specs[c.name]) for c in plan(ask) if c.name in specs]
        if not calls:
            continue
        if calls[0].name == "organize_videos" and calls[0].input == {"strategy": "topic"}:
            return AgentReply(NO_TOPIC_GROUPS)  # no shared title words: nothing honest to call
        if calls[0].name == "create_artifact" and "content" not in calls[0].input:
            return AgentReply(no_videos(calls[0].input["kind"]))  # nothing to make it from
        return AgentReply(_announce(calls) + "\n\n", tuple(calls))  # the results' reply follows
    return None


def _plan_remove(ask: _Ask) -> list[PlannedCall]:
    for clause in ask.clauses:
        if position := _REMOVE_POSITION.match(clause):
            return [PlannedCall("remove_video", {"video": _position(position["ord"] or position["pos"])})]
        target = _REMOVE_TARGETS.match(clause)
        if ids := _video_ids(target["rest"]) if target else []:
            return [PlannedCall("remove_video", {"video": video_id}) for video_id in ids]
    return []


def _plan_add(ask: _Ask) -> list[PlannedCall]:
    limit = _limit(ask.text)
    wants_playlist = re.search(r"\bplaylists?\b", ask.text) is not None
    calls: list[PlannedCall] = []
    seen: set[str] = set()
    for match in _URL.finditer(ask.text):
        call = _url_call(match.group().rstrip(_URL_TRAILER), limit, wants_playlist)
        if call is not None and (key := json.dumps(call.input, sort_keys=True)) not in seen:
            seen.add(key)
            calls.append(call)
    if calls:
        return calls
    for clause in ask.clauses:  # "add dQw4w9WgXcQ": bare ids count only after the verb
        added = _ADD_ID.match(clause)
        if ids := _video_ids(added["rest"]) if added else []:
            return [PlannedCall("add_video", {"url": canonical_url(i)}) for i in ids]
    return []


def _plan_organize(ask: _Ask) -> list[PlannedCall]:
    for clause in ask.clauses:
        if match := _ORGANIZE.match(clause):
            key = match["key"].lower()
            arguments: dict[str, Any] = {"strategy": _STRATEGIES.get(key, key)}
            if arguments["strategy"] == "topic" and (groups := topic_groups(ask.titles)):
                arguments["groups"] = groups
            return [PlannedCall("organize_videos", arguments)]
    return []


def topic_groups(titles: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Offline "topics": videos whose titles share a word, the most shared word first (ties
    alphabetical). Videos that share nothing are left out; the tool lists them under "Other"."""
    words = {video_id: set(content_words(title)) for video_id, title in titles}
    remaining = [video_id for video_id, _ in titles]
    groups: list[dict[str, Any]] = []
    while remaining and len(groups) < _MAX_GROUPS:
        counts = Counter(w for video_id in remaining for w in words[video_id])
        shared = sorted((w for w, n in counts.items() if n >= 2), key=lambda w: (-counts[w], w))
        if not shared:
            break
        word = shared[0]
        members = [video_id for video_id in remaining if word in words[video_id]]
        groups.append({"label": word.capitalize(), "video_ids": members})
        remaining = [video_id for video_id in remaining if video_id not in members]
    return groups


def _fit_schema(call: PlannedCall, spec: ToolSpec) -> PlannedCall:
    """Numbers the person said, kept within the tool's bounds ("the first 500" -> its maximum)."""
    properties = spec.input_schema.get("properties")
    fitted = dict(call.input)
    for key, value in call.input.items():
        schema = properties.get(key) if isinstance(properties, dict) else None
        if isinstance(value, int) and isinstance(schema, dict):
            fitted[key] = min(value, schema.get("maximum", value))
            fitted[key] = max(fitted[key], schema.get("minimum", fitted[key]))
    return PlannedCall(call.name, fitted)


def _plan_search(ask: _Ask) -> list[PlannedCall]:
    for clause in ask.clauses:
        for pattern in _SEARCH_PATTERNS:
            match = pattern.match(clause)
            query = " ".join(_QUERY_TAIL.sub("", match["q"]).split())[:_MAX_QUERY_CHARS] if match else ""
            if not (match and query):
                continue
            arguments: dict[str, Any] = {"query": query}
            if (count := match.groupdict().get("n")) and int(count) > 0:
                arguments["max_results"] = int(count)
            return [PlannedCall("search_youtube", arguments)]
    return []


def _plan_artifact(ask: _Ask) -> list[PlannedCall]:  # no videos: just the kind, to say so
    kind = wanted_kind(ask.clauses)
    return [PlannedCall("create_artifact", artifact_input(kind, ask.videos))] if kind else []


def _plan_list(ask: _Ask) -> list[PlannedCall]:
    if any(p.match(c) for c in ask.clauses for p in _LIST_PATTERNS):
        return [PlannedCall("list_videos", {})]
    return []


def _position(word: str) -> str:
    word = word.lower()
    words = _ORDINALS.split("|")
    return str(words.index(word) + 1) if word in words else re.sub(r"\D", "", word)


def _limit(text: str) -> int | None:
    match = _LIMIT.search(text)
    value = int(match["n"] or match["m"]) if match else 0
    return value if value > 0 else None


def _video_ids(text: str) -> list[str]:
    """The video ids named in ``text`` (URLs or id-like words), in order, without repeats.
    Words that read as ordinary words ("information", "Fascinating") are not ids."""
    ids: list[str] = []
    for word in text.split():
        word = word.strip(_URL_TRAILER + "(['\"")
        if is_video_id(word) and re.fullmatch(r"[a-z_-]+|[A-Z][a-z_-]+", word):
            continue
        try:
            video_id = parse_video_id(word)
        except InvalidInputError:
            continue
        if video_id not in ids:
            ids.append(video_id)
    return ids


def _url_call(url: str, limit: int | None, wants_playlist: bool) -> PlannedCall | None:
    """A video URL adds the video; a playlist or channel URL adds its videos. A watch URL that
    also carries ``list=`` adds the playlist only when the person says "playlist"."""
    full = url if re.match(r"https?://", url, re.IGNORECASE) else "https://" + url
    try:
        parts = urlsplit(full)
    except ValueError:
        return None
    has_list = any(v for v in parse_qs(parts.query).get("list", []))
    ids = _video_ids(url)
    if ids and not (has_list and wants_playlist):
        return PlannedCall("add_video", {"url": canonical_url(ids[0])})
    segments = [s.lower() for s in parts.path.split("/") if s] or [""]
    if has_list or segments[0].startswith("@") or (segments[0] in _CHANNEL_PREFIXES and len(segments) > 1):
        return PlannedCall("add_playlist", {"url": full} | ({"limit": limit} if limit else {}))
    return None


def _announce(calls: Sequence[PlannedCall]) -> str:
    """One short, honest sentence about what the offline model is about to do."""
    name = calls[0].name
    if name == "remove_video":
        targets = [str(c.input["video"]) for c in calls]
        if len(targets) == 1 and targets[0].isdigit():
            return f"Offline model: removing video {targets[0]}."
        return f"Offline model: removing {', '.join(targets)}."
    if name in ("add_video", "add_playlist"):
        videos = sum(c.name == "add_video" for c in calls)
        playlists = len(calls) - videos
        parts = []
        if videos:
            parts.append("that video" if videos == 1 else f"{videos} videos")
        if playlists:
            lists = [c for c in calls if c.name == "add_playlist"]
            kind = "playlist" if all("list=" in str(c.input["url"]) for c in lists) else "channel"
            source = f"that {kind}" if playlists == 1 else f"{playlists} playlists or channels"
            limit = lists[0].input.get("limit")
            if limit is not None:
                source += f" (at most {limit}{' each' if playlists > 1 else ''})"
            parts.append(f"videos from {source}")
        return f"Offline model: adding {' and '.join(parts)}."
    if name == "organize_videos":
        groups = calls[0].input.get("groups")
        if groups:
            labels = ", ".join(g["label"] for g in groups)
            return f"Offline model: grouping the videos by words their titles share ({labels})."
        return f"Offline model: organizing the videos by {calls[0].input['strategy']}."
    if name == "search_youtube":
        return f'Offline model: searching YouTube for "{calls[0].input["query"]}".'
    if name == "create_artifact":
        return announcement(calls[0].input["kind"])
    return "Offline model: listing the session's videos."


# ---------------------------------------------------------------- the reply after tool results


def reply_to_results(
    results: Sequence[ToolResultBlock],
    calls: Mapping[str, ToolUseBlock],
    available: Collection[str] = (),
) -> str:
    """Say what the tools said (their summaries and error messages), listing any videos their
    data holds. Nothing here comes from anywhere but the results."""
    sections = [
        _result_lines(r, calls[r.call_id].name if r.call_id in calls else None, available) for r in results
    ]
    if len(sections) == 1:
        return "\n".join(sections[0])
    # Several results: one bullet each, their listed videos indented under it.
    return "\n".join(
        f"- {line}" if i == 0 else f"  {line}".rstrip()
        for section in sections
        for i, line in enumerate(section)
    )


def _result_lines(result: ToolResultBlock, tool: str | None, available: Collection[str]) -> list[str]:
    payload = _json_object(result.content)
    label = f"{tool} finished" if tool else "the tool finished"
    if payload is None:
        text = _one_line(result.content) or label
        return [f"That did not work: {text}" if result.is_error else f"The tool said: {text}"]
    if result.is_error or payload.get("ok") is False:
        error = payload.get("error")
        text = _one_line(error.get("message") if isinstance(error, dict) else None)
        return [f"That did not work: {_sentence(text or 'the tool reported an error without a message')}"]
    lines = [f"Done: {_sentence(_one_line(payload.get('summary')) or label)}"]
    data = payload.get("data")
    if listed := _listed_videos(data) if isinstance(data, dict) else []:
        lines += ["", *listed]
        if tool == "search_youtube" and "add_video" in available:
            lines.extend(["", "To add one, paste its link here."])
    return lines


def _listed_videos(data: dict[str, Any]) -> list[str]:
    items: list[Any] = next(
        (data[k] for k in ("candidates", "results", "videos") if isinstance(data.get(k), list)), []
    )
    lines: list[str] = []
    shown = [i for i in items if isinstance(i, dict)]
    for number, item in enumerate(shown[:MAX_LISTED], start=1):
        title = _one_line(item.get("title"), _MAX_TITLE_CHARS) or "(untitled)"
        channel = _one_line(item.get("channel"), _MAX_TITLE_CHARS)
        url = _one_line(item.get("url"))
        video_id = item.get("video_id") or item.get("id")
        if not url and isinstance(video_id, str) and is_video_id(video_id):
            url = canonical_url(video_id)
        position = item.get("position")
        status = _one_line(item.get("status"), 40)
        line = f"{position if isinstance(position, int) else number}. {title}"
        line += (f" — {channel}" if channel else "") + (f", {url}" if url else "")
        lines.append(line + (f" ({status})" if status else ""))
    if len(shown) > MAX_LISTED:
        lines.append(f"... and {len(shown) - MAX_LISTED} more.")
    return lines


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _one_line(value: object, limit: int = _MAX_LINE_CHARS) -> str:
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", "…")) else text + "."
