"""Transcript retrieval: does the prompt hold the passage a question needs, does the reply cite it,
how large is the prompt and how long does building it take, against the old whole-or-truncated
context, in the same run.

The corpus is this module's own, seeded: N long synthetic transcripts (filler sentences drawn from
a common-word list, one caption line every 4-6 s) with facts planted at random positions ("the
<adjective> <noun> <verb>ed near <place> on the <day> of <month> <year>", from invented words that
never occur in the filler). The invented words are shared between facts (a noun names about two
facts, an adjective or a place several) and each also appears in decoy lines elsewhere, so one
word never singles a fact out. The videos are stored ready, with their windows (the transcript
index) and a one-line summary. One question per fact, phrased differently ("When did the ...
<verb> ...?"), sharing 2-3 of its invented words (the verb in another form).

Each question is asked in a fresh session with every video linked (so the prompt holds no history
and every question sees the same videos), both ways, interleaved:

- new: ``prepare_turn`` (the product's path: full context while the transcripts fit
  ``context_full_budget_tokens``, else each video's summary and the windows found for the
  question), then ``run_turn`` with the offline model, whose reply quotes the best-matching caption
  lines and cites their window (mapped by ``services.sources.cite``).
- old (baseline, reimplemented here as the code before transcript windows had it): the same
  repository steps (session, videos, history, the user's message), then every ready video whole
  in a system block as "[mm:ss] line" text, or, past the budget (3/4 of 150k tokens, less the
  reply and a reserve), each transcript cut to an equal share keeping its start. The offline model
  answers it too, quoting lines without citations (the old request had no documents).

Reported per database: context recall (the fact's line is in the prompt), citation accuracy (a
citation of the reply maps to the fact's video and a window holding the fact's line; old: n/a),
whether the reply quotes the fact, input tokens per question (the offline model's count, ~4
chars/token) and the context build time: wall p50/p95 and the p50's ratio to the old build, the
building thread's CPU time, and the CPU time PostgreSQL's processes spent meanwhile (from /proc).
Timings are printed, never asserted.

Run: .venv/bin/python -m bench.retrieval [--videos 20] [--minutes 60] [--questions 40]
     [--rounds 3] [--db sqlite,postgres] [--seed 7] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import text as sql

from bench.common import (
    database,
    fmt,
    lifted_limits,
    machine,
    percentile,
    postgres_available,
    table,
    tree_cpu_seconds,
)
from tests.support.queue import RecordingQueue
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.models import Video
from ytresearch.events import StreamEvent
from ytresearch.llm import OfflineChatModel
from ytresearch.ports import (
    ChatModel,
    CitationDelta,
    Completion,
    ContentBlock,
    DocumentBlock,
    ModelEvent,
    ModelMessage,
    ModelRequest,
    StreamFinished,
    SystemBlock,
    TextDelta,
    Usage,
)
from ytresearch.repository import Store
from ytresearch.services.chat import run_turn
from ytresearch.services.context import (
    CONTEXT_RESERVE,
    HISTORY_LIMIT,
    RETRIEVED_NOTE,
    SYSTEM_PROMPT,
    ChatQuestion,
    ContextDeps,
    check_message,
)
from ytresearch.services.context import (
    prepare_turn as new_prepare_turn,
)
from ytresearch.services.limits import check_write_count, window_start
from ytresearch.services.sources import Source, cite
from ytresearch.services.users import AuthUser
from ytresearch.windows import timestamp, transcript_windows

# ------------------------------------------------------------------------------------- the corpus

# Common words of talk about everyday things; the filler is drawn from them, the commonest first
# (weights fall off like word frequencies do), so a search's rare-word weighting is exercised.
_FILLER_TEXT = """
    people time year way day man thing woman life child world school state family student group
    country problem hand part place case week company system program question work government
    number night point home water room mother area money story fact month lot right study book eye
    job word business issue side kind head house service friend father power hour game line end
    member law car city community name president team minute idea kid body information back parent
    face others level office door health person art war history party result change morning reason
    research girl guy moment air teacher force education foot boy age policy process music market
    sense nation plan college interest death experience effect use class control care field
    development role effort rate heart drug show leader light voice wife police mind price report
    decision son view relationship town road arm difference value building action model season
    society tax director position player record paper space ground form event official matter
    center couple site project activity star table need court oil situation cost industry figure
    street image phone data picture practice piece land product doctor wall patient worker news
    test movie north love support technology step baby computer type attention film tree source
    organization hair window evidence population truth song energy garden kitchen bread coffee
    bridge river engine wheel garage farmer harbour island weather summer winter village teacher
    talk make take come see look find give think tell become leave feel bring begin keep hold write
    stand hear mean meet run pay sit speak lie lead read grow lose fall send build understand draw
    break spend cut rise drive buy wear choose seek throw catch deal win forget explain carry watch
    open walk start help turn move play live believe happen include continue learn change follow
    stop create remember consider appear allow serve die expect stay reach kill remain suggest
    raise pass sell require report decide pull good new first last long great little own old big
    high different small large next early young important public bad able free sure clear full
    special easy whole strong certain late hard real best better true simple local recent social
    basic open quick slow warm cold bright heavy quiet busy careful honest usual natural
