"""Telling a database outage ("unreachable, try again") from a bad statement ("our query is wrong")."""

from __future__ import annotations


def is_outage(exc: BaseException) -> bool:
    """True for errors meaning "the database is unreachable", not "our query is wrong"."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from ytresearch.errors import DatabaseUnavailableError

    if isinstance(exc, (OperationalError, InterfaceError, DatabaseUnavailableError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
