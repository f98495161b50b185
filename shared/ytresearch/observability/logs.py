"""One JSON log shape for every process, with request ids and without secrets.

The shape is Powertools' (``level``, ``location``, ``message``, ``timestamp``, ``service``, then
extra keys), produced by Powertools' own formatter on Lambda and in the streaming service alike.
Every line gets ``request_id`` while a request is handled (``request_id_var``) and ``logger``;
on Lambda, Powertools adds ``correlation_id`` and the function context. Each finished line goes
through ``redact``, which masks our API keys, JWTs, Authorization/X-API-Key values, Anthropic keys,
passwords in URLs and SQL parameters in database errors.

Where lines go: one process-wide output. On Lambda, straight to stdout (the Lambda runtime ships
it). In the streaming service, ``configure_service_logging`` switches to a writer thread behind a
bounded queue, so neither logging nor EMF metrics ever block the event loop on a slow stdout.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import re
import sys
import threading
import types
import weakref
from typing import Protocol, TextIO

from aws_lambda_powertools.logging.filters import SuppressFilter
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from ytresearch.observability.context import request_id_var, service_name, user_id_var

# Our code's logger trees (Mangum's too: it runs our requests on Lambda).
APP_LOGGERS = ("ytresearch", "functions", "streaming_service", "mangum")
# Libraries that log request bodies (prompts, transcripts) or SQL parameters at DEBUG: kept at
# WARNING even when the app runs at DEBUG, unless someone configured them explicitly.
QUIET_LOGGERS = ("anthropic", "httpcore", "botocore", "boto3", "urllib3", "sqlalchemy")
# Quiet in the streaming service only: httpx logs one INFO line per Claude call.
SERVICE_QUIET_LOGGERS = ("httpx",)

REDACTED = "***"

# ------------------------------------------------------------------------------ redaction

_SECRET_FIELD = r"(?:authorization|proxy-authorization|x-api-key|api[_-]?key|password|passwd|secret)"
_SCHEME = r"((?:bearer|basic)\s+)?"
# Every rule keeps its match inside one JSON string token (no quotes, no backslash escapes are
# consumed), so a redacted JSON line is still valid JSON with the same keys.
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # A quoted field and quoted value: "x-api-key": "...", 'authorization': 'Bearer ...', and the
    # same with escaped quotes inside a JSON string. The whole value up to its closing quote.
    (
        re.compile(
            r"(?i)(" + _SECRET_FIELD + r"\\?[\"']\s*[:=]\s*\\?[\"'])" + _SCHEME + r"(?!\*\*\*)[^\"'\\]+"
        ),
        r"\1\2" + REDACTED,
    ),
    # An unquoted field in free text: `Authorization: Bearer x`, `api_key=x`, `X-API-Key: x`.
    (
        re.compile(
            r"(?i)(?<![A-Za-z0-9_])("
            + _SECRET_FIELD
            + r"\s*[:=]\s*)"
            + _SCHEME
            + r"(?!\*\*\*)[^\s\"'\\,;})\]]+"
        ),
        r"\1\2" + REDACTED,
    ),
    # ASGI/WSGI header tuples: (b'authorization', b'...'), (b'x-api-key', b'...').
    (
        re.compile(
            r"(?i)(\(b?\\?['\"](?:proxy-)?(?:authorization|x-api-key)\\?['\"],\s*b?\\?['\"])[^'\"\\]+"
        ),
        r"\1" + REDACTED,
    ),
    # Our API keys: ytr_ + secrets.token_urlsafe(32).
    (re.compile(r"ytr_[A-Za-z0-9_-]{43}"), "ytr_" + REDACTED),
    # JWTs: three base64url segments; the header always starts with eyJ (base64 of '{"').
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Anthropic API keys.
    (re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"), "sk-ant-" + REDACTED),
    # Bearer/Basic credentials wherever else they appear.
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2" + REDACTED),
    # Passwords in URLs (postgresql://user:password@host, proxy URLs).
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s\"'@\\]+:)[^@/\s\"'\\]+@"), r"\1" + REDACTED + "@"),
    # SQL parameters in database errors: they hold what users wrote, transcripts, key digests.
    # On a finished JSON line: up to the next escaped newline (repr() never contains a raw one).
    (re.compile(r"\[parameters: (?:[^\\\"]|\\[^n])*"), "[parameters: " + REDACTED + "]"),
]


def redact(text: str) -> str:
    """Mask secrets in ``text`` (a finished log line)."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


# ------------------------------------------------------------------------------ output


class LineOutput(Protocol):
    def write(self, line: str) -> None: ...


