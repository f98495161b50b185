"""Named prepared statements for pg8000, cached per connection.

pg8000's DB-API cursor runs every statement as an unnamed prepared statement in three round trips
(Parse, then Describe, then Bind + Execute), and PostgreSQL parses and plans it each time. Our
statements are few and fixed (SQLAlchemy renders the same text every time), so each connection
prepares a statement once and then runs it in one round trip (Bind + Execute), and the text's
placeholders are numbered once, not on every execution (measured: docs/benchmarks.md).

COMMIT and ROLLBACK go out as simple queries (one round trip each, not three).

Installed through SQLAlchemy's ``do_execute`` dialect event, so only single executions take this
path (``executemany`` keeps pg8000's own). pg8000's public prepared statements
(``Connection.prepare``) take ``:name`` parameters and return bare rows, nothing SQLAlchemy's cursor
can read, so this drives pg8000 internals: every one is listed in ``PG8000_NAMES``, ``supported``
checks them all, and without any one of them nothing is installed (pg8000's own cursor runs
everything, as with the setting off). tests/unit/test_pg8000_private_api.py checks them against the
locked pg8000, so an upgrade that moves one fails there.

Not for RDS Proxy: a named prepared statement pins the client session to one database connection
there, which defeats the proxy (``YTR_DB_PREPARED_STATEMENTS=false``, set by the stack when it
adds a proxy).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections import OrderedDict
from typing import Any, Literal, NamedTuple

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)

MAX_PER_CONNECTION = 100  # statement texts kept prepared on one connection (least recently used go)
# Texts longer than this (multi-row INSERTs of a few hundred rows) run unnamed, as pg8000 would run
# them: the caches here and the server's memory for prepared statements stay small.
MAX_CACHED_CHARS = 32_000
# PostgreSQL errors that mean a prepared statement is stale or gone (its plan no longer matches the
# schema, or the server forgot it): drop it so the next execution prepares it again.
_STALE_CODES = {"0A000", "26000"}


class Pg8000Name(NamedTuple):
    """A pg8000 name this module touches, and the shape it relies on."""

    module: str
    owner: str  # a class in ``module``, or "" for the module itself
    name: str
    # function / method: called. property: read (a plain method there would always be truthy).
    # field: an instance attribute the owner's constructor sets (read or written here).
    # exception: an exception class raised or caught here.
    kind: Literal["function", "method", "property", "field", "exception"]

    def __str__(self) -> str:
        return ".".join(part for part in (self.module, self.owner, self.name) if part)


# Every pg8000 name this module touches. pg8000.connect (what SQLAlchemy calls) returns a
# pg8000.legacy.Connection, whose cursor() is a pg8000.legacy.Cursor; statements return a
# pg8000.core.Context. Only the exception classes are pg8000's documented API.
_CONNECTION, _CURSOR = ("pg8000.legacy", "Connection"), ("pg8000.legacy", "Cursor")
PG8000_NAMES: tuple[Pg8000Name, ...] = (
    Pg8000Name(*_CONNECTION, "prepare_statement", "method"),
    Pg8000Name(*_CONNECTION, "execute_named", "method"),
    Pg8000Name(*_CONNECTION, "execute_unnamed", "method"),
    Pg8000Name(*_CONNECTION, "execute_simple", "method"),
    Pg8000Name(*_CONNECTION, "close_prepared_statement", "method"),
    Pg8000Name(*_CONNECTION, "commit", "method"),  # replaced on each connection
    Pg8000Name(*_CONNECTION, "rollback", "method"),  # replaced on each connection
    Pg8000Name(*_CONNECTION, "_in_transaction", "property"),
    Pg8000Name(*_CONNECTION, "autocommit", "field"),
    Pg8000Name(*_CONNECTION, "py_types", "field"),
    Pg8000Name(*_CONNECTION, "_sock", "field"),
    Pg8000Name(*_CURSOR, "_c", "field"),
    Pg8000Name(*_CURSOR, "paramstyle", "field"),
    Pg8000Name(*_CURSOR, "_context", "field"),
    Pg8000Name(*_CURSOR, "_row_iter", "field"),
    Pg8000Name(*_CURSOR, "_input_oids", "field"),
    Pg8000Name("pg8000.core", "Context", "rows", "field"),
    Pg8000Name("pg8000.core", "", "make_params", "function"),
    Pg8000Name("pg8000.legacy", "", "convert_paramstyle", "function"),
    Pg8000Name("pg8000.dbapi", "", "IntegrityError", "exception"),
    Pg8000Name("pg8000.dbapi", "", "ProgrammingError", "exception"),
    Pg8000Name("pg8000.exceptions", "", "DatabaseError", "exception"),
    Pg8000Name("pg8000.exceptions", "", "InterfaceError", "exception"),
)


def missing_pg8000_names() -> list[Pg8000Name]:
    """The names of ``PG8000_NAMES`` that the installed pg8000 lacks or has in another shape."""
    return [entry for entry in PG8000_NAMES if not _present(entry)]


def supported() -> bool:
    """Whether the installed pg8000 has every internal this module drives, in the shape it needs."""
    return not missing_pg8000_names()


def _present(entry: Pg8000Name) -> bool:
    try:
        owner: Any = importlib.import_module(entry.module)
        if entry.owner:
            owner = getattr(owner, entry.owner)
    except (ImportError, AttributeError):
        return False
    if entry.kind == "field":  # set on the instance, so look for it in the constructors
        inits = (vars(cls).get("__init__") for cls in getattr(owner, "__mro__", ()))
        return any(entry.name in getattr(getattr(f, "__code__", None), "co_names", ()) for f in inits)
    if entry.kind == "property":
        found = next((vars(cls)[entry.name] for cls in owner.__mro__ if entry.name in vars(cls)), None)
        return isinstance(found, property)
    value = getattr(owner, entry.name, None)
    if entry.kind == "exception":
        return isinstance(value, type) and issubclass(value, Exception)
    return callable(value)


def install(engine: Engine) -> bool:
    """Run the engine's single statements as cached named prepared statements; False (and
    nothing changed) when the driver is not a pg8000 this module understands."""
    if engine.dialect.driver != "pg8000":
        return False
    missing = missing_pg8000_names()
    if missing:
        names = ", ".join(map(str, missing))
        log.warning("pg8000 lacks %s: statements run unnamed, as pg8000 runs them", names)
        return False
    event.listen(engine, "do_execute", _execute_prepared)
    event.listen(engine, "connect", _simple_transaction_ends)
    return True


def _simple_transaction_ends(dbapi_conn: Any, _record: Any) -> None:
    """COMMIT and ROLLBACK as simple queries: one round trip each instead of pg8000's three (it
    sends them through the extended protocol like any statement)."""

    def commit() -> None:
        dbapi_conn.execute_simple("commit")

    def rollback() -> None:
        if dbapi_conn._in_transaction:
            dbapi_conn.execute_simple("rollback")

    dbapi_conn.commit, dbapi_conn.rollback = commit, rollback


def _execute_prepared(cursor: Any, statement: str, parameters: Any, _context: Any) -> bool:
    if not parameters:
        return False  # pg8000 sends these as simple queries (one round trip already)
    from pg8000.dbapi import IntegrityError, ProgrammingError
    from pg8000.exceptions import DatabaseError, InterfaceError

    conn = cursor._c
    if conn is None or conn._sock is None:
        raise InterfaceError("connection is closed")
    try:
        result = _run(conn, cursor.paramstyle, statement, parameters)
    except DatabaseError as exc:
        # The same exception classes as pg8000's own cursor, so SQLAlchemy maps them alike
        # (IntegrityError for a unique violation, InterfaceError for a refused login, ...).
        details = exc.args[0] if exc.args else None
        if not isinstance(details, dict):
            raise ProgrammingError(details) from exc
        errors: dict[str, type[Exception]] = {"28000": InterfaceError, "23505": IntegrityError}
        raise errors.get(str(details.get("C")), ProgrammingError)(details) from exc
    cursor._context = result
    cursor._row_iter = iter([] if result.rows is None else result.rows)
    cursor._input_oids = ()
    return True  # handled: SQLAlchemy does not call cursor.execute


@functools.lru_cache(maxsize=256)
def _numbered(statement: str) -> str:
    """``%s`` placeholders as ``$1, $2...``. pg8000 rescans the text character by character on every
    execution, a large share of the chat start's CPU; the texts are few, so once is enough."""
    from pg8000.legacy import convert_paramstyle

    return str(convert_paramstyle("format", statement, ())[0])


