"""Agent tool rounds: the latency one tool round adds to a reply, from the end of the model's
response that asks for a tool (stop_reason "tool_use") to the start of the next model request.

Everything runs in this process: the fake Anthropic server (tests/fakes/anthropic_server.py, a
thread) and the research agent's real path, ``run_turn(..., agent=Agent.for_turn(...))``, on the
real Claude adapter (real SDK) pointed at the fake, on a migrated database with the bundled samples
ingested (their transcripts, ``SampleTranscriptSource``) and the samples' catalog for discovery
(``SampleCatalogDiscovery``). Each turn gets a fresh session with the 5 sample videos linked, so
every prompt is the same size. One monotonic clock serves all: the end of a response is when its
``StreamFinished`` reaches the reader (a wrapper around the ChatModel port's ``stream()``); the
start of the next request is when the fake received it (``requests[i].received_at``).

Ours: a turn whose first response is text then one ``list_videos`` (or ``search_youtube``) call,
the second a short answer. The gap covers our loop: the tool (parse, execute, the action row), the
tool_call/tool_result events, building the next request, and the adapter, SDK and HTTP sending it.
Baseline, interleaved turn by turn: the same two requests (the very ``ModelRequest`` objects the
agent sent) streamed back to back through the same adapter and wrapper, with nothing in between:
a bare second request. We print both, ours minus the baseline, and the ratio; "to tool_result" is
from the end of the response to the tool_result event (the tool and its action row).

Run: .venv/bin/python -m bench.agent_rounds [--rounds 200] [--warmup 20] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from bench.common import database, fmt, lifted_limits, machine, percentile, postgres_available, table
from tests.fakes.anthropic_server import DEFAULT_API_KEY, FakeAnthropic, Reply, ToolCall
from tests.support.queue import RecordingQueue
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.config import DEFAULT_MODEL
from ytresearch.events import StreamEvent
from ytresearch.llm import AnthropicChatModel, OfflineChatModel
from ytresearch.ports import Completion, ModelEvent, ModelRequest, StreamFinished
from ytresearch.services import videos as video_service
from ytresearch.services.agent.calls import AgentDeps
from ytresearch.services.agent.loop import Agent
from ytresearch.services.chat import run_turn
from ytresearch.services.context import ChatQuestion, ContextDeps, prepare_turn
from ytresearch.services.ingest import IngestDeps, ingest_video
from ytresearch.services.users import AuthUser
from ytresearch.youtube import (
    NullMetadataSource,
    SampleCatalogDiscovery,
    SampleTranscriptSource,
    default_samples_dir,
)

SAMPLES = ("SoLarP4nels", "vacc1neImmu", "PrintPr3ss1", "s0urd0ughBr", "xssT3stVid0")
TOOLS: dict[str, dict[str, Any]] = {
    "list_videos": {},
    "search_youtube": {"query": "history of bread and printing", "max_results": 5},
}
QUESTION = "Which of these videos explain how something works?"


class TimedModel:
    """The ChatModel port around the real adapter: notes each request and when its
    ``StreamFinished`` reached the reader (the end of that model response)."""

    def __init__(self, inner: AnthropicChatModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.requests: list[ModelRequest] = []
        self.finished: list[float] = []

    async def stream(self, request: ModelRequest) -> AsyncGenerator[ModelEvent]:
        self.requests.append(request)
        async with contextlib.aclosing(self.inner.stream(request)) as events:
            async for event in events:
                if isinstance(event, StreamFinished):
                    self.finished.append(time.monotonic())
                yield event

    async def complete(self, request: ModelRequest) -> Completion:
        return await self.inner.complete(request)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


@dataclass
class World:
    container: Container
    user: AuthUser
    deps: AgentDeps
    model: TimedModel
    fake: FakeAnthropic


@dataclass
class Series:
    ours: list[float] = field(default_factory=list)
    to_result: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)


def replies(tool: str) -> tuple[Reply, Reply]:
    return (
        Reply(text="Let me look at the session first.", tool_calls=(ToolCall(tool, TOOLS[tool]),)),
        Reply(text="Two of them do: the solar panel and the printing press videos."),
    )


def ingest_samples(container: Container, user: AuthUser) -> None:
    """The samples ingested for real (transcripts from the bundled files): setup, not measured."""
    queue = RecordingQueue()
    with container.store.transaction() as repo:
        sid = repo.add_session(user.id, "ingest").id
    for video_id in SAMPLES:
        video_service.add_video(container.store, container.settings, queue, user, sid, video_id, None)
    deps = IngestDeps(
        container.store,
        container.settings,
        SampleTranscriptSource(),
        NullMetadataSource(),
        OfflineChatModel(),
    )
    for message in queue.sent:
        status = ingest_video(deps, message)
        if status != "done":
            raise RuntimeError(f"ingest of {message.video_id} ended {status}")


def new_session(world: World) -> uuid.UUID:
    """A session with the 5 ready samples linked: setup, not measured."""
    with world.container.store.transaction() as repo:
        sid = repo.add_session(world.user.id, "bench").id
        for video_id in SAMPLES:
            repo.link_video(sid, video_id, None)
        return sid


async def ours(world: World, tool: str) -> tuple[float, float, list[ModelRequest]]:
    """One agent turn with one tool round: (end of the tool_use response -> next request received,
    end of the tool_use response -> tool_result event, the two requests sent)."""
    sid = await asyncio.to_thread(new_session, world)
    world.fake.reset()
    world.fake.enqueue(*replies(tool))
    events: list[tuple[float, StreamEvent]] = []
    turn = await asyncio.to_thread(
        prepare_turn,
        world.container.store,
        ContextDeps(settings=world.deps.settings, model=world.model, max_tokens=1024, agent=True),
        ChatQuestion(user=world.user, session_id=sid, text=QUESTION),
    )
    sent = len(world.model.requests)
    result = await run_turn(
        world.container.store,
        world.model,
        turn,
        lambda event: events.append((time.monotonic(), event)),
        agent=Agent.for_turn(world.deps, world.user, turn),
    )
    outcome = [e.data for _, e in events if e.type == "tool_result"]
    received = world.fake.message_requests
    if result.status != "complete" or len(received) != 2 or [o["ok"] for o in outcome] != [True]:
        raise RuntimeError(f"the turn did not go as scripted: {result.status}, {outcome}")
    ended = world.model.finished[-2]
    tool_result_at = next(at for at, e in events if e.type == "tool_result")
    return received[1].received_at - ended, tool_result_at - ended, world.model.requests[sent:]


async def bare(world: World, tool: str, requests: list[ModelRequest]) -> float:
    """The same two requests back to back through the same adapter: end of the first response ->
    the second request received."""
    world.fake.reset()
    world.fake.enqueue(*replies(tool))
    for request in requests:
        async with contextlib.aclosing(world.model.stream(request)) as events:
            async for _event in events:
                pass
    received = world.fake.message_requests
    if len(received) != 2:
        raise RuntimeError(f"expected 2 requests, the fake saw {len(received)}")
    return received[1].received_at - world.model.finished[-2]


async def measure(world: World, args: argparse.Namespace) -> dict[str, Series]:
    out = {tool: Series() for tool in TOOLS}
    for i in range(args.warmup + args.rounds):  # interleaved, so noise hits every series alike
        for tool, series in out.items():
            gap, to_result, requests = await ours(world, tool)
            base = await bare(world, tool, requests)
            if i >= args.warmup:
                series.ours.append(gap)
                series.to_result.append(to_result)
                series.bare.append(base)
    await world.model.inner.aclose()
    return out


def run(kind: str, url: str, args: argparse.Namespace) -> dict[str, Series]:
    settings = test_settings(url, **lifted_limits())
    container = Container(settings, queue=RecordingQueue())
    try:
        user = make_user(container)[0]
        ingest_samples(container, user)
        with FakeAnthropic() as fake:
            adapter = AnthropicChatModel(
                api_key=DEFAULT_API_KEY, model=DEFAULT_MODEL, base_url=fake.base_url, max_retries=0
            )
            deps = AgentDeps(
                store=container.store,
                settings=settings,
                queue=container.queue,
                discovery=SampleCatalogDiscovery(default_samples_dir()),
            )
            world = World(container, user, deps, TimedModel(adapter), fake)
            result = asyncio.run(measure(world, args))
    finally:
        container.engine.dispose()
    print(f"  {kind}: done", flush=True)
    return result


def ms(values: list[float], p: float) -> float:
    return percentile(values, p) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="measured turns per tool and database")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--db", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgres" in kinds and not postgres_available():
        print("(PostgreSQL skipped: server binaries not installed)")
        kinds.remove("postgres")
    results: dict[str, dict[str, Series]] = {}
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp, database(kind, tmp) as (url, _pg):
            results[kind] = run(kind, url, args)

    rows: list[list[object]] = []
    for kind, by_tool in results.items():
        for tool, s in by_tool.items():
            for name, series in ((f"bare second request ({tool})", s.bare), (f"{tool} round", s.ours)):
                rows.append(
                    [
                        kind,
                        name,
                        fmt(ms(series, 50), 2),
                        fmt(ms(series, 99), 2),
                        fmt(ms(series, 50) - ms(s.bare, 50), 2),
                        fmt(ms(series, 99) - ms(s.bare, 99), 2),
                        f"{percentile(series, 50) / percentile(s.bare, 50):.2f}x",
                        fmt(ms(s.to_result, 50), 2) if series is s.ours else "",
                    ]
                )
    print(
        table(
            f"End of the tool_use response -> next model request received, {args.rounds} turns per "
            "tool and database (ms)",
            [
                "db",
                "path",
                "p50",
                "p99",
                "added p50",
                "added p99",
                "p50 ratio",
                "to tool_result p50",
            ],
            rows,
        )
    )
    print(
        "\n'added' is a difference of percentiles (ours minus the bare second request), not a per-turn "
        "difference.\n'to tool_result' is the part of ours spent before the tool_result event (the tool "
        "and its action row)."
    )


if __name__ == "__main__":
    main()
