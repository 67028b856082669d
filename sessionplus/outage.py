"""Telling a store outage from other errors, and the 503 page a request gets during one."""

from __future__ import annotations

import functools
import sys
import threading
import time
from functools import cache
from types import TracebackType

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from sessionplus.exceptions import SessionStoreUnavailable
from sessionplus.pages import page_response

# Seconds a client is asked to wait: outages worth a 503 (a failover, a restart) are short.
RETRY_AFTER = 5
TEMPLATE_NAME = "sessionplus/store_unavailable.html"

# PostgreSQL SQLSTATEs that mean the connection, not the statement, failed: class 08
# (connection exception) and the server shutting down or starting up (57P01-57P03).
# Client-side failures (refused, reset, lost mid-query) carry no SQLSTATE at all.
_PG_CONNECTION_STATES = ("08", "57P01", "57P02", "57P03")

# MySQL/MariaDB error numbers that mean the connection, not the statement, failed. mysqlclient
# and PyMySQL raise them as OperationalError with the number first: the client's own (no socket,
# refused, unknown host: 2001-2005; server gone away: 2006; connection lost: 2013, 2055) and the
# server's (shutting down: 1053; this connection killed: MariaDB's 1927). A statement's failure
# (a lock wait timeout, 1205) is not among them.
_MYSQL_CONNECTION_ERRORS = frozenset({1053, 1927, 2001, 2002, 2003, 2004, 2005, 2006, 2013, 2055})


@functools.cache
def redis_unavailable_errors() -> tuple[type[BaseException], ...]:
    """
    Return what "the store could not be reached" looks like from redis-py, standalone or
    Cluster: the errors the redis engine turns into ``SessionStoreUnavailable``.

    A function, imported on first use: sessionplus must not import optional dependencies.
    """
    from redis import exceptions

    return (
        exceptions.ConnectionError,
        exceptions.TimeoutError,
        exceptions.ClusterDownError,
        exceptions.TryAgainError,
        exceptions.ReadOnlyError,
        exceptions.RedisClusterException,
    )


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (SessionStoreUnavailable, ConnectionError, TimeoutError)):
        return True
    # Clients are looked up only if already imported: an error cannot come from a
    # client nobody loaded, and sessionplus must not import optional dependencies.
    redis_exceptions = sys.modules.get("redis.exceptions")
    if redis_exceptions is not None and isinstance(
        exc, (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)
    ):
        return True
    for driver, code_attribute in (("psycopg", "sqlstate"), ("psycopg2", "pgcode")):
        module = sys.modules.get(driver)
        if module is not None and isinstance(exc, module.OperationalError):
            code = getattr(exc, code_attribute, None)
            return code is None or code.startswith(_PG_CONNECTION_STATES)
    # PyMySQL's install_as_MySQLdb() may register it under mysqlclient's name too.
    for driver in ("MySQLdb", "pymysql"):
        module = sys.modules.get(driver)
        if module is not None and isinstance(exc, module.OperationalError):
            return bool(exc.args) and exc.args[0] in _MYSQL_CONNECTION_ERRORS
    return False


def is_store_outage(exc: BaseException) -> bool:
    """
    Return whether a session store call failed because the store could not be reached.

    True for ``SessionStoreUnavailable`` and for connection-type errors of the clients
    engines use, however they were wrapped (django-redis's ``ConnectionInterrupted``,
    Django's ``OperationalError``): the chain of ``__cause__`` is followed. Errors in
    the request itself (a Redis ``ResponseError``, a statement timeout, a missing table)
    are not outages: they stay 500s.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if _is_connection_error(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


def as_unavailable(exc: BaseException) -> SessionStoreUnavailable:
    """Return ``exc`` as the ``SessionStoreUnavailable`` it means (itself if it is one)."""
    if isinstance(exc, SessionStoreUnavailable):
        return exc
    unavailable = SessionStoreUnavailable(f"Session store unavailable: {exc}")
    unavailable.__cause__ = exc
    return unavailable


class unavailable_on:
    """Re-raise a store client's connection errors as SessionStoreUnavailable."""

    # A class, not @contextmanager: it wraps every storage call, and a generator-based
    # context manager costs several more calls each time.
    __slots__ = ("errors",)

    def __init__(self, *errors: type[BaseException]) -> None:
        self.errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, self.errors):
            raise SessionStoreUnavailable(f"Session store unavailable: {exc}") from exc


# The guard of each store's calls, made once: it keeps no state of a call, and building
# one for each call cost more than twice what entering and leaving it costs.
UNREACHABLE_FILES = unavailable_on(OSError)


@cache
def unreachable_redis() -> unavailable_on:
    """Return the guard of the redis engine's calls (redis-py imported on first use)."""
    return unavailable_on(*redis_unavailable_errors())


@cache
def unreachable_cache() -> unavailable_on:
    """Return the guard of a Django cache backend's calls (clients imported on first use)."""
    return unavailable_on(*cache_client_errors())


@cache
def cache_client_errors() -> tuple[type[BaseException], ...]:
    """Return the errors a Django cache backend raises when its server cannot be reached."""
    # Sockets and the file-based cache raise OSError, the database cache DatabaseError.
    errors: list[type[BaseException]] = [OSError, DatabaseError]
    try:
        from redis.exceptions import ConnectionError, TimeoutError
    except ImportError:
        pass
    else:
        errors += [ConnectionError, TimeoutError]
    try:
        from django_redis.exceptions import ConnectionInterrupted
    except ImportError:
        pass
    else:
        errors.append(ConnectionInterrupted)
    try:
        from pymemcache.exceptions import MemcacheError
    except ImportError:
        pass
    else:
        errors.append(MemcacheError)
    return tuple(errors)


class OutageLog:
    """
    Whether the store is down, as this process has seen it, so an outage is logged once.

    The first failed request of an outage is logged with its traceback, the next ones
    with a short line, and the first request the store answers again ends the outage.
    The state is per process: each worker of a multi-process server logs its own first
    failure and its own recovery (threads of one process share it, behind a lock).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._failures = 0

    def failed(self) -> int:
        """Record a request the store failed; return how many failed in this outage so far."""
        with self._lock:
            if self._down_since is None:
                self._down_since, self._failures = time.monotonic(), 0
            self._failures += 1
            return self._failures

    def answered(self) -> tuple[float, int] | None:
        """
        Record a request the store answered; return the outage it ends, if any.

        The outage is returned once, as (seconds it lasted, requests that failed).
        """
        # Nothing to end, read without the lock (every answered request asks): a failure
        # recorded meanwhile came after this answer, and the next answer ends it.
        if self._down_since is None:
            return None
        with self._lock:
            down_since, self._down_since = self._down_since, None
            failures = self._failures
        if down_since is None:
            return None
        return time.monotonic() - down_since, failures


outages = OutageLog()


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """
    Return the 503 sent when the session store is down: a page, or JSON when preferred.

    Only the request's ``Accept`` header is read: ``request.user`` and context processors
    would read the unreachable session.
    """
    response = page_response(
        request,
        TEMPLATE_NAME,
        {},
        {"error": "session_store_unavailable", "retry_after": RETRY_AFTER},
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER)
    return response
