"""The pg8000 internals that ytresearch.db.prepared drives (``PG8000_NAMES``): each one is on the
locked pg8000 in the shape the adapter relies on, the list names all of them, and without any one
of them nothing is installed. An upgrade that moves one fails here, not silently at run time.

No database: pg8000 talks to a scripted server (``ScriptedServer``) that answers with the
PostgreSQL protocol messages a real one would send and keeps what pg8000 wrote."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import struct
import types
from collections.abc import Iterator
from typing import Any

import pg8000
import pg8000.core
import pg8000.dbapi
import pg8000.exceptions
import pg8000.legacy
import pytest
from sqlalchemy import Engine, create_engine

from ytresearch.config import Settings
from ytresearch.db import prepared
from ytresearch.db.engine import make_engine
from ytresearch.db.prepared import MAX_CACHED_CHARS, PG8000_NAMES, Pg8000Name

INT4 = 23  # PostgreSQL's type oid for integer


def msg(code: bytes, body: bytes = b"") -> bytes:
    return code + struct.pack("!i", len(body) + 4) + body


def ready(status: bytes) -> bytes:  # I idle, T in a transaction, E in a failed one
    return msg(b"Z", status)


def done(tag: str) -> bytes:
    return msg(b"C", tag.encode() + b"\0")


def described_int_column(name: str) -> list[bytes]:
    """Parse + Describe answered for a statement with one int parameter and one int column."""
    parameters = struct.pack("!hi", 1, INT4)
    column = struct.pack("!h", 1) + name.encode() + b"\0" + struct.pack("!ihihih", 0, 0, INT4, 4, -1, 0)
    return [msg(b"1"), msg(b"t", parameters), msg(b"T", column)]


def row(*values: str) -> bytes:
    body = struct.pack("!h", len(values))
    for value in values:
        body += struct.pack("!i", len(value)) + value.encode()
    return msg(b"D", body)


def error(code: str) -> bytes:
    return msg(b"E", f"SERROR\0C{code}\0Mscripted error\0\0".encode())


class ScriptedServer:
    """pg8000's socket, played by a script: reads return the queued server messages in order,
    writes are kept for the test to read back."""

    def __init__(self) -> None:
        self.replies = bytearray()
        self.sent = bytearray()

    def queue(self, *messages: bytes) -> None:
        self.replies += b"".join(messages)

    def makefile(self, mode: str) -> ScriptedServer:
        return self

    def read(self, size: int) -> bytes:
        assert self.replies, "pg8000 waited for a reply the script does not have"
        chunk = bytes(self.replies[:size])
        del self.replies[:size]
        return chunk

    def write(self, data: bytes) -> int:
        self.sent += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def messages(self) -> list[tuple[bytes, bytes]]:
        """What pg8000 sent since the last call, as (type, body) pairs."""
        out, i, sent = [], 0, bytes(self.sent)
        while i < len(sent):
            (length,) = struct.unpack("!i", sent[i + 1 : i + 5])
            out.append((sent[i : i + 1], sent[i + 5 : i + 1 + length]))
            i += 1 + length
        self.sent.clear()
        return out


@pytest.fixture
def server() -> ScriptedServer:
    return ScriptedServer()


@pytest.fixture
def conn(server: ScriptedServer) -> Iterator[Any]:
    """A real pg8000 connection (the class ``pg8000.connect`` makes) on the scripted server."""
    server.queue(ready(b"I"))
    connection = pg8000.Connection("ytr", sock=server, ssl_context=False)
    server.sent.clear()  # the startup message
    yield connection
    assert not server.replies, "the script has replies pg8000 never read"


def owner_of(entry: Pg8000Name) -> Any:
    module = importlib.import_module(entry.module)
    return getattr(module, entry.owner) if entry.owner else module


def instance_of(entry: Pg8000Name, conn: Any) -> Any:
    return {"Connection": conn, "Cursor": conn.cursor(), "Context": pg8000.core.Context(None)}[entry.owner]


FIELDS = [e for e in PG8000_NAMES if e.kind == "field"]


def take_away(entry: Pg8000Name, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the installed pg8000 lack ``entry``, as an upgrade that renamed it would."""
    owner = owner_of(entry)
    if entry.kind == "field":  # its constructor sets it under another name
        cls = next(c for c in owner.__mro__ if entry.name in _constructor_names(c))
        init = vars(cls)["__init__"]
        names = tuple(f"{n}_renamed" if n == entry.name else n for n in init.__code__.co_names)
        code = init.__code__.replace(co_names=names)
        renamed = types.FunctionType(code, init.__globals__, "__init__", init.__defaults__, init.__closure__)
        renamed.__kwdefaults__ = init.__kwdefaults__
        monkeypatch.setattr(cls, "__init__", renamed)
        return
    defining = next((c for c in getattr(owner, "__mro__", ()) if entry.name in vars(c)), owner)
    monkeypatch.delattr(defining, entry.name)


def _constructor_names(cls: type) -> tuple[str, ...]:
    code = getattr(vars(cls).get("__init__"), "__code__", None)
    return code.co_names if code is not None else ()


