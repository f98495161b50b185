"""The all-in-one server (`python -m local_run`) as a process on loopback: REST routes
(sessions, videos, history, DELETE) and streaming routes (SSE, WebSocket) in one uvicorn, with the
embedded ingest queue, against whatever database ``YTR_DATABASE_URL`` names.

The production entry point (`streaming_service.serve`, which ``ServiceProcess`` runs) serves only
the streaming routes; tests that delete sessions or videos over HTTP while replies stream need
both in one process. Everything else (logs, health wait, stop, kill -9) is ``ServiceProcess``'s.
"""

from __future__ import annotations

from tests.support.processes import ServiceProcess


class LocalServiceProcess(ServiceProcess):
    module = "local_run"

    def start(self, wait: bool = True, timeout: float = 90.0) -> LocalServiceProcess:
        """As ``ServiceProcess.start``, with a generous wait: on a busy two-core machine the
        all-in-one start-up alone has taken 15 s."""
        super().start(wait, timeout)
        return self
