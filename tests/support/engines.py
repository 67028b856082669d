"""
Every sessionplus engine, and one way to count what any of them asks of its storage.

Hardening tests run per engine from ``ENGINES``. ``count_storage()`` watches every store
at once, on the real thing (spies, not fakes): SQL statements, cache calls, file-system
calls under ``SESSION_FILE_PATH`` (an audit hook) and Redis commands (the server's own
statistics), each split into reads and writes.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from sessionplus.backends.base import SessionPlusBase
from tests.support.counting import count_cache_calls


@dataclass(frozen=True)
class Engine:
    """One engine under test: its module and which stores it keeps sessions in."""

    name: str
    stores: tuple[str, ...]  # any of "sql", "cache", "file", "redis"; none for cookies

    @property
    def module(self) -> str:
        return f"sessionplus.backends.{self.name}"

    @property
    def store_class(self) -> type[SessionPlusBase]:
        return import_module(self.module).SessionStore

    @property
    def server_side(self) -> bool:
        return bool(self.stores)


ENGINES = {
    engine.name: engine
    for engine in [
        Engine("db", stores=("sql",)),
        Engine("cached_db", stores=("sql", "cache")),
        Engine("cache", stores=("cache",)),
        Engine("file", stores=("file",)),
        Engine("redis", stores=("redis",)),
        Engine("signed_cookies", stores=()),
    ]
}


# A well-formed key no engine ever issued.
UNKNOWN_KEY = "0123456789abcdefghijklmnopqrstuv"


class EngineTestMixin:
    """Run a Django test case with ``engine`` configured and the hardening views routed."""

    engine: Engine

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        overridden = override_settings(
            SESSION_ENGINE=self.engine.module, ROOT_URLCONF="tests.hardening_urls"
        )
        overridden.enable()
        self.addCleanup(overridden.disable)  # type: ignore[attr-defined]
        caches[settings.SESSION_CACHE_ALIAS].clear()
        # Tests measure the steady state: the first read of a fresh store may write an
        # engine's bookkeeping (cached_db's cache generation), never a session.
        self.store(UNKNOWN_KEY).get("warm-up")

    def store(self, session_key: str | None = None) -> SessionPlusBase:
        return self.engine.store_class(session_key)

    def saved(self, **data: Any) -> SessionPlusBase:
        session = self.store()
        session.update(data)
        session.save()
        return session

    async def asaved(self, **data: Any) -> SessionPlusBase:
        session = self.store()
        await session.aupdate(data)
        await session.asave()
        return session

    def stored(self, session: SessionPlusBase) -> dict[str, Any]:
        """Return what a fresh store loads for ``session``'s key."""
        return dict(self.store(session.session_key).items())


# Counting -------------------------------------------------------------------------------

CACHE_WRITES = frozenset(
    {"add", "set", "touch", "delete", "set_many", "delete_many", "incr", "decr", "get_or_set"}
)
SQL_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_FILE_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_FILE_READ_EVENTS = frozenset({"os.listdir", "os.scandir"})
_FILE_WRITE_EVENTS = frozenset(
    {"os.remove", "os.rename", "os.utime", "os.mkdir", "os.rmdir", "os.chmod", "os.truncate"}
)


@dataclass
class StorageCount:
    """Storage operations seen, per store, split into reads and writes."""

    reads: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)

    def note(self, store: str, *, write: bool, what: str) -> None:
        (self.writes if write else self.reads)[store] += 1
        self.log.append(f"{store} {'write' if write else 'read'}: {what}")

    @property
    def total(self) -> int:
        return sum(self.reads.values()) + sum(self.writes.values())

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())


# sys.addaudithook() cannot be undone: one hook for the process, active only while a
# count_storage() block has set a recorder.
_file_recorder: StorageCount | None = None
_audit_hook_installed = False


def _under_session_dir(path: Any) -> bool:
    try:
        path = os.fsdecode(path)
    except TypeError:  # a file descriptor
        return False
    return os.path.abspath(path).startswith(os.path.abspath(settings.SESSION_FILE_PATH))


