"""
Cached, database-backed sessions: the database holds every session, the cache a copy.

Reads come from the cache; every write goes to the database first, then to the cache
(write-through). When the cache fails, reads fall back to the database and writes still
reach it; a warning is logged.

A deleted session must never come back from a stale cache entry. Three rules see to it:

- Deleting writes an *end marker* under its own cache key (and over the entry) before
  the row goes. A load that finds one stops there, so a save or a cache fill racing the
  delete cannot revive the session by writing its entry after the marker. When the cache
  does not take the marker, the delete raises ``SessionStoreUnavailable`` (a logout
  answers 503) and the row stays: no logout looks successful while other processes
  could still serve the session.
- Every entry carries the cache's *generation*, a random token stored in the cache and
  read with the entry in the same call. Only an entry of the current generation counts.
  The token is a 63-bit integer: django-redis stores an integer as its digits, which it
  reads back without the failed ``int()`` and the unpickling a string costs (about 19,000
  CPU instructions on every read).
- A process whose write to the cache failed (the database changed, the cache did not, so
  any entry may now be stale) replaces the generation before it uses the cache again.
  That voids every entry written before the outage at once, end markers it could not
  write included. The generation is never derived from absence: a cache that lost it
  gets a new random one, so an old entry can never become current again.

What no design without a database read per request can promise: a process that could
still reach the cache, while one that *saved* the session could not, serves the older
data until the saving process (or any other whose cache write failed) reaches the cache
again. An outage of the cache itself, seen by everyone, is covered.
"""

from __future__ import annotations

import enum
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.db.models import QuerySet

from sessionplus.backends.base import SessionPlusBase, is_valid_session_key
from sessionplus.backends.cache_alias import CacheAliasStore, lean_get_many, lean_route
from sessionplus.backends.db import SessionStore as DBStore
from sessionplus.backends.db import as_timestamp, delete_rows
from sessionplus.backends.record import StoredSession
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.cleanup import CleanupBatch, delete_expired_rows
from sessionplus.conf import conf
from sessionplus.exceptions import SessionStoreUnavailable

KEY_PREFIX = "sessionplus.cached_db:"
ENDED = "ended"
# An entry lives at most a day (a longer session is read back from the database once a
# day); an end marker outlives any entry a request racing the delete could write.
MAX_ENTRY_TTL = 24 * 60 * 60
END_MARKER_TTL = MAX_ENTRY_TTL + 60 * 60

logger = logging.getLogger(__name__)
# Where Django's cached_db engine reports a failed cache write: monitoring keys on it.
django_logger = logging.getLogger("django.contrib.sessions")

# Per process and cache alias: the generation last seen, and the aliases a write-through
# failed on since the generation was last replaced.
_generations: dict[str, int | None] = {}
_unsure: set[str] = set()

_FAILED = object()

# Per key prefix (a project's subclass may have its own): the SessionCache of the cache
# object a store was last built with (``caches`` hands each thread its own, and a new one
# after a settings change).
_sides: dict[str, SessionCache] = {}


# What add() and set() return when they stored the value: True (add; django-redis's set),
# None (set on Django's own cache backends).
_STORED = (True, None)


def new_generation() -> int:
    """Return a random generation token."""
    return secrets.randbits(63)


class Found(enum.Enum):
    """What the cache knows about a session."""

    CURRENT = "an entry of the current generation"
    ENDED = "an end marker"
    ABSENT = "nothing"
    STALE = "an entry of an older generation, or a damaged one"
    UNREACHABLE = "nothing: the cache failed"


