"""A requests Session with a default timeout, for youtube-transcript-api.

Imported lazily by the transcript adapter only (requests is heavy for the CRUD Lambda).
"""

from __future__ import annotations

from typing import Any

import requests


class TimeoutSession(requests.Session):
    """requests has no session-wide timeout and the library passes none, so a stalled YouTube
    or proxy connection would hang an ingest worker until the Lambda timeout. Setting it in
    ``request`` (not on an adapter) survives the library mounting its own retrying adapters."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, *args, **kwargs)
