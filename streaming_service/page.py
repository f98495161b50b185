"""The browser page at `/`: plain HTML and JavaScript, served with strict security headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    # Only our own script and style; no inline code, no framing, no plugins.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https://i.ytimg.com data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FILES = {"": "index.html", "app.js": "app.js", "styles.css": "styles.css"}


@router.get("/")
def index() -> FileResponse:
    return _file("")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    return _file(name)


def _file(name: str) -> FileResponse:
    if name not in FILES or not (STATIC / FILES[name]).is_file():
        raise HTTPException(status_code=404)
    return FileResponse(STATIC / FILES[name], headers=SECURITY_HEADERS)
