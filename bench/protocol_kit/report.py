"""What ``bench/protocols.py`` measured, and its report: tables of per-reply figures at each level,
the dropped-connection outcomes, memory per open conversation and lines of code per path (the
tables docs/protocols.md shows), and the raw figures for ``--json``."""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.common import fmt, percentile, table
from bench.protocol_kit import loc
from bench.protocol_kit.drivers import Outcome
from bench.protocol_kit.proxy import Traffic
from ytr.timings import tokens_per_second

HOW_BACK = {
    "sync": "none: the request fails; the history is read every 250 ms until the reply is there",
    "poll": "the next poll (on a new connection)",
    "sse": "GET the stream again after the server's retry: delay, with Last-Event-ID",
    "sse-1step": "GET /v1/streams/{id} (named by the first event) after retry:, with Last-Event-ID",
    "ws": "the CLI's and the page's way: the rest over SSE at once, from the last frame's id",
    "ws-resume": "the protocol's own way: a new socket and a resume frame (no client of ours does it)",
}


@dataclass
class Level:
    outcomes: list[Outcome] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0
    traffic: Traffic = field(default_factory=Traffic)
    driver_cpu: float = 0.0  # this process: the clients and the proxy

    @property
    def done(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.ok]


@dataclass
class Measured:
    levels: dict[tuple[str, int], Level] = field(default_factory=dict)
    drops: dict[str, list[Outcome]] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    idle_cpu_rate: float = 0.0


def pct(values: list[float], scale: float, digits: int) -> str:
    return " / ".join(fmt(percentile(values, p) * scale, digits) for p in (50, 95, 99))


def report(args: argparse.Namespace, m: Measured, tokens: int) -> str:
    rows = []
    for (name, n), lv in m.levels.items():
        done, replies = lv.done, max(1, len(lv.outcomes))
        firsts = [o.first_text for o in done if o.first_text is not None]
        totals = [o.total for o in done if o.total is not None]
        rates = [tokens_per_second(tokens, t) or 0.0 for t in totals]
        errors = len(lv.outcomes) - len(done)
        rows.append(
            [
                name,
                n,
                f"{len(done)}/{len(lv.outcomes)}" + (f" ({errors} failed)" if errors else ""),
                pct(firsts, 1000, 0),
                pct(totals, 1, 2),
                fmt(percentile(rates, 50), 1),
                fmt(lv.cpu / replies * 1000, 1),
                f"{lv.traffic.up / replies / 1024:.1f} / {lv.traffic.down / replies / 1024:.1f}",
                fmt(statistics.fmean(o.requests for o in lv.outcomes), 1),
                fmt(lv.traffic.connections / replies, 1),
                fmt(lv.driver_cpu / replies * 1000, 1),
            ]
        )
    out = [
        table(
            f"Per reply ({tokens} tokens, {args.chunks} deltas of {args.chunk_size} chars at {args.rate:g}/s,"
            f" first after {args.first_delay * 1000:.0f} ms;"
            f" server idle CPU {m.idle_cpu_rate * 1000:.0f} ms/s subtracted)",
            [
                "transport",
                "conversations",
                "ok",
                "first text ms p50 / p95 / p99",
                "total s p50 / p95 / p99",
                "tokens/s p50",
                "server CPU ms",
                "KB up / down",
                "requests",
                "connections",
                "client+proxy CPU ms",
            ],
            rows,
        )
    ]
    drop_rows: list[list[object]] = []
    for name, outcomes in m.drops.items():
        cut = [o for o in outcomes if o.cut_at is not None]
        kept = [o for o in cut if o.ok]
        rest = [o.rest_after for o in kept if o.rest_after is not None]
        blind = [o.blind for o in kept if o.blind is not None]
        uncut = m.levels.get((name.removesuffix("-resume"), 1))
        normal = percentile([o.total for o in uncut.done if o.total], 50) if uncut else math.nan
        added = [o.total - normal for o in kept if o.total is not None]
        after = [o.requests - o.requests_at_cut for o in cut]
        problems = sorted({o.error for o in outcomes if o.error})
        missed = len(outcomes) - len(cut)  # ended before the cut was due
        drop_rows.append(
            [
                name,
                f"{len(kept)}/{len(cut)}"
                + (f", {missed} not cut" if missed else "")
                + (f" ({'; '.join(str(p) for p in problems)})" if problems else ""),
                fmt(statistics.median(blind) * 1000 if blind else math.nan, 0),
                fmt(statistics.median(rest) if rest else math.nan, 2),
                fmt(statistics.median(added) if added else math.nan, 2),
                fmt(statistics.fmean(after) if after else math.nan, 1),
                HOW_BACK.get(name, HOW_BACK["poll"]),
            ]
        )
    out.append(
        table(
            "A connection cut half-way through a reply (one at a time; medians)",
            [
                "transport",
                "reply kept",
                "cut -> next text ms",
                "cut -> whole reply s",
                "total vs uncut s",
                "requests after the cut",
                "how",
            ],
            drop_rows,
        )
    )
    if m.memory:
        mem_rows: list[list[object]] = [
            [name, fmt(v["opened"], 0), fmt(v["kb"], 0), fmt(v["fds"], 1), fmt(v["rss_mb"], 0)]
            for name, v in m.memory.items()
        ]
        out.append(
            table(
                f"Server memory per open conversation (a fresh server each; {args.mem_streams} open"
                " against a tenth of them)",
                ["transport", "open", "KB per conversation", "fds per conversation", "RSS with all open MB"],
                mem_rows,
            )
        )
    out.append(
        table(
            "Lines of code per path (not blank, comment or docstring; bench/protocol_kit/loc.py lists"
            " the pieces)",
            ["path", "server", "client (ytr)"],
            loc.table_rows(),
        )
    )
    return "\n".join(out)


def raw(m: Measured) -> dict[str, Any]:
    def outcome(o: Outcome) -> dict[str, Any]:
        keep = (
            "transport",
            "first_text",
            "total",
            "requests",
            "error",
            "rest_after",
            "requests_at_cut",
            "blind",
        )
        return {k: getattr(o, k) for k in keep}

    return {
        "idle_cpu_rate": m.idle_cpu_rate,
        "levels": [
            {
                "transport": name,
                "conversations": n,
                "cpu": lv.cpu,
                "wall": lv.wall,
                "driver_cpu": lv.driver_cpu,
                "up": lv.traffic.up,
                "down": lv.traffic.down,
                "connections": lv.traffic.connections,
                "replies": [outcome(o) for o in lv.outcomes],
            }
            for (name, n), lv in m.levels.items()
        ],
        "drops": {name: [outcome(o) for o in outcomes] for name, outcomes in m.drops.items()},
        "memory": m.memory,
    }
