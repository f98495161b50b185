"""The browser page at `/`: plain HTML and JavaScript modules (no build step), served with strict
security headers, and the little it needs to know to sign people in (`/page-config.json`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, JSONResponse

from ytresearch.config import Settings
from ytresearch.web.auth import ContainerDep

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"

# The page's files: index.html at `/`, the rest under /static/. The JavaScript is ES modules
# (app.js imports the others), which `script-src 'self'` allows like any script of this origin.
FILES = {
    "": "index.html",
    "styles.css": "styles.css",
    "app.js": "app.js",
    "auth.js": "auth.js",
    "chat.js": "chat.js",
    "citations.js": "citations.js",
    "core.js": "core.js",
    "dom.js": "dom.js",
    "markdown.js": "markdown.js",
    "panels.js": "panels.js",
    "sse.js": "sse.js",
}
MEDIA_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
LOCAL_KEY_FILE = ".ytr/dev_api_key"  # where `make run` keeps the local user's key (local_run.app)


def security_headers(settings: Settings) -> dict[str, str]:
    # Only our own script and style; no inline code, no framing, no plugins. The page may talk to
    # its own origin (REST, SSE, WebSocket) and, when Cognito sign-in is on, to the hosted UI's
    # token endpoint (the authorization-code exchange and refreshes).
    connect = "'self' ws: wss:"
    if cognito_page_config(settings) is not None:
        connect += f" {settings.cognito_hosted_ui_url}"
    return {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' https://i.ytimg.com data:; "
            f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
            "object-src 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def cognito_page_config(settings: Settings) -> dict[str, str] | None:
    """What the page needs for the hosted UI's authorization-code flow with PKCE; None unless
    bearer tokens are accepted and the hosted UI is known."""
    if not settings.token_auth_enabled or not settings.cognito_hosted_ui_url:
        return None
    return {
        "hosted_ui_url": settings.cognito_hosted_ui_url,
        "client_id": str(settings.cognito_client_id),
        "scope": f"openid email {settings.cognito_scope}",
    }


@router.get("/")
def index(c: ContainerDep) -> FileResponse:
    return _file("", c.settings)


@router.get("/static/{name}")
def static(name: str, c: ContainerDep) -> FileResponse:
    return _file(name, c.settings)


@router.get("/page-config.json")
def page_config(c: ContainerDep) -> JSONResponse:
    """How people sign in here: an API key (and where a local one is kept), and Cognito's hosted
    UI when this deployment has it. Public, like the page: it holds no secret."""
    settings = c.settings
    body: dict[str, Any] = {
        "local": settings.environment in ("local", "test"),
        "key_file": LOCAL_KEY_FILE,
        "cognito": cognito_page_config(settings),
    }
    return JSONResponse(body, headers=security_headers(settings))


def _file(name: str, settings: Settings) -> FileResponse:
    if name not in FILES or not (STATIC / FILES[name]).is_file():
        raise HTTPException(status_code=404)
    path = STATIC / FILES[name]
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=security_headers(settings))