class DirectOutput:
    """Writes each line to stdout at once (Lambda: one request at a time, nothing to overlap)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        stream = self._stream or sys.stdout  # looked up per line, so redirections are honoured
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


class BackgroundOutput:
    """Callers enqueue lines; one thread writes them. Bounded: when the queue is full (stdout
    stalled), lines are dropped and counted, and a line saying how many follows when it drains."""

    def __init__(self, stream: TextIO | None = None, *, max_lines: int = 10_000) -> None:
        self._stream = stream
        self._queue: queue.Queue[str | None] = queue.Queue(max_lines)
        self.dropped = 0
        self._reported = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def write(self, line: str) -> None:
        if self._closed:
            DirectOutput(self._stream).write(line)
            return
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            line = self._queue.get()
            lines: list[str] = []
            while line is not None:
                lines.append(line)
                if len(lines) >= 500:
                    break
                try:
                    line = self._queue.get_nowait()
                except queue.Empty:
                    break
            if lines:
                stream = self._stream or sys.stdout
                try:
                    stream.write("\n".join(lines) + "\n")
                    if self.dropped > self._reported:
                        stream.write(_dropped_line(self.dropped - self._reported) + "\n")
                        self._reported = self.dropped
                    stream.flush()
                except (OSError, ValueError):  # stdout closed under us: nothing left to tell
                    pass
            if line is None:
                return

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop (at exit)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)


def _dropped_line(count: int) -> str:
    record = logging.LogRecord(
        __name__, logging.WARNING, __file__, 0, "%d log lines were dropped: output too slow", (count,), None
    )
    return log_handler().format(record)


_output: LineOutput = DirectOutput()


def write_line(line: str) -> None:
    """Write one finished line (a JSON log line or an EMF document) to the process's output."""
    _output.write(line)


def use_background_output(stream: TextIO | None = None) -> BackgroundOutput:
    global _output
    if isinstance(_output, BackgroundOutput):
        return _output
    output = BackgroundOutput(stream)
    _output = output
    atexit.register(output.close)
    return output


# ------------------------------------------------------------------------------ handler


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``user_id`` (while an authenticated request is handled: the user's
    id, never a key or token) and ``logger``; drops uvicorn's ANSI copy of its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        user_id = user_id_var.get()
        if user_id and not hasattr(record, "user_id"):
            record.user_id = user_id
        record.logger = record.name
        record.__dict__.pop("color_message", None)
        return True


class JsonFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log formatter, with ``redact`` applied to every finished line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonLineHandler(logging.Handler):
    """Formats records as JSON lines for the process output. A record reaching it twice (through
    a logger that has it and then through the root, which has it too) is written once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()

    def handle(self, record: logging.LogRecord) -> bool:
        if record in self._seen:
            return False
        self._seen.add(record)
        return bool(super().handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except Exception:
            self.handleError(record)


_handler: JsonLineHandler | None = None
_handler_lock = threading.Lock()


def log_handler() -> JsonLineHandler:
    """The process's one log handler (its formatter is a ``JsonFormatter``)."""
    global _handler
    with _handler_lock:
        if _handler is None:
            handler = JsonLineHandler()
            handler.setFormatter(JsonFormatter(service=service_name()))
            handler.addFilter(RequestContextFilter())
            _handler = handler
        return _handler


def log_formatter() -> JsonFormatter:
    formatter = log_handler().formatter
    assert isinstance(formatter, JsonFormatter)
    return formatter


def log_level() -> int:
    """POWERTOOLS_LOG_LEVEL or LOG_LEVEL (as Powertools reads them), else INFO."""
    name = (os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO").upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def _unsuppress(handler: logging.Handler) -> None:
    # A Powertools Logger created while our handler sits on the root adds a filter to it that
    # drops every record of its service's logger tree: ours. Take it off again.
    for existing in list(handler.filters):
        if isinstance(existing, SuppressFilter):
            handler.removeFilter(existing)


def _quiet(names: tuple[str, ...], level: int) -> None:
    for name in names:
        third_party = logging.getLogger(name)
        if third_party.level == logging.NOTSET:
            third_party.setLevel(max(logging.WARNING, level))


class _NotOurs(logging.Filter):
    """For the Lambda runtime's own root handler: our records are written by ours already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.name == n or record.name.startswith(n + ".") for n in APP_LOGGERS)


def install_lambda_logging() -> JsonLineHandler:
    """Lambda: our loggers write through our handler (the same one the Powertools Logger uses); the
    runtime's root handler keeps other libraries' records and skips ours (no duplicates)."""
    handler = log_handler()
    _unsuppress(handler)
    for name in APP_LOGGERS:
        app_logger = logging.getLogger(name)
        if handler not in app_logger.handlers:
            app_logger.addHandler(handler)
    for root_handler in logging.getLogger().handlers:
        if root_handler is handler or type(root_handler).__module__.startswith("_pytest"):
            continue  # pytest's capture keeps seeing everything
        if not any(isinstance(f, _NotOurs) for f in root_handler.filters):
            root_handler.addFilter(_NotOurs())
    _quiet(QUIET_LOGGERS, log_level())
    return handler


def configure_service_logging(stream: TextIO | None = None) -> BackgroundOutput:
    """The streaming service (and the local run): every logger, uvicorn's and the libraries'
    included, writes JSON lines through the writer thread; warnings and uncaught exceptions too.
    Call before uvicorn starts, and give uvicorn ``log_config=None``."""
    output = use_background_output(stream)
    handler = log_handler()
    _unsuppress(handler)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing is not handler and not type(existing).__module__.startswith("_pytest"):
            root.removeHandler(existing)
    if handler not in root.handlers:
        root.addHandler(handler)
    level = log_level()
    root.setLevel(level)
    _quiet(QUIET_LOGGERS + SERVICE_QUIET_LOGGERS, level)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return output


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: types.TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("streaming_service").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("streaming_service").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
