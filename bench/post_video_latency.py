"""Latency of POST /v1/sessions/{id}/videos (validate, create or reuse the video row, link it,
record the job, enqueue), over real HTTP on loopback, against a bare FastAPI route that returns
202 at once, measured in the same run. Target: under 100 ms locally.

Run: .venv/bin/python -m bench.post_video_latency [requests]
"""

from __future__ import annotations

import random
import string
import sys
import tempfile
import time

import httpx
from fastapi import FastAPI

from bench.common import quiet_metrics, summary_ms, table
from functions.api.app import create_app
from tests.support.server import serve
from ytresearch.bootstrap import Container
from ytresearch.config import load_settings
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.ports import IngestMessage
from ytresearch.services.users import create_user


class DiscardQueue:
    def send(self, message: IngestMessage) -> None:
        pass


def video_id() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=11))


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/sessions/{sid}/videos", status_code=202)
    def add(sid: str, body: dict[str, str]) -> dict[str, str]:
        return {"video": body["url"]}

    return app


def timed(client: httpx.Client, path: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.post(path, json={"url": f"https://youtu.be/{video_id()}?t=10"})
        samples.append(time.perf_counter() - start)
        assert r.status_code == 202, r.text
    return samples


def run(database_url: str, n: int) -> tuple[list[float], list[float]]:
    settings = load_settings(
        database_url=database_url,
        transcript_source="samples",
        llm_provider="offline",
        max_videos_per_session=100_000,
        video_adds_per_minute=100_000,  # the benchmark is one user adding many videos at once
    )
    upgrade_to_head(settings)
    container = Container(settings, queue=DiscardQueue(), metrics=quiet_metrics())
    key = create_user(container.store, f"bench-{video_id()}@example.com")[1]
    with serve(create_app(container)) as ours, serve(bare_app()) as bare:
        with httpx.Client(base_url=ours.base_url, headers={"X-API-Key": key}) as c:
            sid = c.post("/v1/sessions").json()["id"]
            timed(c, f"/v1/sessions/{sid}/videos", 20)  # warm up
            ours_t = timed(c, f"/v1/sessions/{sid}/videos", n)
        with httpx.Client(base_url=bare.base_url) as b:
            timed(b, "/v1/sessions/x/videos", 20)
            bare_t = timed(b, "/v1/sessions/x/videos", n)
    container.engine.dispose()
    return ours_t, bare_t


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite", f"sqlite:///{tmp}/bench.db")]
        try:
            from tests.support.postgres import PostgresServer

            pg = PostgresServer().start()
            targets.append(("PostgreSQL", pg.create_database("bench")))
        except Exception as exc:  # no server binaries: report SQLite only
            pg = None
            print(f"(PostgreSQL skipped: {exc})")
        try:
            for label, url in targets:
                ours, bare = run(url, n)
                o, b = summary_ms(ours), summary_ms(bare)
                rows.append(
                    [
                        label,
                        f"{o['p50']:.1f}",
                        f"{o['p99']:.1f}",
                        f"{b['p50']:.1f}",
                        f"{b['p99']:.1f}",
                        f"{o['p50'] / b['p50']:.1f}x",
                    ]
                )
        finally:
            if pg is not None:
                pg.stop()
    print(
        table(
            f"POST /v1/sessions/{{id}}/videos over loopback, {n} requests (ms)",
            ["database", "ours p50", "ours p99", "bare p50", "bare p99", "p50 ratio"],
            rows,
        )
    )
    print("target: ours p99 < 100 ms")


if __name__ == "__main__":
    main()