"""
FILLER_WORDS = list(dict.fromkeys(_FILLER_TEXT.split()))

# Invented words (consonant-vowel syllables) for the planted facts: none is an English word or
# occurs in the filler, so a question can only meet its fact (or a decoy) through them.
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "gr", "pl", "kr", "st"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "", "n", "r", "l", "x", "sk", "nd"]
_MONTHS_TEXT = "January February March April May June July August September October November December"
MONTHS = _MONTHS_TEXT.split()

FACT_LINE = "and remember that the {adj} {noun} {verb}ed near {place} on the {day} of {month} {year}"
QUESTIONS = (  # phrased unlike the fact; the verb in its base form; 2-3 of adj, noun, place
    ("When did the {noun} {verb} close to {place}?", ("noun", "place")),
    ("On what date did the {adj} {noun} {verb}?", ("adj", "noun")),
    ("What does the talk say about when the {adj} {noun} would {verb} at {place}?", ("adj", "noun", "place")),
    ("Which day was it that a {noun} from {place}, the {adj} one, did {verb}?", ("adj", "noun", "place")),
)
DECOYS = (  # invented words again, with filler: they share a word with a question, not the answer
    "people say the {noun} is a {word} thing to see",
    "we drove past {place} on the way to the {word}",
    "that {adj} kind of {word} is not for everyone",
    "my friend said the {noun} never did {verb} at all",
)
ORDINALS = {1: "first", 2: "second", 3: "third", 21: "twenty-first", 22: "twenty-second", 23: "twenty-third"}


def ordinal(day: int) -> str:
    return ORDINALS.get(day, f"{day}th")


@dataclass(frozen=True)
class Fact:
    video: int
    start: float  # the caption line's start
    line: str
    question: str


@dataclass
class Corpus:
    segments: list[list[dict[str, Any]]]  # per video
    summaries: list[str]
    facts: list[Fact]

    @property
    def video_ids(self) -> list[str]:
        return [video_id(i) for i in range(len(self.segments))]


def video_id(i: int) -> str:
    return f"bench{i:06d}"  # 11 characters, like a YouTube id


def invented(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3)))
        word += rng.choice(_CODAS)
        if word not in taken and len(word) >= 5:
            taken.add(word)
            words.append(word)
    return words


def filler_sentence(rng: random.Random, words: int, weights: list[float]) -> str:
    return " ".join(rng.choices(FILLER_WORDS, weights=weights, k=words))


def make_corpus(videos: int, minutes: float, questions: int, seed: int) -> Corpus:
    """The transcripts, summaries and planted facts: the same for the same arguments."""
    rng = random.Random(seed)
    weights = [1 / (rank + 8) for rank in range(len(FILLER_WORDS))]  # Zipf-like
    taken = set(FILLER_WORDS) | {m.lower() for m in MONTHS}
    nouns = invented(rng, max(2, questions // 2), taken)
    adjectives = invented(rng, max(2, questions // 5), taken)
    places = invented(rng, max(2, questions // 3), taken)
    verbs = invented(rng, max(2, questions // 4), taken)

    segments: list[list[dict[str, Any]]] = []
    for _ in range(videos):
        lines, start = [], rng.uniform(0, 3)
        while start < minutes * 60:
            duration = rng.uniform(4, 6)
            words = round(duration * rng.uniform(2.2, 2.8))  # about 150 words a minute
            lines.append(
                {
                    "text": filler_sentence(rng, words, weights),
                    "start": round(start, 2),
                    "duration": round(duration, 2),
                }
            )
            start += duration
        segments.append(lines)

    facts: list[Fact] = []
    used: dict[tuple[str, ...], None] = {}  # a dict, not a set: its order is the same every run
    planted: set[tuple[int, int]] = set()
    while len(facts) < questions:
        parts = {"adj": rng.choice(adjectives), "noun": rng.choice(nouns), "place": rng.choice(places)}
        template, shared = QUESTIONS[len(facts) % len(QUESTIONS)]
        key = tuple(parts[k] for k in shared)
        video = len(facts) % videos
        index = rng.randrange(len(segments[video]))
        if key in used or tuple(parts.values()) in used or (video, index) in planted:
            continue  # a question's words must single out one fact
        used |= dict.fromkeys((key, tuple(parts.values())))
        planted.add((video, index))
        verb = rng.choice(verbs)
        line = FACT_LINE.format(
            verb=verb,
            day=ordinal(rng.randint(1, 28)),
            month=rng.choice(MONTHS),
            year=rng.randint(1890, 2020),
            **parts,
        )
        segments[video][index]["text"] = line
        question = template.format(verb=verb, **parts)
        facts.append(Fact(video, segments[video][index]["start"], line, question))
    for fact_words in list(used):  # decoys: each invented word again, in other lines
        for word in fact_words:
            video = rng.randrange(videos)
            index = rng.randrange(len(segments[video]))
            if (video, index) in planted:
                continue
            planted.add((video, index))
            decoy = rng.choice(DECOYS).format(
                noun=word, place=word, adj=word, verb=rng.choice(verbs), word=rng.choice(FILLER_WORDS[:200])
            )
            segments[video][index]["text"] = decoy
    summaries = [
        "A talk about " + ", ".join(dict.fromkeys(rng.choices(FILLER_WORDS[:120], k=6))) + "."
        for _ in range(videos)
    ]
    return Corpus(segments, summaries, facts)


def store_corpus(container: Container, corpus: Corpus) -> None:
    """The videos, ready, with their transcripts, summaries and windows: setup, not measured."""
    for i, segments in enumerate(corpus.segments):
        with container.store.transaction() as repo:
            video = repo.get_or_add_video(video_id(i))
            video.status, video.title, video.channel = "ready", f"Long talk {i + 1}", "Bench channel"
            video.summary, video.summary_model = corpus.summaries[i], "offline"
            video.duration_seconds = int(segments[-1]["start"] + segments[-1]["duration"])
            video.transcript_language, video.transcript_is_generated = "en", True
            video.transcript_segments = segments
            video.transcript_text = " ".join(s["text"] for s in segments)
            repo.replace_windows(video.id, "en", transcript_windows(segments))
    if container.engine.dialect.name == "postgresql":
        with container.engine.connect() as conn:  # statistics as autovacuum would have them
            conn.execute(sql("ANALYZE"))
            conn.commit()


# --------------------------------------------------------------- the baseline: the old behaviour
# Reimplemented from services/context.py as it was before transcript windows (commit 88d5fe7):
# every ready video whole as "[mm:ss] line" text in a system block, and past 3/4 of what the
# 150k-token budget leaves (after the reply and a reserve) each transcript cut to an equal share
# of it, keeping its start.


def old_video_document(video: Video, max_tokens: int | None, model: ChatModel) -> str:
    lines = [f"[{timestamp(seg['start'])}] {seg['text']}" for seg in video.transcript_segments or []]
    head = (
        f'<video id="{video.id}" title="{video.title or ""}" channel="{video.channel or ""}">\n'
        f"<summary>\n{video.summary or ''}\n</summary>\n<transcript>\n"
    )
    tail = "\n</transcript>\n</video>"
    body = "\n".join(lines)
    if max_tokens is not None and model.count_tokens(head + body + tail) > max_tokens:
        keep = max(0, max_tokens - model.count_tokens(head + tail) - 20)
        body = body[: keep * 4] + "\n[transcript truncated to fit the context budget]"
    return head + body + tail


def old_video_documents(model: ChatModel, videos: Sequence[Video], budget: int) -> list[str]:
    docs = [old_video_document(v, None, model) for v in videos]
    if sum(model.count_tokens(d) for d in docs) <= budget or not docs:
        return docs
    share = max(500, budget // len(docs))
    return [old_video_document(v, share, model) for v in videos]


def old_prepare_turn(store: Store, deps: ContextDeps, question: ChatQuestion) -> ModelRequest:
    """The old ``prepare_turn``: the same repository steps, then the old request (no history:
    every question has a fresh session)."""
    settings, model = deps.settings, deps.model
    with store.transaction() as repo:
        text = check_message(question.text, settings)
        found = repo.session_for_chat(question.user.id, question.session_id, window_start())
        assert found is not None
        session, _active, recent = found
        check_write_count(settings, "message", recent)
        ready = [video for _, video in repo.session_videos(session.id) if video.status == "ready"]
        history = repo.recent_messages(session.id, HISTORY_LIMIT)
        assert not history
        repo.add_message(flush=False, session_id=session.id, role="user", content=text, status="complete")
        repo.touch_session(session.id)
        budget = settings.context_budget_tokens - deps.max_tokens - CONTEXT_RESERVE
        budget -= model.count_tokens(SYSTEM_PROMPT) + model.count_tokens(text)
        documents = old_video_documents(model, ready, budget * 3 // 4)
        system = [SystemBlock(SYSTEM_PROMPT)] + [
            SystemBlock(doc, cache=i == len(documents) - 1) for i, doc in enumerate(documents)
        ]
        return ModelRequest(
            system=system,
            messages=[ModelMessage("user", [ContentBlock(text)])],
            max_tokens=deps.max_tokens,
            purpose="chat",
        )


# ------------------------------------------------------------------------------------ measuring

_T = TypeVar("_T")


class CountingModel:
    """The offline model, noting the input tokens it reports for each request and the citations
    of its last reply (as the model gave them: which document, which parts)."""

    def __init__(self) -> None:
        self.inner = OfflineChatModel()
        self.name = self.inner.name
        self.usage: list[Usage] = []
        self.citations: list[CitationDelta] = []

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        self.citations = []
        async with contextlib.aclosing(self.inner.stream(request)) as events:
            async for event in events:
                if isinstance(event, StreamFinished):
                    self.usage.append(event.usage)
                elif isinstance(event, CitationDelta):
                    self.citations.append(event)
                yield event

    async def complete(self, request: ModelRequest) -> Completion:
        return await self.inner.complete(request)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


@dataclass
class Series:
    in_prompt: list[bool] = field(default_factory=list)
    cited: list[bool] = field(default_factory=list)  # a citation names the fact's window
    citations: list[int] = field(default_factory=list)  # citations per reply, as shown
    dropped: list[int] = field(default_factory=list)  # citations per reply that cite() refused
    quoted: list[bool] = field(default_factory=list)  # the reply quotes the fact's line
    tokens: list[int] = field(default_factory=list)
    build: list[float] = field(default_factory=list)  # wall seconds
    build_cpu: list[float] = field(default_factory=list)  # this thread's CPU seconds (not the server's)
    server_cpu: list[float] = field(default_factory=list)  # PostgreSQL's process tree, CPU seconds
    modes: dict[str, int] = field(default_factory=dict)
    windows: list[int] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)  # what went wrong, per question missed


def timed(out: Series, server: int | None, build: Callable[..., _T], *args: Any) -> _T:
    """``build(*args)`` on this (worker) thread, its wall and CPU time noted in ``out``, and the
    CPU time of the database server's processes (``server``: PostgreSQL's postmaster) meanwhile."""
    before = tree_cpu_seconds(server) if server else 0.0  # read outside the timed part
    wall, cpu = time.perf_counter(), time.thread_time()
    result = build(*args)
    out.build_cpu.append(time.thread_time() - cpu)
    out.build.append(time.perf_counter() - wall)
    if server:
        out.server_cpu.append(tree_cpu_seconds(server) - before)
    return result


def prompt_text(request: ModelRequest) -> str:
    texts = [b.text for b in request.system]
    for message in request.messages:
        for block in message.content:
            if isinstance(block, DocumentBlock):
                texts += block.parts
            elif isinstance(block, ContentBlock):
                texts.append(block.text)
    return "\n".join(texts)


def fact_cited(fact: Fact, sources: Sequence[Source], delta: CitationDelta) -> bool:
    """The citation survives ``cite`` (what the person is shown) and the windows it names are the
    fact's video's and hold its line."""
    if cite(sources, delta) is None:
        return False
    source = sources[delta.document_index]
    windows = source.windows[delta.start_part : delta.end_part]
    return source.video_id == video_id(fact.video) and any(fact.line in w.text for w in windows)


@dataclass(frozen=True)
class World:
    """What asking needs: the database, the context's dependencies (the counting offline model),
    the user, and PostgreSQL's postmaster pid (None on SQLite)."""

    container: Container
    deps: ContextDeps
    model: CountingModel
    user: AuthUser
    server: int | None

    def question(self, sid: uuid.UUID, fact: Fact) -> ChatQuestion:
        return ChatQuestion(user=self.user, session_id=sid, text=fact.question)


