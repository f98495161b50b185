"""HTTP clients for the apps under test."""

from __future__ import annotations

import httpx


def client_for(base_url: str, key: str | None) -> httpx.Client:
    """A client that sends ``key`` as the X-API-Key header (none when ``key`` is None)."""
    headers = {"X-API-Key": key} if key else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)