def _audit(event: str, args: tuple[Any, ...]) -> None:
    recorder = _file_recorder
    if recorder is None:
        return
    if event == "open" and _under_session_dir(args[0]):
        mode, flags = args[1], args[2]
        write = bool(flags & _FILE_WRITE_FLAGS) or any(c in (mode or "") for c in "wax+")
        recorder.note("file", write=write, what=f"open {args[0]}")
    elif event in _FILE_READ_EVENTS | _FILE_WRITE_EVENTS and _under_session_dir(args[0]):
        recorder.note("file", write=event in _FILE_WRITE_EVENTS, what=f"{event} {args[0]}")


@contextmanager
def _count_files(count: StorageCount) -> Iterator[None]:
    global _file_recorder, _audit_hook_installed
    if not _audit_hook_installed:
        sys.addaudithook(_audit)
        _audit_hook_installed = True
    _file_recorder = count
    try:
        yield
    finally:
        _file_recorder = None


@contextmanager
def _count_sql(count: StorageCount) -> Iterator[None]:
    with CaptureQueriesContext(connection) as queries:
        yield
    for query in queries.captured_queries:
        sql = query["sql"].lstrip().upper()
        count.note("sql", write=sql.startswith(SQL_WRITES), what=query["sql"][:120])


@contextmanager
def _count_cache(count: StorageCount) -> Iterator[None]:
    with count_cache_calls(settings.SESSION_CACHE_ALIAS) as calls:
        yield
    for name in calls:
        write = name in CACHE_WRITES or name[1:] in CACHE_WRITES  # "aset" is "set"
        count.note("cache", write=write, what=name)


# A new connection's handshake, and this counter's own INFO: not session operations.
CONNECTION_COMMANDS = ("info", "hello", "client", "auth", "select", "ping")


def _redis_stats(client: Any) -> tuple[Counter[str], int]:
    commands = Counter(
        {
            name.removeprefix("cmdstat_"): stats["calls"]
            for name, stats in client.info("commandstats").items()
        }
    )
    return commands, client.info("persistence")["rdb_changes_since_last_save"]


@contextmanager
def _count_redis(count: StorageCount) -> Iterator[None]:
    # The server's own counters: commands by name, and "changes since last save", which
    # every write (a Lua script's included) bumps and no read does.
    from django_redis import get_redis_connection

    client = get_redis_connection(settings.SESSIONPLUS_REDIS_ALIAS)
    commands_before, changes_before = _redis_stats(client)
    yield
    commands_after, changes_after = _redis_stats(client)
    commands = commands_after - commands_before
    for name in CONNECTION_COMMANDS:
        del commands[name]
    for name, calls in commands.items():
        for _ in range(calls):
            count.note("redis", write=False, what=name)
    for _ in range(changes_after - changes_before):
        count.note("redis", write=True, what="change")


_COUNTERS = {"sql": _count_sql, "cache": _count_cache, "file": _count_files}


@contextmanager
def count_storage(engine: Engine) -> Iterator[StorageCount]:
    """
    Count storage operations while the block runs.

    SQL, cache and files are always watched (an engine must not touch a store it does
    not use either); Redis only for engines that use it. For Redis, every command the
    server ran counts as a read (a Lua script's own commands included, writes too) and
    every change it made to the data as a write.
    """
    count = StorageCount()
    with ExitStack() as stack:
        for counter in _COUNTERS.values():
            stack.enter_context(counter(count))
        if "redis" in engine.stores:
            stack.enter_context(_count_redis(count))
        yield count


@asynccontextmanager
async def acount_storage(engine: Engine) -> AsyncIterator[StorageCount]:
    """Do what ``count_storage()`` does around async code."""
    # The database connection belongs to the thread sync_to_async runs ORM calls in.
    counting = count_storage(engine)
    count = await sync_to_async(counting.__enter__)()
    try:
        yield count
    finally:
        await sync_to_async(counting.__exit__)(None, None, None)


# Stored payloads, for tampering --------------------------------------------------------


def _text_record_payload(text: str) -> tuple[str, str]:
    # Cache and file records are a JSON header line, then the signed data.
    header, _, payload = text.partition("\n")
    return header, payload


def _cache_entry(session_key: str) -> tuple[Any, str]:
    from sessionplus.backends.cache import KEY_PREFIX

    return caches[settings.SESSION_CACHE_ALIAS], KEY_PREFIX + session_key


def _file_path(session_key: str) -> str:
    return os.path.join(settings.SESSION_FILE_PATH, settings.SESSION_COOKIE_NAME + session_key)