async def ask_new(world: World, sid: uuid.UUID, fact: Fact, out: Series, *, score: bool) -> None:
    """The product's path: ``prepare_turn`` (timed), then the offline reply through ``run_turn``."""
    store = world.container.store
    turn = await asyncio.to_thread(
        timed, out, world.server, new_prepare_turn, store, world.deps, world.question(sid, fact)
    )
    if not score:
        return
    home = video_id(fact.video)
    out.in_prompt.append(
        any(s.video_id == home and any(fact.line in w.text for w in s.windows) for s in turn.sources)
    )
    out.windows.append(sum(len(s.windows) for s in turn.sources))
    count(out.modes, "retrieved" if RETRIEVED_NOTE in turn.request.system[0].text else "full")
    events: list[StreamEvent] = []
    result = await run_turn(store, world.model, turn, events.append)
    citations = [e.data for e in events if e.type == "citation"]  # what the person is shown
    out.cited.append(any(fact_cited(fact, turn.sources, d) for d in world.model.citations))
    out.citations.append(len(citations))
    out.dropped.append(len(world.model.citations) - len(citations))
    if not out.cited[-1]:
        where = [f"{c['video_id']}@{timestamp(c['start'])}" for c in citations]
        out.misses.append(
            f"{fact.question!r} (fact: {home}@{timestamp(fact.start)}, in prompt: {out.in_prompt[-1]}, "
            f"cited: {', '.join(where) or 'nothing'})"
        )
    out.quoted.append(fact.line in " ".join(result.text.split()))
    out.tokens.append(world.model.usage[-1].input_tokens)