def _run(conn: Any, paramstyle: str, statement: str, parameters: Any) -> Any:
    from pg8000.core import make_params
    from pg8000.legacy import convert_paramstyle

    if not conn._in_transaction and not conn.autocommit:
        conn.execute_simple("begin transaction")  # what pg8000's cursor does before a statement
    if len(statement) > MAX_CACHED_CHARS:
        sql, values = convert_paramstyle(paramstyle, statement, parameters)
        return conn.execute_unnamed(sql, vals=values, oids=())
    if paramstyle == "format" and isinstance(parameters, tuple | list):
        sql, values = _numbered(statement), parameters  # SQLAlchemy's pg8000 style: %s, a tuple
    else:
        sql, values = convert_paramstyle(paramstyle, statement, parameters)
    cache: OrderedDict[str, tuple[bytes, Any, Any]] = conn.__dict__.setdefault("_ytr_prepared", OrderedDict())
    entry = cache.get(sql)
    if entry is None:
        entry = cache[sql] = conn.prepare_statement(sql, ())
        if len(cache) > MAX_PER_CONNECTION:
            _, (oldest, _cols, _funcs) = cache.popitem(last=False)
            conn.close_prepared_statement(oldest)
    else:
        cache.move_to_end(sql)
    name, columns, input_funcs = entry
    try:
        return conn.execute_named(name, make_params(conn.py_types, values), columns, input_funcs, sql)
    except Exception as exc:
        details = exc.args[0] if exc.args else None
        if isinstance(details, dict) and details.get("C") in _STALE_CODES:
            log.info("prepared statement is stale (%s); it will be prepared again", details.get("C"))
            # Its name stays taken (the server still holds it, in a failed transaction now); the
            # next execution prepares the text under a new name. Recycling the connection frees it.
            cache.pop(sql, None)
        raise