def listeners_installed(engine: Engine) -> tuple[bool, bool]:
    # The listener lists themselves, not event.contains: SQLAlchemy's event registry is keyed by
    # id(), and an earlier test's engine could leave an entry that matches this dialect's id.
    return (
        prepared._execute_prepared in list(engine.dialect.dispatch.do_execute),
        prepared._simple_transaction_ends in list(engine.pool.dispatch.connect),
    )


def pg8000_engine() -> Engine:
    """The production engine for a PostgreSQL URL (nothing connects until first use)."""
    return make_engine(Settings(database_url="postgresql+pg8000://ytr@127.0.0.1:1/ytr"))


# --- every name is there, and the list is complete -------------------------------------------


def test_every_pg8000_name_the_adapter_touches_is_on_the_locked_version():
    assert prepared.missing_pg8000_names() == []
    assert prepared.supported()
    assert listeners_installed(pg8000_engine()) == (True, True)


def test_the_list_names_every_pg8000_name_the_adapter_touches():
    """Attributes read or written on pg8000's objects (by the names prepared.py gives them) and
    names imported from pg8000 are all in PG8000_NAMES, so supported() checks each of them."""
    holders = {
        "conn": ("pg8000.legacy", "Connection"),
        "dbapi_conn": ("pg8000.legacy", "Connection"),
        "cursor": ("pg8000.legacy", "Cursor"),
        "result": ("pg8000.core", "Context"),
    }
    declared = {(e.module, e.owner, e.name) for e in PG8000_NAMES}
    touched = set()
    for node in ast.walk(ast.parse(inspect.getsource(prepared))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in holders:
            if node.attr != "__dict__":  # plain Python: the instance has one (checked below)
                touched.add((*holders[node.value.id], node.attr))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pg8000"):
            touched.update((str(node.module), "", alias.name) for alias in node.names)
    assert touched, "the walk found nothing: prepared.py names pg8000's objects differently now"
    assert touched - declared == set()


# --- each name has the shape the adapter relies on ------------------------------------------


def test_sqlalchemy_gets_its_connections_from_pg8000_connect_and_those_are_the_declared_class(
    monkeypatch: pytest.MonkeyPatch,
):
    made: list[tuple[Any, ...]] = []
    assert create_engine("postgresql+pg8000://ytr@127.0.0.1/ytr").dialect.loaded_dbapi is pg8000
    assert pg8000.Connection is pg8000.legacy.Connection
    monkeypatch.setattr(pg8000, "Connection", lambda *args, **kwargs: made.append(args))
    pg8000.connect(user="ytr")
    assert made == [("ytr",)]


def test_the_connection_and_cursor_are_the_declared_classes(conn: Any):
    assert type(conn) is pg8000.legacy.Connection
    assert type(conn.cursor()) is pg8000.legacy.Cursor


@pytest.mark.parametrize("entry", FIELDS, ids=str)
def test_each_field_is_on_a_real_instance(entry: Pg8000Name, conn: Any):
    assert entry.name in vars(instance_of(entry, conn))


def test_the_connection_keeps_our_cache_and_replaced_methods_on_itself(conn: Any):
    prepared._simple_transaction_ends(conn, None)
    assert conn.__dict__.setdefault("_ytr_prepared", {}) == {}
    assert {"commit", "rollback", "_ytr_prepared"} <= set(vars(conn))


def test_in_transaction_is_a_flag_that_follows_the_server(conn: Any, server: ScriptedServer):
    assert conn._in_transaction is False
    server.queue(done("BEGIN"), ready(b"T"))
    conn.execute_simple("begin transaction")
    assert conn._in_transaction is True


def test_pg8000s_placeholder_conversion_numbers_them(conn: Any):
    from pg8000.core import make_params
    from pg8000.legacy import convert_paramstyle

    assert convert_paramstyle("format", "SELECT %s, %s", (1, "a")) == ("SELECT $1, $2", (1, "a"))
    assert convert_paramstyle("named", "SELECT :b, :a", {"a": 1, "b": 2}) == ("SELECT $1, $2", (2, 1))
    assert make_params(conn.py_types, ("x", 7, None)) == ("x", "7", None)


def test_a_statement_is_prepared_once_then_run_by_name(conn: Any, server: ScriptedServer):
    cursor = conn.cursor()
    server.queue(done("BEGIN"), ready(b"T"), *described_int_column("answer"), ready(b"T"))
    server.queue(msg(b"2"), row("42"), done("SELECT 1"), ready(b"T"))
    server.queue(msg(b"2"), row("43"), done("SELECT 1"), ready(b"T"))

    assert prepared._execute_prepared(cursor, "SELECT %s + 1", (41,), None) is True
    assert (cursor.fetchall(), cursor.rowcount, cursor.description[0][:2]) == (([42],), 1, ("answer", INT4))
    first = server.messages()
    assert prepared._execute_prepared(cursor, "SELECT %s + 1", (42,), None) is True
    assert cursor.fetchall() == ([43],)
    second = server.messages()

    assert first[0] == (b"Q", b"begin transaction\0")  # a simple query, as pg8000's cursor sends it
    parses = [body for kind, body in first if kind == b"P"]
    assert parses == [b"pg8000_statement_0\0SELECT $1 + 1\0\0\0"]
    binds = [body for kind, body in first + second if kind == b"B"]
    assert [b.split(b"\0")[1] for b in binds] == [b"pg8000_statement_0"] * 2
    assert b"P" not in {kind for kind, _ in second}
    assert list(conn._ytr_prepared) == ["SELECT $1 + 1"]


def test_a_very_long_statement_runs_unnamed(conn: Any, server: ScriptedServer):
    cursor = conn.cursor()
    statement = "SELECT %s + 1" + " " * MAX_CACHED_CHARS
    server.queue(done("BEGIN"), ready(b"T"), msg(b"1"), ready(b"T"))
    server.queue(*described_int_column("answer")[1:], ready(b"T"))
    server.queue(msg(b"2"), row("42"), done("SELECT 1"), ready(b"T"))

    assert prepared._execute_prepared(cursor, statement, (41,), None) is True

    assert cursor.fetchall() == ([42],)
    parses = [body for kind, body in server.messages() if kind == b"P"]
    assert len(parses) == 1 and parses[0].startswith(b"\0SELECT $1 + 1")  # the unnamed statement
    assert conn.__dict__.get("_ytr_prepared", {}) == {}


@pytest.mark.parametrize(
    ("code", "raised"),
    [("23505", pg8000.dbapi.IntegrityError), ("42P01", pg8000.dbapi.ProgrammingError)],
)
def test_server_errors_carry_their_code_and_map_like_pg8000s_cursor(
    conn: Any, server: ScriptedServer, code: str, raised: type[Exception]
):
    server.queue(done("BEGIN"), ready(b"T"), msg(b"1"), msg(b"t", struct.pack("!hi", 1, INT4)))
    server.queue(msg(b"n"), ready(b"T"), error(code), ready(b"E"))

    with pytest.raises(raised) as caught:
        prepared._execute_prepared(conn.cursor(), "INSERT INTO t VALUES (%s)", (1,), None)

    assert type(caught.value) is raised  # the class SQLAlchemy maps (pg8000 is its DB-API module)
    assert caught.value.args[0]["C"] == code
    assert isinstance(caught.value.__cause__, pg8000.exceptions.DatabaseError)


def test_a_stale_statement_is_dropped_from_the_cache(conn: Any, server: ScriptedServer):
    server.queue(done("BEGIN"), ready(b"T"), *described_int_column("answer"), ready(b"T"))
    server.queue(error("0A000"), ready(b"E"))

    with pytest.raises(pg8000.dbapi.ProgrammingError):
        prepared._execute_prepared(conn.cursor(), "SELECT %s + 1", (41,), None)

    assert conn._ytr_prepared == {}


def test_commit_and_rollback_go_out_as_simple_queries(conn: Any, server: ScriptedServer):
    prepared._simple_transaction_ends(conn, None)
    conn.rollback()  # not in a transaction: nothing to send
    assert server.messages() == []

    server.queue(done("BEGIN"), ready(b"T"), done("ROLLBACK"), ready(b"I"))
    server.queue(done("BEGIN"), ready(b"T"), done("COMMIT"), ready(b"I"))
    for end in ("rollback", "commit"):
        conn.execute_simple("begin transaction")
        getattr(conn, end)()
        assert server.messages()[-1] == (b"Q", end.encode() + b"\0")


# --- without any one of them, nothing is installed -----------------------------------------


@pytest.mark.parametrize("entry", PG8000_NAMES, ids=str)
def test_without_any_one_name_nothing_is_installed(
    entry: Pg8000Name, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    take_away(entry, monkeypatch)

    assert prepared.missing_pg8000_names() == [entry]
    assert not prepared.supported()
    with caplog.at_level(logging.WARNING, logger=prepared.__name__):
        engine = pg8000_engine()
    assert listeners_installed(engine) == (False, False)  # pg8000's own cursor runs everything
    assert str(entry) in caplog.text


@pytest.mark.parametrize("entry", [e for e in PG8000_NAMES if e.kind != "field"], ids=str)
def test_a_name_in_another_shape_counts_as_missing(entry: Pg8000Name, monkeypatch: pytest.MonkeyPatch):
    reshaped: Any = {
        "function": "not callable",
        "method": None,
        "property": lambda self: False,  # a method: `if conn._in_transaction` would always be true
        "exception": object,
    }[entry.kind]
    owner = owner_of(entry)
    defining = next((c for c in getattr(owner, "__mro__", ()) if entry.name in vars(c)), owner)
    monkeypatch.setattr(defining, entry.name, reshaped)

    assert prepared.missing_pg8000_names() == [entry]
    assert prepared.install(create_engine("postgresql+pg8000://ytr@127.0.0.1/ytr")) is False