async def ask_old(world: World, sid: uuid.UUID, fact: Fact, out: Series, *, score: bool) -> None:
    """The baseline: the old build (timed), then the offline model's reply to that request."""
    request = await asyncio.to_thread(
        timed,
        out,
        world.server,
        old_prepare_turn,
        world.container.store,
        world.deps,
        world.question(sid, fact),
    )
    if not score:
        return
    sent = prompt_text(request)
    out.in_prompt.append(fact.line in sent)
    count(out.modes, "truncated" if "[transcript truncated" in sent else "whole")
    reply: list[str] = []
    async with contextlib.aclosing(world.model.stream(request)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                reply.append(event.text)
    out.quoted.append(fact.line in " ".join("".join(reply).split()))
    out.tokens.append(world.model.usage[-1].input_tokens)


def count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def new_session(container: Container, user: AuthUser, ids: Sequence[str]) -> uuid.UUID:
    """A fresh session with every video linked: setup, not measured."""
    with container.store.transaction() as repo:
        sid = repo.add_session(user.id, "bench").id
        for vid in ids:
            repo.link_video(sid, vid, None)
        return sid


async def measure(world: World, corpus: Corpus, args: argparse.Namespace) -> dict[str, Series]:
    """Every question both ways, interleaved; scored on the first round, timed on every round."""
    paths = {"old": Series(), "new": Series()}
    asks = {"old": ask_old, "new": ask_new}
    warm = corpus.facts[: args.warmup]
    schedule = [(f, False) for f in warm] + [(f, r == 0) for r in range(args.rounds) for f in corpus.facts]
    for n, (fact, score) in enumerate(schedule):
        order = ("old", "new") if n % 2 == 0 else ("new", "old")  # alternate, so drift hits both
        for name in order:
            sid = await asyncio.to_thread(new_session, world.container, world.user, corpus.video_ids)
            out = paths[name] if n >= len(warm) else Series()  # the warm-up is not counted
            await asks[name](world, sid, fact, out, score=score)
    return paths


def run(
    kind: str, url: str, server: int | None, corpus: Corpus, args: argparse.Namespace
) -> dict[str, Series]:
    settings = test_settings(url, **lifted_limits())
    container = Container(settings, queue=RecordingQueue())
    try:
        began = time.monotonic()
        store_corpus(container, corpus)
        print(
            f"  {kind}: stored {len(corpus.segments)} videos in {time.monotonic() - began:.1f} s", flush=True
        )
        model = CountingModel()
        deps = ContextDeps(settings=settings, model=model, max_tokens=settings.chat_max_tokens)
        world = World(container, deps, model, make_user(container)[0], server)
        result = asyncio.run(measure(world, corpus, args))
    finally:
        container.engine.dispose()
    print(f"  {kind}: done", flush=True)
    return result


def share(values: list[bool]) -> str:
    return f"{100 * sum(values) / len(values):.1f} % ({sum(values)}/{len(values)})" if values else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=60, help="length of each video")
    parser.add_argument("--questions", type=int, default=40, help="planted facts, one question each")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions (timings)")
    parser.add_argument("--warmup", type=int, default=5, help="questions asked first, not counted")
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="10 videos x 60 min, 20 questions, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.videos, args.minutes, args.questions, args.rounds, args.warmup = 10, 60, 20, 1, 2

    print(f"machine: {machine()}")
    corpus = make_corpus(args.videos, args.minutes, args.questions, args.seed)
    model = OfflineChatModel()
    chars = sum(len(w.text) for segs in corpus.segments for w in transcript_windows(segs))
    lines = sum(len(s) for s in corpus.segments)
    print(
        f"corpus: {args.videos} videos x {args.minutes:g} min, {lines} caption lines, "
        f"{sum(model.count_tokens(s['text']) for segs in corpus.segments for s in segs)} tokens of speech "
        f"({chars // 4} as windows, overlaps included), {len(corpus.facts)} planted facts, seed {args.seed}"
    )
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgres" in kinds and not postgres_available():
        print("(PostgreSQL skipped: server binaries not installed)")
        kinds.remove("postgres")
    results: dict[str, dict[str, Series]] = {}
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp, database(kind, tmp) as (url, pg):
            results[kind] = run(kind, url, pg, corpus, args)

    rows: list[list[object]] = []
    for kind, paths in results.items():
        old_p50 = percentile(paths["old"].build, 50)
        for name, label in (("old", "old: whole or truncated"), ("new", "new: windows / retrieval")):
            p = paths[name]
            rows.append(
                [
                    kind,
                    label,
                    ", ".join(f"{k} {v}" for k, v in sorted(p.modes.items())),
                    share(p.in_prompt),
                    share(p.cited) if p.cited else "n/a (no documents)",
                    share(p.quoted),
                    f"{percentile([float(t) for t in p.tokens], 50):,.0f}",
                    f"{max(p.tokens):,}" if p.tokens else "n/a",
                    fmt(percentile(p.build, 50) * 1000, 1),
                    fmt(percentile(p.build, 95) * 1000, 1),
                    f"{percentile(p.build, 50) / old_p50:.2f}x",
                    fmt(percentile(p.build_cpu, 50) * 1000, 1),
                    fmt(statistics.fmean(p.server_cpu) * 1000, 1) if p.server_cpu else "",
                ]
            )
    print(
        table(
            f"{len(corpus.facts)} questions over {args.videos} videos x {args.minutes:g} min; build "
            f"times over {args.rounds} round(s) ({args.rounds * len(corpus.facts)} builds per path and db)",
            [
                "db",
                "context",
                "prompts",
                "recall (fact in prompt)",
                "citation accuracy",
                "reply quotes fact",
                "input tokens p50",
                "max",
                "build p50 ms",
                "build p95 ms",
                "p50 ratio",
                "our CPU p50 ms",
                "PostgreSQL CPU mean ms",
            ],
            rows,
        )
    )
    for kind, paths in results.items():
        new = paths["new"]
        if new.windows:
            print(
                f"{kind}: new prompts hold {percentile([float(w) for w in new.windows], 50):.0f} windows "
                "(p50), "
                f"{sum(new.citations) / len(new.citations):.1f} citations per reply shown, "
                f"{sum(new.dropped)} dropped in all"
            )
        for miss in new.misses:
            print(f"  {kind}: not cited: {miss}")
    print(
        "\nrecall: the fact's caption line is in the request. citation accuracy: a citation of the reply "
        "maps (services.sources.cite) to the fact's video and a window holding its line.\n"
        "input tokens: the offline model's count (~4 chars/token) of the whole request. build: prepare_turn "
        "(new) or the old steps reimplemented here (old), each in its own transaction;\nour CPU: the "
        "building thread's; PostgreSQL CPU: its process tree's during the build (10 ms ticks, so a mean)."
    )


if __name__ == "__main__":
    main()
