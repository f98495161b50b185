"""Cold start of the CRUD Lambda: import + first invocation, in many fresh processes, as a ratio
against a bare FastAPI + Mangum hello world measured in the same run. Target: at most 1.5x.

Run: .venv/bin/python -m bench.lambda_cold_start [runs]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import summary_ms, table

EVENT = Path(__file__).parent.parent / "tests" / "fixtures" / "events" / "apigw_v2_get_sessions.json"

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import importlib
module = importlib.import_module(sys.argv[1])
t1 = time.perf_counter()
event = json.load(open(sys.argv[2]))
event["rawPath"] = event["requestContext"]["http"]["path"] = sys.argv[3]
event["headers"]["x-api-key"] = sys.argv[4]
class Ctx:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "r"; function_version = "1"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 30000
response = module.handler(event, Ctx())
t2 = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "total": t2 - t0}))
"""


def measure(module: str, path: str, key: str, env: dict[str, str], runs: int) -> list[dict[str, float]]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, module, str(EVENT), path, key],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        # The handler may log to stdout too (JSON lines, EMF metrics): the probe's line is the last.
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        env = {
            **os.environ,
            "YTR_DATABASE_URL": db,
            "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        setup = subprocess.run(
            [
                sys.executable,
                "-c",
                "from ytresearch.db.migrations import upgrade_to_head;"
                "from ytresearch.bootstrap import Container;"
                "from ytresearch.services.users import create_user; upgrade_to_head();"
                "print(create_user(Container().store, 'bench@example.com')[1])",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        key = setup.stdout.strip()
        ours: list[dict[str, float]] = []
        base: list[dict[str, float]] = []
        for _ in range(runs):  # interleave, so machine noise hits both alike
            base += measure("bench.baseline_hello", "/health", key, env, 1)
            ours += measure("functions.api.handler", "/v1/sessions", key, env, 1)
    rows = []
    for label, data in (("bare FastAPI+Mangum", base), ("CRUD handler (GET /v1/sessions)", ours)):
        s = {k: summary_ms([d[k] for d in data]) for k in ("import", "first", "total")}
        rows.append(
            [
                label,
                f"{s['import']['p50']:.0f}",
                f"{s['first']['p50']:.0f}",
                f"{s['total']['p50']:.0f}",
                f"{s['total']['p99']:.0f}",
            ]
        )
    ratio = summary_ms([d["total"] for d in ours])["p50"] / summary_ms([d["total"] for d in base])["p50"]
    print(
        table(
            f"Lambda cold start, {runs} fresh processes each (ms)",
            ["handler", "import p50", "first call p50", "total p50", "total p99"],
            rows,
        )
    )
    print(f"\nratio (p50 total, ours / bare): {ratio:.2f}x   target <= 1.5x")


if __name__ == "__main__":
    main()
