"""What a run measured and the figures drawn from it: each follower's events, each chat, one level
of concurrent streams over its steady window (lags, rows per second), the database's counters, and
the verdict of the ``--find-max`` search."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from dataclasses import dataclass, field

from bench.common import percentile
from bench.scale_kit.design import Design
from tests.support.postgres import PostgresServer


class Stats:
    """Counters of one design's database, read from the driver (pg8000, autocommit)."""

    def __init__(self, pg: PostgresServer, dbname: str) -> None:
        import pg8000.native

        self.conn = pg8000.native.Connection("postgres", host="127.0.0.1", port=pg.port, database=dbname)

    def snapshot(self) -> dict[str, float]:
        self.conn.run("SELECT pg_stat_clear_snapshot()")
        inserted = self.conn.run("SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'chat_events'")
        ((xacts, conns),) = self.conn.run(
            "SELECT xact_commit + xact_rollback, numbackends FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return {
            "inserted": float(inserted[0][0] if inserted else 0),
            "xacts": float(xacts),
            "conns": float(conns),
        }

    def rows_by_request(self, request_ids: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for start in range(0, len(request_ids), 1000):
            found = self.conn.run(
                "SELECT request_id::text, type, count(*) FROM chat_events"
                " WHERE request_id = ANY(CAST(:ids AS uuid[])) GROUP BY 1, 2",
                ids=request_ids[start : start + 1000],
            )
            for rid, kind, count in found:
                out.setdefault(rid, {})[kind] = int(count)
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


@dataclass
class Follow:
    """One follower's view of a stream: (arrival, event id, type, text received so far) per event."""

    events: list[tuple[float, int | None, str, int]] = field(default_factory=list)
    text: str | None = None  # the complete event's text
    end: float | None = None
    error: str | None = None

    def first(self, kind: str) -> float | None:
        return next((at for at, _, k, _ in self.events if k == kind), None)


@dataclass
class Chat:
    owner: int
    cross: int
    start: float
    request_id: str | None = None
    error: str | None = None
    owner_f: Follow = field(default_factory=Follow)
    cross_f: Follow = field(default_factory=Follow)

    @property
    def end(self) -> float:
        ends = [f.end for f in (self.owner_f, self.cross_f) if f.end is not None]
        last = [f.events[-1][0] for f in (self.owner_f, self.cross_f) if f.events]
        return max(ends or last or [self.start])

    @property
    def ttft(self) -> float | None:
        first = self.owner_f.first("token")
        return None if first is None else first - self.start


@dataclass
class Level:
    """One measured run at ``streams`` concurrent streams."""

    streams: int
    window: tuple[float, float] = (0.0, 0.0)
    chats: list[Chat] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # over the window, seconds
    db: dict[str, float] = field(default_factory=dict)  # database counters' deltas over the window
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # request id -> type -> rows
    crashed: list[str] = field(default_factory=list)

    def in_window(self, at: float) -> bool:
        return self.window[0] <= at < self.window[1]

    @property
    def steady(self) -> list[Chat]:
        """Chats started inside the window that ended well."""
        return [c for c in self.chats if self.in_window(c.start) and not c.error]

    def stream_seconds(self) -> float:
        ws, we = self.window
        return sum(max(0.0, min(c.end, we) - max(c.start, ws)) for c in self.chats)

    @property
    def errors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.chats:
            if c.error:
                out[c.error] = out.get(c.error, 0) + 1
        for name in self.crashed:
            out[f"{name} died"] = 1
        return out

    def lags(self) -> tuple[list[float], list[float], int, int]:
        """Cross minus owner arrival (s): by event id (same type), and for text by position; the
        events matched by id and the owner's events, inside the window."""
        by_id, by_text, matched, owned = [], [], 0, 0
        for c in self.chats:
            if c.error:
                continue
            cross = {eid: (at, kind) for at, eid, kind, _ in c.cross_f.events if eid is not None}
            cross_text = [(at, n) for at, _, kind, n in c.cross_f.events if kind == "token"]
            j = 0
            for at, eid, kind, n in c.owner_f.events:
                if not self.in_window(at):
                    continue
                owned += 1
                if eid is not None and eid in cross and cross[eid][1] == kind:
                    matched += 1
                    by_id.append(cross[eid][0] - at)
                if kind == "token":
                    while j < len(cross_text) and cross_text[j][1] < n:
                        j += 1
                    if j < len(cross_text):
                        by_text.append(cross_text[j][0] - at)
        return by_id, by_text, matched, owned

    def row_figures(self) -> dict[str, float]:
        """Rows per stream-second (all rows of the steady chats over their durations) and text
        rows per streaming second (after the first token, without the non-token events' rows)."""
        rows = seconds = text_rows = text_seconds = 0.0
        counted = 0
        for c in self.steady:
            got = self.rows.get(c.request_id or "")
            first, done = c.owner_f.first("token"), c.owner_f.end
            if not got or first is None or done is None:
                continue
            counted += 1
            rows += sum(got.values())
            seconds += c.end - c.start
            other = {kind for _, _, kind, _ in c.owner_f.events if kind != "token"}
            text_rows += sum(n for kind, n in got.items() if kind not in other) - 1
            text_seconds += done - first
        return {
            "rows": rows / seconds if seconds else math.nan,
            "text rows": text_rows / text_seconds if text_seconds else math.nan,
            "rows per reply": rows / counted if counted else math.nan,
            "counted": counted,
        }


def degraded(args: argparse.Namespace, level: Level) -> str | None:
    """Why this level is past what the box sustains (None: it is not)."""
    if level.errors:
        return f"errors {json.dumps(level.errors)}"
    ttft = [c.ttft for c in level.steady if c.ttft is not None]
    if percentile(ttft, 99) * 1000 > args.max_first_token:
        return f"first token p99 {percentile(ttft, 99) * 1000:.0f} ms"
    by_id, by_text, _, _ = level.lags()
    lag99 = percentile(by_id or by_text, 99) * 1000
    if lag99 > args.max_lag:
        return f"cross lag p99 {lag99:.0f} ms"
    reply = args.deltas / args.rate
    took = percentile([(c.owner_f.end or c.start) - c.start for c in level.steady], 50)
    if took > reply * 1.25:
        return f"replies take {took:.1f} s at p50 (of {reply:g})"
    if not level.steady:
        return "no chat in the window"
    return None


@dataclass
class Result:
    design: Design
    main: Level
    found: list[tuple[Level, str | None]] = field(default_factory=list)

    def limits(self) -> tuple[int, int | None]:
        """The most streams that held below the fewest that did not (0: none held), and those."""
        broke = [lv.streams for lv, why in self.found if why is not None]
        first = min(broke) if broke else None
        held = [lv.streams for lv, why in self.found if why is None and (first is None or lv.streams < first)]
        return max(held, default=0), first


def figures(level: Level) -> dict[str, float]:
    ss = level.stream_seconds()
    by_id, by_text, matched, owned = level.lags()
    ttft = [c.ttft for c in level.steady if c.ttft is not None]
    rows = level.row_figures()
    return {
        "stream-seconds": ss,
        "rows": rows["rows"],
        "text rows": rows["text rows"],
        "rows per reply": rows["rows per reply"],
        "inserted": level.db.get("inserted", math.nan) / ss if ss else math.nan,
        "xacts": level.db.get("xacts", math.nan) / ss if ss else math.nan,
        "pg": level.cpu["postgres"] / ss * 1000 if ss else math.nan,
        "server": level.cpu["servers"] / ss * 1000 if ss else math.nan,
        "lag50": percentile(by_id, 50) * 1000,
        "lag99": percentile(by_id, 99) * 1000,
        "text lag50": percentile(by_text, 50) * 1000,
        "text lag99": percentile(by_text, 99) * 1000,
        "matched": matched / owned if owned else math.nan,
        "ttft50": percentile(ttft, 50) * 1000,
        "ttft99": percentile(ttft, 99) * 1000,
        "errors": float(sum(level.errors.values())),
    }
