"""
Count what code asks of the session stores, on the real thing (spies, not fakes).

One counter for every engine: ``count_storage()`` records, while its block runs,

- ``sql``: the statements sent on the default database, by first word (BEGIN, SAVEPOINT
  and COMMIT included, as Django logs them);
- ``cache``: the calls made on ``SESSION_CACHE_ALIAS``'s cache (or ``cache_alias``'s), by
  method name; not those the cache makes on itself to serve one (``aget`` running ``get``);
- ``file``: the file-system calls under ``SESSION_FILE_PATH`` (an audit hook);
- ``redis`` (with ``redis=True``): the commands the Redis server receives from clients, as
  the server reports them (MONITOR): a script is one entry whatever it runs; beside them
  ``redis_executed``, every command the server ran, a script's own included (what its
  INFO commandstats counts); and ``round_trips``, the requests redis-py sends (one per
  command, or one per pipeline);
- ``memcached`` (with ``memcached=True``): the storage commands the suite's memcached
  executed, as its own statistics report them.

Each operation is marked read or write: an engine must not write, nor touch a store it does
not use, where a test says so. Works as ``with`` and as ``async with`` (the database
connection then belongs to the thread ``sync_to_async`` runs ORM calls in).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    ExitStack,
    contextmanager,
)
from contextvars import ContextVar
from dataclasses import dataclass, field
from inspect import iscoroutinefunction
from typing import Any
from uuid import uuid4

import redis as redis_py
import redis.asyncio.connection
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.signals import request_started
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from sessionplus.backends import cache_alias
from sessionplus.backends.cache_alias import lean_get_many

STORES = ("sql", "cache", "file", "redis", "memcached")


@dataclass(frozen=True)
class Operation:
    """One thing asked of a store."""

    store: str  # one of STORES
    name: str  # "SELECT", "get", "open", "EVALSHA"
    write: bool
    detail: str  # the whole SQL statement, the file path, the command name


@dataclass
class StorageCount:
    """The operations a block asked of the stores, grouped by store in ``STORES`` order."""

    operations: list[Operation] = field(default_factory=list)
    round_trips: int = 0
    # With redis=True: each command the Redis server ran, in order, a script's own commands
    # after the call that ran them; each a write by its own flag (EVALSHA itself is not).
    redis_executed: list[Operation] = field(default_factory=list)
    # Each store's operation names (count.sql == ["SELECT"], count.redis == ["EVALSHA"]).
    sql: list[str] = field(default_factory=list)
    cache: list[str] = field(default_factory=list)
    file: list[str] = field(default_factory=list)
    redis: list[str] = field(default_factory=list)
    memcached: list[str] = field(default_factory=list)
    # SQL statements by first word, then every other operation as "store.name".
    calls: list[str] = field(default_factory=list)
    # One line per operation, for assertion messages.
    log: list[str] = field(default_factory=list)

    def record(self, operations: list[Operation]) -> None:
        self.operations = operations
        for store in STORES:
            setattr(self, store, [op.name for op in operations if op.store == store])
        self.calls = [
            op.name if op.store == "sql" else f"{op.store}.{op.name}" for op in operations
        ]
        self.log = [
            f"{op.store} {'write' if op.write else 'read'}: {op.detail[:120]}" for op in operations
        ]

    @property
    def reads(self) -> Counter[str]:
        return Counter(operation.store for operation in self.operations if not operation.write)

    @property
    def writes(self) -> Counter[str]:
        return Counter(operation.store for operation in self.operations if operation.write)

    @property
    def total(self) -> int:
        return len(self.operations)

    @property
    def total_writes(self) -> int:
        return sum(operation.write for operation in self.operations)


Note = Callable[..., None]  # note(store, name, *, write, detail)


# SQL ------------------------------------------------------------------------------------

SQL_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class _Statements(CaptureQueriesContext):
    """
    Capture the statements sent on ``connection``, without connecting first.

    Django's version connects on entry, which a test that may not use the database (a
    SimpleTestCase) is refused; a statement sent there fails that test by itself. Opening a
    connection sends no logged statement on SQLite and PostgreSQL; on MySQL/MariaDB Django's
    ``init_connection_state`` sends ``SET`` statements, which ``_count_sql`` leaves out.
    """

    def __enter__(self) -> _Statements:
        self.force_debug_cursor = self.connection.force_debug_cursor
        self.connection.force_debug_cursor = True
        self.initial_queries = len(self.connection.queries_log)
        self.final_queries = None
        # Django 6.1's __exit__ reconnects only what __enter__ disconnected.
        self.reset_queries_disconnected = request_started.disconnect(reset_queries)
        return self


@contextmanager
def _count_sql(note: Note) -> Iterator[None]:
    with _Statements(connection) as queries:
        yield
    for query in queries.captured_queries:
        name = query["sql"].split(None, 1)[0].upper()
        if name == "SET":  # connection setup (MySQL/MariaDB); sessionplus never sends SET
            continue
        note("sql", name, write=name in SQL_WRITES, detail=query["sql"])


# Cache calls ----------------------------------------------------------------------------

CACHE_METHODS = (
    "add", "get", "set", "touch", "delete", "get_many", "set_many", "delete_many", "has_key",
    "incr", "decr", "get_or_set",
    "aadd", "aget", "aset", "atouch", "adelete", "aget_many", "aset_many", "adelete_many",
    "ahas_key", "aget_or_set",
)  # fmt: skip
CACHE_WRITES = frozenset(
    {"add", "set", "touch", "delete", "set_many", "delete_many", "incr", "decr", "get_or_set"}
)


# Set while a counted cache method runs: the calls it makes on its own cache (BaseCache's
# aget() running get() in a thread, has_key() calling get()) are how that cache does what
# was asked, not more asks. sync_to_async carries it into the thread.
_in_cache_call: ContextVar[bool] = ContextVar("_in_cache_call", default=False)


@contextmanager
def _cache_call(note: Note, name: str) -> Iterator[None]:
    if _in_cache_call.get():
        yield
        return
    write = name in CACHE_WRITES or name[1:] in CACHE_WRITES  # "aset" is "set"
    note("cache", name, write=write, detail=name)
    token = _in_cache_call.set(True)
    try:
        yield
    finally:
        _in_cache_call.reset(token)


class _CountedMethod:
    """A cache method standing in for ``method`` on the instance, noting each call."""

    def __init__(self, note: Note, name: str, method: Any) -> None:
        self._note, self._name, self._method = note, name, method

    # From Django 6.1, an async method runs the sync one in a thread where the backend
    # overrides it (``self.has_key.__func__ is not BaseCache.has_key``): answer as the
    # method would, so counting leaves the cache's path unchanged. A property: an instance
    # attribute would be copied by sync_to_async's functools.update_wrapper, and
    # inspect.markcoroutinefunction would follow it and mark the backend's own method.
    @property
    def __func__(self) -> Any:
        return self._method.__func__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _cache_call(self._note, self._name):
            return self._method(*args, **kwargs)


class _CountedAsyncMethod(_CountedMethod):
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with _cache_call(self._note, self._name):
            return await self._method(*args, **kwargs)


@contextmanager
def _count_cache(note: Note, alias: str) -> Iterator[None]:
    cache = caches[alias]
    for name in CACHE_METHODS:
        method = getattr(cache, name)
        counted = _CountedAsyncMethod if iscoroutinefunction(method) else _CountedMethod
        setattr(cache, name, counted(note, name, method))
    # cached_db reads django-redis's cache with one MGET of its own (``lean_get_many()``):
    # what it asks is still the cache's get_many().
    lean = lean_get_many(alias, cache)
    if lean is not None:
        cache_alias._readers[alias] = (cache, _CountedMethod(note, "get_many", lean))
    try:
        yield
    finally:
        for name in CACHE_METHODS:
            delattr(cache, name)
        cache_alias._readers.pop(alias, None)


# Files ----------------------------------------------------------------------------------

_FILE_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_FILE_READ_EVENTS = frozenset({"os.listdir", "os.scandir"})
_FILE_WRITE_EVENTS = frozenset(
    {"os.remove", "os.rename", "os.utime", "os.mkdir", "os.rmdir", "os.chmod", "os.truncate"}
)
# sys.addaudithook() cannot be undone: one hook for the process, active only while a
# count_storage() block has set a recorder.
_file_note: Note | None = None
_audit_hook_installed = False


def _under_session_dir(path: Any) -> bool:
    try:
        path = os.fsdecode(path)
    except TypeError:  # a file descriptor
        return False
    return os.path.abspath(path).startswith(os.path.abspath(settings.SESSION_FILE_PATH))


def _audit(event: str, args: tuple[Any, ...]) -> None:
    note = _file_note
    if note is None:
        return
    if event == "open" and _under_session_dir(args[0]):
        mode, flags = args[1], args[2]
        write = bool(flags & _FILE_WRITE_FLAGS) or any(c in (mode or "") for c in "wax+")
        note("file", "open", write=write, detail=f"open {args[0]}")
    elif event in _FILE_READ_EVENTS | _FILE_WRITE_EVENTS and _under_session_dir(args[0]):
        write = event in _FILE_WRITE_EVENTS
        note("file", event.removeprefix("os."), write=write, detail=f"{event} {args[0]}")


@contextmanager
def _count_files(note: Note) -> Iterator[None]:
    global _file_note, _audit_hook_installed
    if not _audit_hook_installed:
        sys.addaudithook(_audit)
        _audit_hook_installed = True
    _file_note = note
    try:
        yield
    finally:
        _file_note = None


# Redis ----------------------------------------------------------------------------------

# A new connection's handshake: not something the session asked for.
CONNECTION_COMMANDS = frozenset({"HELLO", "CLIENT", "AUTH", "SELECT", "PING"})
_write_commands: dict[tuple[Any, ...], frozenset[str]] = {}


def _redis_client() -> redis_py.Redis:
    """Return a client of its own on the server the redis engine uses."""
    from django_redis import get_redis_connection

    pool = get_redis_connection(settings.SESSIONPLUS_REDIS_ALIAS).connection_pool
    own = type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs)
    return redis_py.Redis.from_pool(own)


def _redis_writes(client: redis_py.Redis) -> frozenset[str]:
    """Return the names of the commands the server flags as writes (asked once per server)."""
    # By address: the pool's other arguments include objects new with every pool.
    kwargs = client.connection_pool.connection_kwargs
    server = (kwargs.get("host"), kwargs.get("port"), kwargs.get("path"))
    if server not in _write_commands:
        _write_commands[server] = frozenset(
            name.upper() for name, info in client.command().items() if "write" in info["flags"]
        )
    return _write_commands[server]


@contextmanager
def _count_redis(note: Note, count: StorageCount) -> Iterator[None]:
    marker = f"sessionplus-count-end-{uuid4().hex}"
    # [name, write] per command a client sent, in the order the server ran them.
    entries: list[list[Any]] = []
    with _redis_client() as watcher, _redis_client() as signaller:
        writes = _redis_writes(signaller)  # before the watch starts
        with watcher.monitor() as monitor:
            yield
            # Every command sent before this one is reported before it.
            signaller.echo(marker)
            while marker not in (entry := monitor.next_command())["command"]:
                name = entry["command"].split(" ", 1)[0].upper()
                scripted = entry["client_type"] == "lua"
                if not scripted and name in CONNECTION_COMMANDS:
                    continue
                write = name in writes
                detail = f"{name} (in a script)" if scripted else name
                count.redis_executed.append(Operation("redis", name, write, detail))
                if scripted:
                    # A script's own commands follow the call that ran it, which writes if
                    # any of them does.
                    entries[-1][1] |= write
                else:
                    entries.append([name, write])
    for name, write in entries:
        note("redis", name, write=write, detail=name)


@contextmanager
def _count_round_trips(count: StorageCount) -> Iterator[None]:
    # One send_packed_command is one request, however many commands a pipeline packs in it.
    sync_class = redis_py.connection.AbstractConnection
    async_class = redis.asyncio.connection.AbstractConnection
    sync_send, async_send = sync_class.send_packed_command, async_class.send_packed_command

    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        count.round_trips += 1
        return sync_send(self, *args, **kwargs)

    async def asend(self: Any, *args: Any, **kwargs: Any) -> Any:
        count.round_trips += 1
        return await async_send(self, *args, **kwargs)

    sync_class.send_packed_command, async_class.send_packed_command = send, asend
    try:
        yield
    finally:
        sync_class.send_packed_command, async_class.send_packed_command = sync_send, async_send


# Memcached ------------------------------------------------------------------------------

MEMCACHED_STATS = {
    "cmd_get": ("get", False),
    "cmd_set": ("set", True),
    "cmd_touch": ("touch", True),
    "delete_hits": ("delete", True),
    "delete_misses": ("delete", True),
}


@contextmanager
def _count_memcached(note: Note) -> Iterator[None]:
    from pymemcache.client.base import Client

    host, port = settings.CACHES["memcached"]["LOCATION"].split(":")
    client = Client((host, int(port)))

    def executed() -> Counter[str]:
        stats = client.stats()
        return Counter({name: stats[name.encode()] for name in MEMCACHED_STATS})

    try:
        before = executed()
        yield
        for stat, calls in (executed() - before).items():
            name, write = MEMCACHED_STATS[stat]
            for _ in range(calls):
                note("memcached", name, write=write, detail=stat)
    finally:
        client.close()


# The counter ----------------------------------------------------------------------------


class count_storage(AbstractContextManager, AbstractAsyncContextManager):
    """
    Count the storage operations the block asks for; yield the ``StorageCount``.

    SQL is always watched, cache calls and files unless told not to (an engine must not
    touch a store it does not use either); Redis and memcached, which need their server
    running, when asked.
    """

    def __init__(
        self,
        *,
        redis: bool = False,
        memcached: bool = False,
        cache_alias: str | None = None,
        cache: bool = True,
        files: bool = True,
    ) -> None:
        self.count = StorageCount()
        self.watch_redis, self.watch_memcached = redis, memcached
        self.watch_cache, self.watch_files = cache, files
        self.cache_alias = cache_alias
        self.stack = ExitStack()
        # Counters report when their block ends; listed in STORES order.
        self.noted: dict[str, list[Operation]] = {store: [] for store in STORES}

    def note(self, store: str, name: str, *, write: bool, detail: str) -> None:
        self.noted[store].append(Operation(store, name, write, detail))

    def __enter__(self) -> StorageCount:
        with ExitStack() as stack:
            stack.enter_context(_count_sql(self.note))
            if self.watch_cache:
                alias = self.cache_alias or settings.SESSION_CACHE_ALIAS
                stack.enter_context(_count_cache(self.note, alias))
            if self.watch_files:
                stack.enter_context(_count_files(self.note))
            if self.watch_redis:
                stack.enter_context(_count_redis(self.note, self.count))
                stack.enter_context(_count_round_trips(self.count))
            if self.watch_memcached:
                stack.enter_context(_count_memcached(self.note))
            self.stack = stack.pop_all()
        return self.count

    def __exit__(self, *exc_info: Any) -> None:
        self.stack.__exit__(*exc_info)
        self.count.record([op for store in STORES for op in self.noted[store]])

    async def __aenter__(self) -> StorageCount:
        return await sync_to_async(self.__enter__)()

    async def __aexit__(self, *exc_info: Any) -> None:
        await sync_to_async(self.__exit__)(*exc_info)