class SessionCache:
    """The cache half of cached_db on one ``CACHES`` alias."""

    def __init__(self, alias: str, prefix: str, cache: BaseCache | None = None) -> None:
        self.alias = alias
        self.cache = caches[alias] if cache is None else cache
        self.prefix = prefix
        self.generation_key = prefix + "generation"

    @classmethod
    def of(cls, alias: str, prefix: str, cache: BaseCache) -> SessionCache:
        """Return the SessionCache of ``cache``, built once per cache object and prefix."""
        known = _sides.get(prefix)
        if known is not None and known.cache is cache and known.alias == alias:
            return known
        side = _sides[prefix] = cls(alias, prefix, cache)
        return side

    def entry_key(self, session_key: str) -> str:
        return self.prefix + session_key

    def end_key(self, session_key: str) -> str:
        return self.prefix + "ended:" + session_key

    # Calls ----------------------------------------------------------------------------

    def _call(self, method: str, *args: Any, leaves_stale: bool = False) -> Any:
        try:
            if self.alias in _unsure:
                self._renew_generation()
            if method == "get_many":
                lean = lean_get_many(self.alias, self.cache)
                if lean is not None:
                    return lean(*args)
            # What each sync call adds to its arguments (``cache_alias.lean_route()``).
            route = lean_route(self.alias, self.cache)
            return self._checked(method, getattr(self.cache, method)(*args, **route))
        except Exception as exc:  # every cache backend raises errors of its own
            return self._failed(method, exc, leaves_stale)

    async def _acall(self, method: str, *args: Any, leaves_stale: bool = False) -> Any:
        try:
            if self.alias in _unsure:
                await self._arenew_generation()
            return self._checked(method, await self._async(method)(*args))
        except Exception as exc:  # as above
            return self._failed(method, exc, leaves_stale)

    def _async(self, method: str) -> Callable[..., Awaitable[Any]]:
        # BaseCache's async methods loop over keys (aget_many() is one aget() per key);
        # unless a backend brings its own, the sync method in a thread is one round trip.
        if getattr(type(self.cache), "a" + method) is getattr(BaseCache, "a" + method):
            return sync_to_async(getattr(self.cache, method))
        backend_method: Callable[..., Awaitable[Any]] = getattr(self.cache, "a" + method)
        return backend_method

    @staticmethod
    def _checked(method: str, result: Any) -> Any:
        if method == "set_many" and result:
            # Some backends (memcached) report keys they did not store instead of raising.
            raise RuntimeError(f"{len(result)} keys were not stored")
        return result

    def _failed(self, method: str, exc: Exception, leaves_stale: bool) -> object:
        if leaves_stale:
            _unsure.add(self.alias)
            # Django's message and level for a failed write-through; the entries that write
            # may have left stale are void once the cache is back (see the module docstring).
            django_logger.error("Error saving to cache (%s)", self.cache, exc_info=exc)
            return _FAILED
        logger.warning(
            "Session cache %r failed (%s: %s: %s); using the database.",
            self.alias,
            method,
            type(exc).__name__,
            exc,
        )
        return _FAILED

    def _renew_generation(self) -> None:
        token = new_generation()
        self.cache.set(self.generation_key, token, None, **lean_route(self.alias, self.cache))
        self._renewed(token)

    async def _arenew_generation(self) -> None:
        token = new_generation()
        await self._async("set")(self.generation_key, token, None)
        self._renewed(token)

    def _renewed(self, token: int) -> None:
        _generations[self.alias] = token
        _unsure.discard(self.alias)

    # Reading --------------------------------------------------------------------------

    def _lookup_keys(self, session_key: str) -> list[str]:
        return [self.generation_key, self.entry_key(session_key), self.end_key(session_key)]

    def read(self, session_key: str) -> tuple[Found, StoredSession | None]:
        """Return what the cache holds for a session, in one call."""
        found = self._call("get_many", self._lookup_keys(session_key))
        if found is _FAILED:
            return Found.UNREACHABLE, None
        generation = found.get(self.generation_key)
        if type(generation) is not int:
            method, token = self._generation_write(generation)
            if self._call(method, self.generation_key, token, None) in _STORED:
                found = {**found, self.generation_key: token}
        return self._interpret(session_key, found)

    async def aread(self, session_key: str) -> tuple[Found, StoredSession | None]:
        found = await self._acall("get_many", self._lookup_keys(session_key))
        if found is _FAILED:
            return Found.UNREACHABLE, None
        generation = found.get(self.generation_key)
        if type(generation) is not int:
            method, token = self._generation_write(generation)
            if await self._acall(method, self.generation_key, token, None) in _STORED:
                found = {**found, self.generation_key: token}
        return self._interpret(session_key, found)

    @staticmethod
    def _generation_write(found: object) -> tuple[str, int]:
        """
        Return how to store a new generation where the cache holds ``found`` instead of
        one, and the new one. None: the cache has none, and ``add`` lets a process that
        gave it one meanwhile win. Anything else is an earlier release's text token,
        replaced once (its entries are refilled from the database): earlier releases add
        a generation only where there is none, so nothing sets it back.
        """
        return ("add" if found is None else "set"), new_generation()

    def _interpret(
        self, session_key: str, found: dict[str, Any]
    ) -> tuple[Found, StoredSession | None]:
        # None when the cache has no generation: no entry is current then.
        generation = found.get(self.generation_key)
        _generations[self.alias] = generation
        entry = found.get(self.entry_key(session_key))
        if self.end_key(session_key) in found or entry == ENDED:
            return Found.ENDED, None
        if entry is None:
            return Found.ABSENT, None
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
            return Found.STALE, None
        entry_generation, text = entry
        if generation is None or entry_generation != generation:
            return Found.STALE, None
        try:
            return Found.CURRENT, StoredSession.from_text(text)
        except (TypeError, ValueError):
            return Found.STALE, None

    # Writing --------------------------------------------------------------------------

    def _entry(self, record: StoredSession) -> tuple[list[Any], int]:
        ttl = min(record.expires_at - now_timestamp(), MAX_ENTRY_TTL)
        # A timeout of 0 stores nothing: an expired session is not worth caching.
        return [_generations.get(self.alias), record.to_text()], max(math.ceil(ttl), 0)

    def fill(self, session_key: str, record: StoredSession, found: Found) -> None:
        """Copy a session just read from the database into the cache."""
        # add() when nothing is there, so a fill never overwrites what a write put there
        # since the read; set() to replace an entry that is not current.
        method = "set" if found is Found.STALE else "add"
        self._call(method, self.entry_key(session_key), *self._entry(record))

    async def afill(self, session_key: str, record: StoredSession, found: Found) -> None:
        method = "set" if found is Found.STALE else "add"
        await self._acall(method, self.entry_key(session_key), *self._entry(record))

    def store(self, session_key: str, record: StoredSession) -> None:
        """Copy a session just written to the database into the cache."""
        self._call("set", self.entry_key(session_key), *self._entry(record), leaves_stale=True)

    async def astore(self, session_key: str, record: StoredSession) -> None:
        entry, ttl = self._entry(record)
        await self._acall("set", self.entry_key(session_key), entry, ttl, leaves_stale=True)

    def _end_markers(self, session_keys: Iterable[str]) -> dict[str, str]:
        markers = {}
        for session_key in session_keys:
            markers[self.entry_key(session_key)] = ENDED
            markers[self.end_key(session_key)] = ENDED
        return markers

    def end(self, session_keys: Iterable[str]) -> None:
        """
        Mark sessions about to be deleted from the database as ended.

        Raise SessionStoreUnavailable when the cache does not take the markers: other
        processes would go on serving their copies, so the delete must not go ahead.
        """
        markers = self._end_markers(session_keys)
        self._ended(self._call("set_many", markers, END_MARKER_TTL))

    async def aend(self, session_keys: Iterable[str]) -> None:
        markers = self._end_markers(session_keys)
        self._ended(await self._acall("set_many", markers, END_MARKER_TTL))

    def _ended(self, result: object) -> None:
        if result is _FAILED:
            raise SessionStoreUnavailable(
                f"Session cache {self.alias!r} could not mark sessions ended; none was deleted."
            )

    def evict(self, session_keys: Iterable[str]) -> None:
        """Drop the entries of sessions deleted from the database because they expired."""
        # An expired entry cannot bring its session back (its expiry travels with it), so a
        # plain delete does: no end marker, and a failed delete leaves nothing stale.
        self._call("delete_many", [self.entry_key(key) for key in session_keys])


