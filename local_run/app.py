"""`make run`: the whole system on one machine with no cloud account.

The one place that composes both deployables: the streaming service's app with the REST routes of
the API function mounted on it, and the ingest function's handler fed by the embedded queue.

SQLite, the embedded queue feeding the real ingest handler, the REST and streaming routes at one
address, the offline model unless ANTHROPIC_API_KEY is set, and the bundled sample transcripts
unless YTR_TRANSCRIPT_SOURCE=youtube.

Logs (JSON lines, with EMF metrics among them) go to stdout, as in the cloud; the start-up banner
with the local API key is for the person at the terminal and goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from functions.api.routes import router as rest_router
from functions.ingest.handler import make_handler
from streaming_service.app import create_app
from ytresearch.bootstrap import Container
from ytresearch.config import load_settings
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.observability.logs import configure_service_logging
from ytresearch.queues import EmbeddedJobQueue
from ytresearch.security import generate_api_key
from ytresearch.services.users import ensure_user_with_key

DEV_EMAIL = "dev@localhost.localdomain"
KEY_FILE = Path(".ytr/dev_api_key")


def dev_api_key(configured: str | None) -> str:
    """YTR_DEV_API_KEY if set; else a key generated once and kept in .ytr/dev_api_key."""
    if configured:
        return configured
    if KEY_FILE.exists():
        return KEY_FILE.read_text().strip()
    key = generate_api_key()
    KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    KEY_FILE.write_text(key + "\n")
    KEY_FILE.chmod(0o600)
    return key


def create_local_app(container: Container) -> FastAPI:
    """The streaming app with the REST routes mounted: every route at one address."""
    return create_app(container, extra_routers=(rest_router,))


def build_local_app(container: Container) -> tuple[FastAPI, EmbeddedJobQueue]:
    """The all-in-one app and the embedded queue that feeds the real ingest handler."""
    queue = EmbeddedJobQueue(make_handler(container), max_receives=container.settings.ingest_max_receives)
    container.__dict__["queue"] = queue
    return create_local_app(container), queue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the YouTube Research Tool locally.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    configure_service_logging()
    os.environ.setdefault("YTR_TRANSCRIPT_SOURCE", "samples")
    settings = load_settings(queue_backend="embedded")
    container = Container(settings)
    upgrade_to_head(settings, container.engine)
    key = dev_api_key(settings.dev_api_key.get_secret_value() if settings.dev_api_key else None)
    ensure_user_with_key(container.store, DEV_EMAIL, key)
    app, queue = build_local_app(container)
    queue.start()

    base = f"http://{args.host}:{args.port}"
    model = (
        "offline model (set ANTHROPIC_API_KEY for Claude)"
        if settings.use_offline_model
        else f"Claude ({settings.model})"
    )
    print(
        f"\nYouTube Research Tool running at {base}\n"
        f"  database:    {settings.database_url}\n"
        f"  model:       {model}\n"
        f"  transcripts: {settings.transcript_source}\n"
        f"  API key:     {key}\n"
        f"Try:  curl -H 'X-API-Key: {key}' -X POST {base}/v1/sessions\n"
        f"ytr from any folder (from this one it finds the key by itself):\n"
        f"  export YTR_API_URL={base} YTR_STREAM_URL={base}\n"
        f"  export YTR_API_KEY={key}\n",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level="info",
            log_config=None,  # uvicorn's loggers go through ours (JSON)
            access_log=False,  # the request middleware logs each request, with its request id
            timeout_graceful_shutdown=10,
        )
    finally:
        queue.stop()
    return 0
