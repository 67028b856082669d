"""What a test's worker thread does before it ends."""

from __future__ import annotations

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper


def close_thread_connections() -> None:
    """
    Close the database connections this thread opened, in-memory SQLite ones included.

    Django's ``close()`` leaves an in-memory SQLite test database's connection open, so
    that closing it never drops the database; other threads' connections keep this shared
    one alive, and one left to the garbage collector is a ``ResourceWarning`` (Python 3.13).
    """
    for connection in connections.all(initialized_only=True):
        BaseDatabaseWrapper.close(connection)