class SessionStore(CacheAliasStore, DBStore):
    """
    Cached, database-backed sessions, written through to ``SESSION_CACHE_ALIAS``.

    Loading costs one cache call (a miss adds one statement and one cache call); every
    write costs one statement and one cache call.
    """

    cache_key_prefix = KEY_PREFIX
    # A touch copies the loaded data to the cache: only while the database still holds it.
    touch_checks_data = True
    # The cache gets a copy of the whole row a save builds: the row gets all of it too.
    save_sets_every_column = True

    @classmethod
    def session_cache(cls) -> SessionCache:
        return SessionCache(conf.SESSION_CACHE_ALIAS, cls.cache_key_prefix)

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        # The store's own cache (Django's _cache): looking the alias up in ``caches``
        # again costs about 15,000 CPU instructions, building a SessionCache 12,000.
        self._cache_side = SessionCache.of(self._cache_alias, self.cache_key_prefix, self._cache)

    def _cache_record(self, data: str, expire_date: datetime) -> StoredSession:
        metadata = {name: self._metadata.get(name) for name in self._metadata_columns()}
        return StoredSession(data, as_timestamp(expire_date), metadata)

    # Load ----------------------------------------------------------------------------

    # The key of a session the cache said was ended, which flush() makes sure is gone.
    _ended_key: str | None = None

    def _read(self, session_key: str) -> StoredSession | None:
        cache = self._cache_side
        found, record = cache.read(session_key)
        if found is Found.ENDED:
            self._ended_key = session_key
        if found in (Found.CURRENT, Found.ENDED):
            return record
        record = super()._read(session_key)
        if record is not None and found is not Found.UNREACHABLE:
            cache.fill(session_key, record, found)
        return record

    async def _aread(self, session_key: str) -> StoredSession | None:
        cache = self._cache_side
        found, record = await cache.aread(session_key)
        if found is Found.ENDED:
            self._ended_key = session_key
        if found in (Found.CURRENT, Found.ENDED):
            return record
        record = await super()._aread(session_key)
        if record is not None and found is not Found.UNREACHABLE:
            await cache.afill(session_key, record, found)
        return record

    # A cache hit answers without a query; the db engine's exists() always queries.
    exists = SessionPlusBase.exists
    aexists = SessionPlusBase.aexists

    # Write ---------------------------------------------------------------------------

    # Each write of a row then refills the cache from it.

    def _insert(self, row: AbstractBaseSession) -> None:
        super()._insert(row)
        self._refill(row)

    def _update(self, row: AbstractBaseSession) -> None:
        super()._update(row)
        self._refill(row)

    def _refill(self, row: AbstractBaseSession) -> None:
        self._cache_side.store(row.pk, self._cache_record(row.session_data, row.expire_date))

    async def _ainsert(self, row: AbstractBaseSession) -> None:
        await super()._ainsert(row)
        await self._arefill(row)

    async def _aupdate(self, row: AbstractBaseSession) -> None:
        await super()._aupdate(row)
        await self._arefill(row)

    async def _arefill(self, row: AbstractBaseSession) -> None:
        record = self._cache_record(row.session_data, row.expire_date)
        await self._cache_side.astore(row.pk, record)

    def _move(self, row: AbstractBaseSession, old_key: str) -> bool:
        # The old key's entry is ended first, as by a delete (see below); the new key's
        # entry is the moved row.
        self._cache_side.end([old_key])
        moved = super()._move(row, old_key)
        if moved:
            self._refill(row)
        return moved

    def _touch_row(self, values: dict[str, Any]) -> bool:
        touched = super()._touch_row(values)
        # The entry holds expiry and metadata, so the cache gets the whole record again,
        # with the data the database holds. After a newer save the cache holds its copy.
        if touched:
            self._cache_side.store(*self._touched_entry(values))
        return touched

    async def _atouch_row(self, values: dict[str, Any]) -> bool:
        touched = await super()._atouch_row(values)
        if touched:
            await self._cache_side.astore(*self._touched_entry(values))
        return touched

    def _touched_entry(self, values: dict[str, Any]) -> tuple[str, StoredSession]:
        session_key, data = self.session_key, values.get("session_data", self._loaded_data)
        # touch() reaches the row only with a key,
        assert session_key is not None
        # and the row matched the loaded data (SQL's "= NULL" matches nothing).
        assert data is not None
        return session_key, self._cache_record(data, values["expire_date"])

    # Delete --------------------------------------------------------------------------

    # The end marker goes first. When the cache cannot take it the delete fails (a logout
    # answers 503) and nothing changed; a row deleted first would leave every other
    # process serving its cached copy for up to a day.

    def delete(self, session_key: str | None = None) -> None:
        session_key = self._row_to_delete(session_key)
        if is_valid_session_key(session_key):
            self._cache_side.end([session_key])
            super().delete(session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        session_key = self._row_to_delete(session_key)
        if is_valid_session_key(session_key):
            await self._cache_side.aend([session_key])
            await super().adelete(session_key)

    def flush(self) -> None:
        ended = self._ended_key if self.session_key is None else None
        super().flush()
        if ended is not None:
            # Marked ended, but the database failed before the row went: delete it now.
            DBStore.delete(self, ended)

    async def aflush(self) -> None:
        ended = self._ended_key if self.session_key is None else None
        await super().aflush()
        if ended is not None:
            await DBStore.adelete(self, ended)

    @classmethod
    def _ending_keys(cls, user_id: object, keep: str | None) -> QuerySet[Any, str]:
        return cls._live_user_rows(user_id, keep).values_list("session_key", flat=True)

    @classmethod
    def end_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        """End every live session of a user except ``keep``; return how many ended."""
        # The keys are read first so that exactly those rows go and their entries are
        # marked ended; a session the user opens meanwhile is left alone in both.
        session_keys = list(cls._ending_keys(user_id, keep))
        if not session_keys:
            return 0
        cls.session_cache().end(session_keys)
        return delete_rows(cls._rows().filter(session_key__in=session_keys))

    @classmethod
    async def aend_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        session_keys = [key async for key in cls._ending_keys(user_id, keep)]
        if not session_keys:
            return 0
        await cls.session_cache().aend(session_keys)
        rows = cls._rows().filter(session_key__in=session_keys)
        return await sync_to_async(delete_rows)(rows)

    @classmethod
    def clear_expired_in_batches(
        cls, batch_size: int, dry_run: bool = False
    ) -> Iterator[CleanupBatch]:
        """Delete expired rows in batches, and the cache entries of exactly those rows."""
        model = cls.get_model_class()
        return delete_expired_rows(model, batch_size, dry_run, evict=cls.session_cache().evict)
