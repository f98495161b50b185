"""The all-in-one server (`python -m streaming_service.local`) as a process on loopback: REST routes
(sessions, videos, history, DELETE) and streaming routes (SSE, WebSocket) in one uvicorn, with the
embedded ingest queue, against whatever database ``YTR_DATABASE_URL`` names.

The production entry point (`streaming_service.serve`, which ``ServiceProcess`` runs) serves only
the streaming routes; tests that delete sessions or videos over HTTP while replies stream need
both in one process. Everything else (logs, health wait, stop, kill -9) is ``ServiceProcess``'s.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import ServiceProcess


class LocalServiceProcess(ServiceProcess):
    module = "streaming_service.local"

    def start(self, wait: bool = True, timeout: float = 90.0) -> LocalServiceProcess:
        """Start the process; with ``wait``, until /health answers 200 (``timeout`` is generous:
        on a busy two-core machine the start-up alone has taken 15 s)."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child has its own copy of the descriptor
        if wait:
            self.wait_healthy(timeout)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