def _redis_field(session_key: str) -> tuple[Any, str, str]:
    from django_redis import get_redis_connection

    from sessionplus.backends.redis import DATA, SessionStore

    client = get_redis_connection(settings.SESSIONPLUS_REDIS_ALIAS)
    key = SessionStore.redis_key(session_key)
    fields = sorted(name.decode() for name in client.hkeys(key) if name.startswith(DATA.encode()))
    return client, key, fields[0]


def _session_rows(engine: Engine, session_key: str) -> Any:
    return engine.store_class.get_model_class().objects.filter(session_key=session_key)


def read_payload(engine: Engine, session_key: str) -> str:
    """Return the signed session data as ``engine`` stored it (on Redis: one data field's)."""
    if engine.name in ("db", "cached_db"):
        return _session_rows(engine, session_key).get().session_data
    if engine.name == "cache":
        cache, key = _cache_entry(session_key)
        return _text_record_payload(cache.get(key))[1]
    if engine.name == "file":
        with open(_file_path(session_key), encoding="ascii") as session_file:
            return _text_record_payload(session_file.read())[1]
    if engine.name == "redis":
        client, key, name = _redis_field(session_key)
        return client.hget(key, name).decode()
    if engine.name == "signed_cookies":
        return session_key
    raise NotImplementedError(engine.name)


def tamper(engine: Engine, session_key: str, change: Callable[[str], str]) -> str:
    """
    Apply ``change`` to a session's signed data, outside the app; return the key to send.

    Server-side engines keep the key and get the changed data in their record, the rest
    of the record left alone; for signed cookies the changed data is the new cookie.
    """
    payload = change(read_payload(engine, session_key))
    if engine.name in ("db", "cached_db"):
        _session_rows(engine, session_key).update(session_data=payload)
        if engine.name == "cached_db":
            # The cache holds a copy ([generation, record text]): change it alike.
            cache, key = caches[settings.SESSION_CACHE_ALIAS], engine.store_class.cache_key_prefix
            generation, text = cache.get(key + session_key)
            header = _text_record_payload(text)[0]
            cache.set(key + session_key, [generation, f"{header}\n{payload}"], 3600)
    elif engine.name == "cache":
        cache, key = _cache_entry(session_key)
        header = _text_record_payload(cache.get(key))[0]
        cache.set(key, f"{header}\n{payload}", 3600)
    elif engine.name == "file":
        with open(_file_path(session_key), "r+", encoding="ascii") as session_file:
            header = _text_record_payload(session_file.read())[0]
            session_file.seek(0)
            session_file.truncate()
            session_file.write(f"{header}\n{payload}")
    elif engine.name == "redis":
        client, key, name = _redis_field(session_key)
        client.hset(key, name, payload.encode())
    elif engine.name == "signed_cookies":
        return payload
    else:
        raise NotImplementedError(engine.name)
    return session_key


def flip_byte(position: int) -> Callable[[str], str]:
    """
    Return a change of the character at ``position`` to another one of its kind.

    Letters change case, digits and ``-``/``_`` turn into their neighbours: base64 stays
    base64, so the change is caught by the signature, not by the shape of the value.
    """

    def changed(char: str) -> str:
        if char.isalpha():
            return char.swapcase()
        if char.isdigit():
            return str((int(char) + 1) % 10)
        return {"-": "_", "_": "-"}.get(char) or chr(ord(char) ^ 0x01)

    def change(text: str) -> str:
        return text[:position] + changed(text[position]) + text[position + 1 :] if text else text

    return change


def planted_session(engine: Engine, data: dict[str, Any]) -> str:
    """
    Store ``data`` as a session exactly as given and return its key (its cookie value).

    The data rule keeps the app from writing a corrupt ``_session_expiry``; planting one
    stands for a record written by an older version or altered by someone with the
    signing key. The expiry the engine stores is the default one.
    """
    engine_class = engine.store_class

    class Planter(engine_class):  # type: ignore[misc, valid-type]
        def get_expiry_date(self, **kwargs: Any) -> Any:
            return super().get_expiry_date(**{**kwargs, "expiry": None})

        def get_expiry_age(self, **kwargs: Any) -> Any:
            return super().get_expiry_age(**{**kwargs, "expiry": None})

    # key_salt names the class: the planted data must verify as the engine's own.
    Planter.__qualname__ = engine_class.__qualname__
    planter = Planter()
    planter._session_cache = dict(data)
    planter.save()
    return planter.session_key
