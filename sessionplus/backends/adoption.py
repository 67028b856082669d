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
on a taken key (an INSERT, a cache ``add``, the redis engine's ``SET NX``, an exclusive
file create). So two requests adopting one session end with one copy, and a session adopted or
changed meanwhile keeps its newer data.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeVar, cast

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

from sessionplus.backends.base import (
    CreateError,
    LifecycleHooks,
    ReadThrough,
    SessionPlusBase,
    is_valid_session_key,
)
from sessionplus.backends.cache import SessionStore as CacheStore
from sessionplus.backends.cached_db import SessionStore as CachedDBStore
from sessionplus.backends.db import SessionStore as DBStore
from sessionplus.backends.db import as_datetime, as_timestamp, delete_rows
from sessionplus.backends.file import SessionStore as FileStore
from sessionplus.backends.metadata import METADATA_FIELDS
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.conf import conf
from sessionplus.identifiers import log_id

if TYPE_CHECKING:
    from sessionplus.backends.redis import SessionStore as RedisStore

__all__ = [
    "FoundSession",
    "Moved",
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

logger = logging.getLogger(__name__)

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
        version = _django_file_version(path)
        if version is None:
            return None
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
        return now + cast("RedisStore", store).seconds_to_live()
    ttl = getattr(getattr(store, "_cache", None), "ttl", None)
    seconds: float | None = (
        ttl(store.cache_key) if isinstance(store, DjangoCacheStore) and callable(ttl) else None
    )
    if seconds:  # django-redis reports the entry's TTL
        return now + seconds
    # Django's cache API keeps no readable expiry: as if the session were saved now.
    return store.get_expiry_date().timestamp()


def _django_file_version(path: str) -> tuple[str, int, int] | None:
    # One open: a miss costs one file-system call, as a lookup in any other store.
    try:
        with open(path, "rb") as session_file:
            status = os.fstat(session_file.fileno())
            # sessionplus's files open with a header line; Django's signed data has none.
            if b"\n" in session_file.read():
                return None
    except FileNotFoundError:
        return None
    return path, status.st_ino, status.st_mtime_ns


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
        redis_class = cast("type[RedisStore]", store_class)
        return _unprefixed(redis_class.stored_keys(), redis_class.redis_key(""))
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


StoreT = TypeVar("StoreT", bound=SessionPlusBase)


def _copy(store_class: type[StoreT], found: FoundSession) -> StoreT:
    """Return a store of a sessionplus engine holding ``found`` as it is, ready to create it."""
    copy = store_class(found.session_key)
    copy.copied_expires_at = found.expires_at
    copy._session_cache = dict(found.data)
    metadata = found.metadata
    copy._metadata = {name: metadata[name] for name in METADATA_FIELDS if metadata.get(name)}
    copy.update_metadata(user_id=found.data.get(SESSION_KEY))
    return copy


def write_session(store_class: type[SessionBase], found: FoundSession) -> bool:
    """
    Create ``found`` in an engine with its key, data and expiry; False if the key is taken.

    A sessionplus engine keeps the metadata it can (the creation time, or now as first
    seen) and records the signed-in user; Django's engines keep data and expiry only.
    Raise TypeError / ValueError when the engine cannot store the data (see the data rule);
    a session past SESSIONPLUS_MAX_SIZE is stored as it is.
    """
    if issubclass(store_class, SessionPlusBase):
        store: SessionBase = _copy(store_class, found)
    elif issubclass(store_class, _DB_STORES):
        return bool(_insert_rows(store_class, [found]).written)
    elif issubclass(store_class, DjangoCacheStore):
        # Django's cache engine's cache, private, so absent from django-stubs.
        cache = store_class(found.session_key)._cache  # type: ignore[attr-defined]
        key = store_class.cache_key_prefix + found.session_key
        return bool(cache.add(key, found.data, _seconds_left(found)))
    else:  # Django's file engine dates the session by the file, set below; any other: from now
        store = store_class(found.session_key)
        store._session_cache = dict(found.data)  # type: ignore[attr-defined]
    if isinstance(store, (DjangoFileStore, FileStore)):
        return _write_file(store, found)
    try:
        store.save(must_create=True)
    except CreateError:
        return False
    return True


def _seconds_left(found: FoundSession) -> int:
    return max(1, math.ceil(found.expires_at - now_timestamp()))


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


def remove_session(store_class: type[SessionBase], found: FoundSession) -> bool:
    """
    Remove a session from the engine it was read from, unless it changed since.

    Return False when the copy that was read is no longer there to remove: it was ended
    (a logout) or replaced meanwhile. Engines that cannot tell say True.
    """
    store = store_class(found.session_key)
    if isinstance(found.version, datetime):
        rows = _rows(store_class).filter(session_key=found.session_key, expire_date=found.version)
        if not delete_rows(rows):
            return False
        if isinstance(store, _CACHED_DB_STORES):
            store.delete(found.session_key)
        return True
    if isinstance(found.version, tuple):
        path = found.version[0]
        # Not when replaced since (by a save, or by the move itself within one directory).
        if _version_of(path) == found.version:
            with suppress(FileNotFoundError):
                os.unlink(path)
                return True
        return os.path.exists(path)
    if isinstance(store, (DjangoCacheStore, CacheStore)):
        # The cache says whether the entry was there; sessionplus's redis engine cannot.
        cache = store._cache  # type: ignore[union-attr]
        return bool(cache.delete(store.cache_key_prefix + found.session_key))
    store.delete(found.session_key)
    return True


# Many at once ---------------------------------------------------------------------------

# Row pairs per DELETE: SQLite parses a chain of ORs as a tree at most 1000 deep.
_DELETE_CHUNK = 100


@dataclass
class Moved:
    """What ``move_batch`` did with each session of a batch."""

    written: list[FoundSession] = field(default_factory=list)
    # Already in the target (adopted or written meanwhile): kept as they are there.
    present: list[FoundSession] = field(default_factory=list)
    # Data the target cannot store (logged): left in the source.
    refused: list[FoundSession] = field(default_factory=list)


def move_batch(
    source_class: type[SessionBase], target_class: type[SessionBase], batch: list[FoundSession]
) -> Moved:
    """
    Write each session of ``batch`` to the target and remove it from the source.

    Between database engines a batch costs a few statements, not a few per session.
    A database source also loses the rows the target already had (a read-through holds
    the row it adopts, so the two never cross); other sources keep those, since a request
    adopting one removes it itself (and undoes its copy if the source was emptied first).
    """
    if issubclass(source_class, _DB_STORES):
        batch = _lock_unchanged_rows(source_class, batch)
    if issubclass(target_class, _DB_STORES):
        moved = _insert_rows(target_class, batch)
    else:
        moved = Moved()
        for found in batch:
            try:
                written = write_session(target_class, found)
            except (TypeError, ValueError) as exc:
                _refused(found, target_class, exc)
                moved.refused.append(found)
                continue
            (moved.written if written else moved.present).append(found)
    if issubclass(source_class, _DB_STORES):
        _delete_unchanged_rows(source_class, [*moved.written, *moved.present])
    else:
        for found in moved.written:
            remove_session(source_class, found)
    return moved


def _lock_unchanged_rows(store_class: Any, batch: list[FoundSession]) -> list[FoundSession]:
    """
    Lock the source rows of ``batch`` for the batch's transaction; return the unchanged.

    A request adopting one of them locks its row before writing the copy, as this does
    before writing any: the two queue on the source row and never deadlock on the target's.
    """
    keys = sorted(found.session_key for found in batch)
    locked = dict(
        _rows(store_class)
        .select_for_update()
        .filter(session_key__in=keys)
        .order_by("session_key")
        .values_list("session_key", "expire_date")
    )
    return [found for found in batch if locked.get(found.session_key) == found.version]


def _refused(found: FoundSession, target_class: type[SessionBase], exc: Exception) -> None:
    logger.warning(
        "Session %s not copied to %s: %s It stays where it was.",
        log_id(found.session_key),
        target_class.__module__,
        exc,
    )


def _insert_rows(store_class: Any, batch: list[FoundSession]) -> Moved:
    """Insert the sessions of ``batch`` the table lacks."""
    rows = _rows(store_class)
    keys = [found.session_key for found in batch]
    present = set(rows.filter(session_key__in=keys).values_list("session_key", flat=True))
    moved = Moved()
    new = []
    for found in batch:
        if found.session_key in present:
            moved.present.append(found)
            continue
        try:
            new.append(_row(store_class, found))
        except (TypeError, ValueError) as exc:
            _refused(found, store_class, exc)
            moved.refused.append(found)
            continue
        moved.written.append(found)
    # A key taken between the two statements (adopted meanwhile) keeps its row.
    rows.bulk_create(new, ignore_conflicts=True)
    return moved


def _row(store_class: Any, found: FoundSession) -> Any:
    if issubclass(store_class, DBStore):
        return _copy(store_class, found).create_model_instance(found.data)
    store = store_class(found.session_key)
    return store.model(
        session_key=found.session_key,
        session_data=store.encode(found.data),
        expire_date=as_datetime(found.expires_at),
    )


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


def adopt(
    store: SessionBase, session_key: str, load: Callable[[], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """
    Load ``session_key`` into ``store`` after its own load missed, adopting it if needed.

    Return the session's data, or {} (and no key) when neither engine has it. Whatever
    happened (this request adopted it, a concurrent one or a move did first, or it is
    nowhere), the session is loaded back from the current store with ``load`` (default:
    ``store.load``), so every engine keeps one way to load. A key in neither store so
    costs a lookup there and a second read here: a move or a concurrent adoption may have
    written it here, then removed it there, between this request's two reads.
    """
    previous = previous_engine()
    if previous is None or not is_valid_session_key(session_key):
        return {}
    found = read_session(previous, session_key)
    if found is not None:
        _adopt_found(previous, type(store), found)
    store._session_key = session_key
    return (load or store.load)()


def _adopt_found(
    previous: type[SessionBase], current: type[SessionBase], found: FoundSession
) -> None:
    """
    Copy ``found`` into the current engine, then remove it from the previous one.

    A logout ends a session in the previous engine first, then in the current one. So a
    logout that ran while the copy was made either kept the source row locked until the
    copy was done (database engines: it then ends the copy), or removed the source
    before this step came to remove it: the copy is then undone here.
    """
    with _source_held(previous, found) as held:
        if not held:
            return  # ended, changed or moved since it was read: load what is there now
        try:
            written = write_session(current, found)
        except (TypeError, ValueError) as exc:
            _refused(found, current, exc)
            return
        if written and not remove_session(previous, found):
            current(found.session_key).delete(found.session_key)


@contextmanager
def _source_held(store_class: type[SessionBase], found: FoundSession) -> Iterator[bool]:
    """
    Hold the source of ``found`` while it is adopted; yield whether it is still as read.

    A database row is locked until the copy is written and the row removed (SELECT ...
    FOR UPDATE): a logout, a save on a server not yet switched, or a move of the same row
    waits, then finds it gone. Other stores cannot be held.
    """
    if not isinstance(found.version, datetime):
        yield True
        return
    rows = _rows(store_class)
    with transaction.atomic(using=rows.db):
        held = rows.select_for_update().filter(
            session_key=found.session_key, expire_date=found.version
        )
        yield bool(list(held.values_list("session_key", flat=True)))


async def aadopt(
    store: SessionBase, session_key: str, load: Callable[[], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Do what ``adopt()`` does; a one-time step per session, so run in a thread."""
    return await sync_to_async(adopt)(store, session_key, load)


def end_in_previous(store: SessionBase) -> None:
    """End a session in the previous engine first, so a logout during a switch is final."""
    previous = previous_engine()
    key = store.session_key
    if previous is not None and is_valid_session_key(key):
        previous(key).delete(key)


async def aend_in_previous(store: SessionBase) -> None:
    await sync_to_async(end_in_previous)(store)


# The load and flush frame (backends/base.py) looks a missing key up here, and ends a
# session here first; it cannot import this module, which imports it and every engine.
LifecycleHooks.read_through = ReadThrough(adopt, aadopt, end_in_previous, aend_in_previous)
