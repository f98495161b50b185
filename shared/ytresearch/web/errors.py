"""One error format everywhere: {"error": {"code", "message", "details"}}, mapped in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ytresearch.errors import (
    AppError,
    ConflictError,
    DependencyUnavailableError,
    GoneError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    UnauthorizedError,
)

log = logging.getLogger("ytresearch.web")

STATUS_BY_ERROR: list[tuple[type[AppError], int]] = [
    (InvalidInputError, 400),
    (UnauthorizedError, 401),
    (NotFoundError, 404),
    (ConflictError, 409),
    (GoneError, 410),
    (PayloadTooLargeError, 413),
    (RateLimitedError, 429),
    (DependencyUnavailableError, 503),
]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    error: ErrorBody


def status_for(exc: AppError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    # Port-level errors (transcript, model) that escape to a route: the dependency failed.
    return 503 if exc.retryable else 500


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


def app_error_response(exc: AppError) -> JSONResponse:
    status = status_for(exc)
    headers = None
    if isinstance(exc, RateLimitedError):
        headers = {"Retry-After": str(exc.retry_after)}
    elif status == 503 and isinstance(exc.details.get("retry_after"), int):
        headers = {"Retry-After": str(exc.details["retry_after"])}  # e.g. an open circuit breaker
    if status >= 500:
        log.warning("request failed with %s: %s", exc.code, exc.message)
    return error_response(status, exc.code, exc.message, exc.details, headers)


def _validation_details(exc: RequestValidationError) -> tuple[str, str, dict[str, Any]]:
    problems = []
    code = "VALIDATION_ERROR"
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            code = "INVALID_JSON"
        elif loc and loc[0] == "path" and code == "VALIDATION_ERROR":
            code = "INVALID_ID"
        field = ".".join(loc[1:]) if len(loc) > 1 else ".".join(loc)
        problems.append({"field": field, "location": loc[0] if loc else None, "message": err["msg"]})
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    message = {
        "INVALID_JSON": "request body is not valid JSON",
        "INVALID_ID": f"malformed id in the path ({first['field']}): {first['message']}",
    }.get(code, f"{first['field'] or 'request'}: {first['message']}")
    return code, message, {"errors": problems}


def install_error_handlers(app: FastAPI) -> None:
    document_validation_errors(app)

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return app_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        code, message, details = _validation_details(exc)
        return error_response(400, code, message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "NOT_FOUND", f"no route for {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error_response(
                405,
                "METHOD_NOT_ALLOWED",
                f"{request.method} is not allowed on {request.url.path}",
                headers=dict(exc.headers or {}),
            )
        if exc.status_code == 400:  # FastAPI could not read the body at all (bad encoding, too deep)
            return error_response(400, "INVALID_BODY", "the request body could not be parsed")
        return error_response(exc.status_code, "HTTP_ERROR", str(exc.detail))


RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 401, 404, 409, 413, 429, 500, 503)
}
ERROR_RESPONSES[429]["headers"] = RETRY_AFTER_HEADER


def document_validation_errors(app: FastAPI) -> None:
    """FastAPI documents a 422 with its own body on every route that takes input, but validation
    errors are answered 400 in our format (documented through ERROR_RESPONSES): drop the 422s."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = app.openapi_schema
        if schema is None:
            schema = build()  # cached by FastAPI in app.openapi_schema: edited once
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    if isinstance(operation, dict):
                        operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
