"""
Sessions of another engine: read with their expiry, written without overwriting, moved.

Two users of the same three steps (``read_session``, ``write_session``, ``remove_session``):

- While ``SESSIONPLUS_PREVIOUS_ENGINE`` is set, a well-formed key missing from the current
  store is looked up in the previous engine; a live session found there is *adopted*
  (``adopt``): written into the current store with the same key, data and expiry (created
  now, as first seen), then removed from the previous store.
- ``manage.py migratesessions_plus`` moves every session between any two engines, Django's
  or sessionplus's, in either direction (``live_sessions`` enumerates the source).

A write never overwrites: it is the target store's own create, which raises CreateError
on a taken key (an INSERT, a cache ``add``, the Redis create script, an exclusive file
create). So two requests adopting one session end with one copy, and a session adopted or
changed meanwhile keeps its newer data.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.cache import SessionStore as DjangoCacheStore
from django.contrib.sessions.backends.cached_db import SessionStore as DjangoCachedDBStore
from django.contrib.sessions.backends.db import SessionStore as DjangoDBStore
from django.contrib.sessions.backends.file import SessionStore as DjangoFileStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connections, router, transaction
from django.db.models import QuerySet
from django.utils import timezone

from sessionplus.backends.base import CreateError, SessionPlusBase, is_valid_session_key
from sessionplus.backends.cached_db import SessionStore as CachedDBStore
from sessionplus.backends.db import SessionStore as DBStore
from sessionplus.backends.db import as_datetime, as_timestamp, delete_rows
from sessionplus.backends.file import SessionStore as FileStore
from sessionplus.backends.metadata import METADATA_FIELDS
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.conf import conf

if TYPE_CHECKING:
    from sessionplus.backends.redis import SessionStore as RedisStore

__all__ = [
    "FoundSession",
    "aadopt",
    "adopt",
    "aend_in_previous",
    "end_in_previous",
    "engine_class",
    "live_sessions",
    "move_batch",
    "read_session",
    "remove_session",
    "write_session",
]

_DB_STORES = (DjangoDBStore, DBStore)
_CACHED_DB_STORES = (DjangoCachedDBStore, CachedDBStore)


@dataclass(frozen=True)
class FoundSession:
    """A live session read from some engine: its data, expiry and any metadata."""

    session_key: str
    data: dict[str, Any]
    expires_at: float
    # What sessionplus recorded (empty when read from one of Django's engines).
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # What the session was read from, to tell whether it changed since: a database row's
    # expire_date (every save moves it), a session file's inode and mtime (every save
    # replaces the file). The copy read is removed or replaced only while it is unchanged.
    version: Any = None


@functools.cache
def engine_class(engine: str) -> type[SessionBase]:
    """Return the ``SessionStore`` of a ``SESSION_ENGINE``-style dotted path."""
    store_class: type[SessionBase] = import_module(engine).SessionStore
    return store_class


def previous_engine() -> type[SessionBase] | None:
    """Return the store class of ``SESSIONPLUS_PREVIOUS_ENGINE``, or None when unset."""
    engine = conf.SESSIONPLUS_PREVIOUS_ENGINE
    return engine_class(engine) if engine else None


# Reading --------------------------------------------------------------------------------


def read_session(store_class: type[SessionBase], session_key: str) -> FoundSession | None:
    """Return the live session ``session_key`` of an engine with its expiry, or None."""
    store = store_class(session_key)
    if isinstance(store, _DB_STORES):
        # The row, not the cache (cached_db): it holds the expiry.
        row = _rows(store_class).filter(session_key=session_key, expire_date__gt=timezone.now())
        found = list(row.values(*_columns(store_class)))
        return _from_row(store, found[0]) if found else None
    if isinstance(store, SessionPlusBase) and type(store)._read is not SessionPlusBase._read:
        path = store._key_to_file(session_key) if isinstance(store, FileStore) else None
        version = None if path is None else _version_of(path)
        record = store._read(session_key)
        if record is None or record.expires_at <= now_timestamp():
            return None
        data = store.decode_or_none(record.data)
        if data is None:
            return None
        return FoundSession(session_key, data, record.expires_at, record.metadata, version)
    version = None
    if isinstance(store, DjangoFileStore):
        # Private to Django's file engine, so absent from django-stubs.
        path = store._key_to_file(session_key)  # type: ignore[attr-defined]
        if _is_record_file(path):
            return None  # sessionplus's file under the same name: not Django's session
        version = _version_of(path)
    data = store.load()
    # Django's file engine answers an expired session with a new, empty one.
    if store.session_key != session_key:
        return None
    metadata = store._metadata if isinstance(store, SessionPlusBase) else {}
    expires_at = _expiry_of_loaded(store, session_key, data)
    return FoundSession(session_key, data, expires_at, dict(metadata), version)


def _expiry_of_loaded(store: SessionBase, session_key: str, data: dict[str, Any]) -> float:
    """Return when a session an engine just loaded expires."""
    now = now_timestamp()
    if isinstance(store, DjangoFileStore):
        # Django's file engine counts the expiry from the file's modification time; its
        # private _expiry_date() is absent from django-stubs.
        expiry = store._expiry_date(data)  # type: ignore[attr-defined]
        return now + store.get_expiry_age(expiry=expiry)
    if isinstance(store, SessionPlusBase):  # the redis engine: the key's TTL is the expiry
        redis_store = cast("RedisStore", store)
        key = redis_store.redis_key(session_key)
        milliseconds: int = redis_store._run(lambda client: client.pttl(key))
        return now + milliseconds / 1000
    ttl = getattr(getattr(store, "_cache", None), "ttl", None)
    seconds: float | None = (
        ttl(store.cache_key) if isinstance(store, DjangoCacheStore) and callable(ttl) else None
    )
    if seconds:  # django-redis reports the entry's TTL
        return now + seconds
    # Django's cache API keeps no readable expiry: as if the session were saved now.
    return store.get_expiry_date().timestamp()


def _is_record_file(path: str) -> bool:
    # sessionplus's files open with a header line; Django's signed data has no newline.
    try:
        with open(path, "rb") as session_file:
            return b"\n" in session_file.read()
    except FileNotFoundError:
        return False


def _version_of(path: str) -> tuple[str, int, int] | None:
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return path, status.st_ino, status.st_mtime_ns


def _rows(store_class: Any) -> QuerySet[AbstractBaseSession]:
    model: type[AbstractBaseSession] = store_class.get_model_class()
    return model._base_manager.using(router.db_for_write(model))


def _columns(store_class: Any) -> list[str]:
    columns = ["session_key", "session_data", "expire_date"]
    if issubclass(store_class, DBStore):
        columns += store_class._metadata_columns()
    return columns


def _from_row(store: SessionBase, row: Mapping[str, Any]) -> FoundSession | None:
    if isinstance(store, DBStore):
        stored = store._stored(row)
        data = store.decode_or_none(stored.data)
        metadata = stored.metadata
    else:
        data = store.decode(row["session_data"])
        metadata = {}
    if data is None:
        return None
    expire_date = row["expire_date"]
    return FoundSession(row["session_key"], data, as_timestamp(expire_date), metadata, expire_date)


def live_sessions(
    store_class: type[SessionBase], batch_size: int
) -> Iterator[list[FoundSession]] | None:
    """
    Return the live sessions of an engine in batches, or None if it cannot list them.

    Database engines read one batch per statement, in key order from where the last batch
    ended; other engines list keys (files, Redis keys, a cache that can scan) and read each.
    """
    if issubclass(store_class, _DB_STORES):
        return _live_rows(store_class, batch_size)
    keys = _stored_keys(store_class)
    return None if keys is None else _read_each(store_class, keys, batch_size)


def _live_rows(store_class: Any, batch_size: int) -> Iterator[list[FoundSession]]:
    store = store_class()
    columns = _columns(store_class)
    after = ""
    while True:
        rows = list(
            _rows(store_class)
            .filter(session_key__gt=after, expire_date__gt=timezone.now())
            .order_by("session_key")
            .values(*columns)[:batch_size]
        )
        if not rows:
            return
        after = rows[-1]["session_key"]
        found = (_from_row(store, row) for row in rows if is_valid_session_key(row["session_key"]))
        yield [session for session in found if session is not None]


def _stored_keys(store_class: type[SessionBase]) -> Iterator[str] | None:
    store = store_class()
    if isinstance(store, (DjangoFileStore, FileStore)):
        return _file_keys(store.storage_path, store.file_prefix)
    if hasattr(store_class, "redis_key"):
        redis_store = cast("RedisStore", store)
        prefix = redis_store.redis_key("")
        keys = redis_store._run(
            lambda client: list(client.scan_iter(match=prefix + "*", count=1000))
        )
        return _unprefixed(keys, prefix)
    iter_keys = getattr(getattr(store, "_cache", None), "iter_keys", None)
    cache_prefix = getattr(store, "cache_key_prefix", None)
    if cache_prefix is None or iter_keys is None:
        return None
    # django-redis scans the server; Django's own cache API cannot list keys.
    return _unprefixed(iter_keys(cache_prefix + "*"), cache_prefix)


def _file_keys(path: str, prefix: str) -> Iterator[str]:
    with os.scandir(path) as entries:
        names = [entry.name for entry in entries]
    return _unprefixed(names, prefix)


def _unprefixed(names: Any, prefix: str) -> Iterator[str]:
    for name in names:
        name = name.decode() if isinstance(name, bytes) else name
        key = name[len(prefix) :] if name.startswith(prefix) else ""
        if is_valid_session_key(key):
            yield key


def _read_each(
    store_class: type[SessionBase], keys: Iterator[str], batch_size: int
) -> Iterator[list[FoundSession]]:
    batch: list[FoundSession] = []
    for key in keys:
        found = read_session(store_class, key)  # None: expired or removed meanwhile
        if found is not None:
            batch.append(found)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


# Writing and removing ---------------------------------------------------------------------


def batch_transaction(*store_classes: type[SessionBase]) -> ExitStack:
    """
    Return one transaction per database the engines use, so a batch commits once.

    A session written in it and then read by a concurrent request's adoption waits for the
    commit (the INSERT of the same key blocks), then finds the copy: CreateError, reload.
    """
    stack = ExitStack()
    aliases = {
        router.db_for_write(store_class.get_model_class())
        for store_class in store_classes
        if issubclass(store_class, _DB_STORES)
    }
    for alias in sorted(aliases):
        stack.enter_context(transaction.atomic(using=alias))
    return stack


@functools.cache
def _writer_class(store_class: type[SessionBase]) -> type[SessionBase]:
    class Writer(store_class):  # type: ignore[valid-type,misc]
        """Write one session with the expiry it already has, not one counted from now."""

        expires_at: float

        def get_expiry_date(self, **kwargs: Any) -> datetime:
            return as_datetime(self.expires_at)

        def get_expiry_age(self, **kwargs: Any) -> int:
            return max(1, math.ceil(self.expires_at - now_timestamp()))

    # Django derives the signing salt from the class's qualified name: keep the engine's.
    Writer.__qualname__ = store_class.__qualname__
    return Writer


def _writer(store_class: type[SessionBase], found: FoundSession) -> Any:
    """Return a store of the engine holding ``found``, ready to write it as it is."""
    writer: Any = _writer_class(store_class)(found.session_key)
    writer.expires_at = found.expires_at
    writer._session_cache = dict(found.data)
    if isinstance(writer, SessionPlusBase):
        writer._metadata = {
            name: found.metadata[name]
            for name in METADATA_FIELDS
            if found.metadata.get(name) is not None
        }
        writer.update_metadata(user_id=found.data.get(SESSION_KEY))
    return writer


def write_session(store_class: type[SessionBase], found: FoundSession) -> bool:
    """
    Create ``found`` in an engine with its key, data and expiry; False if the key is taken.

    A sessionplus engine keeps the metadata it can (the creation time, or now as first
    seen) and records the signed-in user; Django's engines keep data and expiry only.
    """
    writer = _writer(store_class, found)
    if isinstance(writer, (DjangoFileStore, FileStore)):
        return _write_file(writer, found)
    try:
        writer.save(must_create=True)
    except CreateError:
        return False
    return True


def _write_file(writer: Any, found: FoundSession) -> bool:
    """
    Write a session file; replace the file it was read from if that is the same file.

    Django's and sessionplus's file engines name a session's file alike, so a move within
    one directory replaces the old engine's file in place, and only while it is the one
    that was read (a save made meanwhile replaced it, an adoption too).
    """
    destination = writer._key_to_file(found.session_key)
    with tempfile.TemporaryDirectory(prefix=".moving-", dir=writer.storage_path) as staging:
        writer.storage_path = staging
        writer.save(must_create=True)
        staged = writer._key_to_file(found.session_key)
        if isinstance(writer, DjangoFileStore):
            # Django's file engine counts the expiry from the file's modification time.
            modified = found.expires_at - writer.get_session_cookie_age()
            os.utime(staged, (modified, modified))
        if not (isinstance(found.version, tuple) and found.version[0] == destination):
            try:
                os.link(staged, destination)  # fails when the name exists: create-if-absent
            except FileExistsError:
                return False
            return True
        if _version_of(destination) != found.version:
            return False  # saved, adopted or ended since it was read
        # The window between this check and the replace is two system calls wide.
        os.replace(staged, destination)
    return True


def remove_session(store_class: type[SessionBase], found: FoundSession) -> None:
    """Remove a session from the engine it was read from, unless it changed since."""
    store = store_class(found.session_key)
    if isinstance(found.version, datetime):
        rows = _rows(store_class).filter(session_key=found.session_key, expire_date=found.version)
        if not delete_rows(rows) or not isinstance(store, _CACHED_DB_STORES):
            return
    elif isinstance(found.version, tuple):
        path = found.version[0]
        # Not when replaced since (by a save, or by the move itself within one directory).
        if _version_of(path) == found.version:
            with suppress(FileNotFoundError):
                os.unlink(path)
        return
    store.delete(found.session_key)


# Many at once ---------------------------------------------------------------------------

# Row pairs per DELETE: SQLite parses a chain of ORs as a tree at most 1000 deep.
_DELETE_CHUNK = 100


def move_batch(
    source_class: type[SessionBase], target_class: type[SessionBase], batch: list[FoundSession]
) -> tuple[int, int]:
    """
    Write each session of ``batch`` to the target and remove it from the source.

    Return how many were written and how many the target already had (kept as they are).
    Between database engines a batch costs a few statements, not a few per session.
    """
    if issubclass(target_class, _DB_STORES):
        written, present = _insert_rows(target_class, batch)
    else:
        written = sum(write_session(target_class, found) for found in batch)
        present = len(batch) - written
    if issubclass(source_class, _DB_STORES):
        _delete_unchanged_rows(source_class, batch)
    else:
        for found in batch:
            remove_session(source_class, found)
    return written, present


def _insert_rows(store_class: Any, batch: list[FoundSession]) -> tuple[int, int]:
    rows = _rows(store_class)
    keys = [found.session_key for found in batch]
    present = set(rows.filter(session_key__in=keys).values_list("session_key", flat=True))
    new = [
        _writer(store_class, found).create_model_instance(found.data)
        for found in batch
        if found.session_key not in present
    ]
    # A key taken between the two statements (adopted meanwhile) keeps its row.
    rows.bulk_create(new, ignore_conflicts=True)
    return len(new), len(present)


def _delete_unchanged_rows(store_class: Any, batch: list[FoundSession]) -> None:
    model = store_class.get_model_class()
    connection = connections[router.db_for_write(model)]
    table = connection.ops.quote_name(model._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    # Plain SQL: building these conditions as Q objects costs more than running them.
    with connection.cursor() as cursor:
        for start in range(0, len(batch), _DELETE_CHUNK):
            chunk = batch[start : start + _DELETE_CHUNK]
            unchanged = " OR ".join(["(session_key = %s AND expire_date = %s)"] * len(chunk))
            params = [value for f in chunk for value in (f.session_key, adapt(f.version))]
            cursor.execute(f"DELETE FROM {table} WHERE {unchanged}", params)
    keys = [found.session_key for found in batch]
    # Entries of rows that changed instead go too: the cache refills from the row.
    if issubclass(store_class, DjangoCachedDBStore):
        store_class()._cache.delete_many([store_class.cache_key_prefix + key for key in keys])
    elif issubclass(store_class, CachedDBStore):
        store_class.session_cache().evict(keys)


# Read-through ---------------------------------------------------------------------------


def adopt(store: SessionPlusBase, session_key: str) -> dict[str, Any]:
    """
    Load ``session_key`` into ``store`` after its own load missed, adopting it if needed.

    Return the session's data, or {} (and no key) when neither engine has it. Whatever
    happened (this request adopted it, a concurrent one did first, or it is nowhere), the
    session is loaded back from the current store, so every engine keeps one way to load.
    That costs a second read of the current store when a key is in neither store: a
    concurrent request may have adopted it between the two misses.
    """
    previous = previous_engine()
    if previous is None or not is_valid_session_key(session_key):
        return {}
    found = read_session(previous, session_key)
    if found is not None and write_session(type(store), found):
        remove_session(previous, found)
    store._session_key = session_key
    return store.load()


async def aadopt(store: SessionPlusBase, session_key: str) -> dict[str, Any]:
    """Do what ``adopt()`` does; a one-time step per session, so run in a thread."""
    return await sync_to_async(adopt)(store, session_key)


def end_in_previous(session_key: str | None) -> None:
    """End a session in the previous engine too, so a logout during a switch is final."""
    previous = previous_engine()
    if previous is not None and is_valid_session_key(session_key):
        previous(session_key).delete(session_key)


async def aend_in_previous(session_key: str | None) -> None:
    await sync_to_async(end_in_previous)(session_key)
