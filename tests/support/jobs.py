"""Waiting on an ingest job through the API."""

from __future__ import annotations

import time
from typing import Any

import httpx


def wait_for_job(
    api: httpx.Client, job_id: str, timeout: float = 30, interval: float = 0.05
) -> dict[str, Any]:
    """GET the job every ``interval`` seconds until it is done or failed; fails the test after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(interval)
    raise AssertionError("job did not finish")
