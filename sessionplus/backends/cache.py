"""
Sessions in any ``CACHES`` alias (``SESSION_CACHE_ALIAS``), signed like the db engine.

Each session is one cache entry: the text of a ``StoredSession`` (a JSON header with expiry
and metadata, then the signed, serialized data), never a raw pickled dict. A create is
one ``add``; a save only overwrites an entry that still exists, so a session deleted
meanwhile (a logout in another tab) is not brought back. On Redis a touch is one round trip
too: a script rewrites the entry's header only while the entry is still the one loaded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

from asgiref.sync import sync_to_async
from django.core.cache import BaseCache
from django.core.cache.backends.memcached import BaseMemcachedCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from sessionplus.backends.base import (
    CreateError,
    UpdateError,
    is_valid_session_key,
)
from sessionplus.backends.cache_alias import CacheAliasStore
from sessionplus.backends.record import StoredSession
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.outage import unreachable_cache

if TYPE_CHECKING:
    from django.core.cache.backends.redis import RedisCacheClient
    from redis import Redis

KEY_PREFIX = "sessionplus.cache:"
# A call that adds nothing to its arguments.
NO_ROUTE: Mapping[str, Any] = MappingProxyType({})


class _DjangoRedisClient(Protocol):
    """What this module uses of a django-redis client (the package ships no types)."""

    def make_key(self, key: str) -> str: ...

    def get_client(self, write: bool = True) -> Redis: ...

    def encode(self, value: Any) -> bytes | int: ...


class _DjangoRedisCache(Protocol):
    """What this module uses of django-redis's ``RedisCache``."""

    client: _DjangoRedisClient

    def set(self, key: str, value: Any, timeout: int, *, xx: bool, **route: Any) -> bool: ...


class _MemcacheClient(Protocol):
    """The conditional write pymemcache's and pylibmc's clients both have."""

    def replace(self, key: str, value: Any, expire: float | None, /) -> bool: ...


def _is_django_redis(backend: BaseCache) -> TypeGuard[_DjangoRedisCache]:
    try:
        from django_redis.cache import RedisCache
    except ImportError:
        return False
    return isinstance(backend, RedisCache)


def replace(
    backend: BaseCache, key: str, value: Any, timeout: int, route: Mapping[str, Any] = NO_ROUTE
) -> bool:
    """
    Overwrite ``key`` only if it exists; return whether it did. ``route``: what the call
    adds to its arguments (``cache_alias.lean_route()``).

    One atomic call where the backend has a conditional write: django-redis and Django's
    Redis backend (``SET … XX``), memcached (``replace``). Django's cache API has none, so
    other backends (locmem, file, database) probe with ``touch`` (which fails on a missing
    key) and then ``set``: two calls, and a delete landing between them is undone.
    """
    if _is_django_redis(backend):
        return backend.set(key, value, timeout, xx=True, **route)
    if isinstance(backend, DjangoRedisCache):
        # Django's backend takes no flags: go through its client, with its serializer.
        full_key, redis_client, dumps = _django_redis_writer(backend, key)
        # Django's RedisCache returns a whole number of seconds; django-stubs types the
        # base class's float.
        ex = backend.get_backend_timeout(timeout)
        return bool(redis_client.set(full_key, dumps(value), ex=ex, xx=True))  # type: ignore[arg-type]
    if isinstance(backend, BaseMemcachedCache):
        # The client is private; django-stubs leaves it out.
        memcache_client: _MemcacheClient = backend._cache  # type: ignore[attr-defined]
        return bool(
            memcache_client.replace(
                backend.make_and_validate_key(key), value, backend.get_backend_timeout(timeout)
            )
        )
    if not backend.touch(key, timeout):
        return False
    backend.set(key, value, timeout)
    return True


def _django_redis_writer(
    backend: DjangoRedisCache, key: str
) -> tuple[str, Redis, Callable[[Any], bytes]]:
    """Return the full key, the connection that writes it and the serializer's ``dumps``."""
    # Django's backend keeps its client and serializer private: django-stubs leaves them out.
    cache_client: RedisCacheClient = backend._cache  # type: ignore[attr-defined]
    dumps: Callable[[Any], bytes] = cache_client._serializer.dumps  # type: ignore[attr-defined]
    full_key = backend.make_and_validate_key(key)
    return full_key, cache_client.get_client(full_key, write=True), dumps


async def areplace(backend: BaseCache, key: str, value: Any, timeout: int) -> bool:
    """Do what ``replace()`` does, with the cache's async API where it has one."""
    one_call = _is_django_redis(backend) or isinstance(
        backend, (DjangoRedisCache, BaseMemcachedCache)
    )
    if one_call:
        return await sync_to_async(replace)(backend, key, value, timeout)
    if not await backend.atouch(key, timeout):
        return False
    await backend.aset(key, value, timeout)
    return True


# Compare-and-set in one round trip: the entry is rewritten only while it is still the one
# loaded (-1: gone, 0: changed since, 1: rewritten).
SWAP_IF_UNCHANGED = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def swap_if_unchanged(
    backend: BaseCache,
    key: str,
    loaded: Any,
    value: Any,
    timeout: int,
    route: Mapping[str, Any] = NO_ROUTE,
) -> int:
    """
    Replace ``key``'s value ``loaded`` with ``value`` in one call; return 1 when it did,
    0 when the entry changed since (or the backend has no compare-and-set), -1 when it is gone.
    ``route``: as for ``replace()``.

    The script compares the bytes the backend stores; a backend that does not encode the
    same value to the same bytes (django-redis's herd or sharded clients) answers 0, and
    the caller falls back to reading the entry.
    """
    if _is_django_redis(backend):
        from django_redis.client import DefaultClient

        client = backend.client
        if type(client) is not DefaultClient:
            return 0
        full_key = client.make_key(key)
        redis_client, encode = route.get("client") or client.get_client(write=True), client.encode
    elif isinstance(backend, DjangoRedisCache):
        full_key, redis_client, encode = _django_redis_writer(backend, key)
    else:
        return 0
    return int(
        redis_client.eval(SWAP_IF_UNCHANGED, 1, full_key, encode(loaded), encode(value), timeout)
    )


def timeout_until(expires_at: float) -> int:
    """Return the cache timeout for an entry that expires at ``expires_at``."""
    # At least a second: 0 means "never expire" to some backends. An entry kept past its
    # expiry is refused on load anyway, from the expiry in its header.
    return max(1, math.ceil(expires_at - now_timestamp()))


class SessionStore(CacheAliasStore):
    """A cache-based session store, a drop-in for Django's ``backends.cache``."""

    cache_key_prefix = KEY_PREFIX

    @property
    def cache_key(self) -> str:
        return self.cache_key_prefix + self._get_or_create_session_key()

    async def acache_key(self) -> str:
        return self.cache_key_prefix + await self._aget_or_create_session_key()

    # Reads -------------------------------------------------------------------------

    def _read(self, session_key: str) -> StoredSession | None:
        with unreachable_cache():
            text = self._cache.get(self.cache_key_prefix + session_key, **self._route)
        return None if text is None else self.record_from_text(text)

    async def _aread(self, session_key: str) -> StoredSession | None:
        with unreachable_cache():
            text = await self._cache.aget(self.cache_key_prefix + session_key)
        return None if text is None else self.record_from_text(text)

    # Writes ------------------------------------------------------------------------

    def _write(self, record: StoredSession, must_create: bool) -> None:
        key = self.cache_key
        timeout = timeout_until(record.expires_at)
        with unreachable_cache():
            if must_create:
                if not self._cache.add(key, record.to_text(), timeout, **self._route):
                    raise CreateError
            elif not replace(self._cache, key, record.to_text(), timeout, self._route):
                raise UpdateError

    async def _awrite(self, record: StoredSession, must_create: bool) -> None:
        key = await self.acache_key()
        timeout = timeout_until(record.expires_at)
        with unreachable_cache():
            if must_create:
                if not await self._cache.aadd(key, record.to_text(), timeout):
                    raise CreateError
            elif not await areplace(self._cache, key, record.to_text(), timeout):
                raise UpdateError

    def delete(self, session_key: str | None = None) -> None:
        session_key = self.session_key if session_key is None else session_key
        if not is_valid_session_key(session_key):
            return
        with unreachable_cache():
            self._cache.delete(self.cache_key_prefix + session_key, **self._route)

    async def adelete(self, session_key: str | None = None) -> None:
        session_key = self.session_key if session_key is None else session_key
        if not is_valid_session_key(session_key):
            return
        with unreachable_cache():
            await self._cache.adelete(self.cache_key_prefix + session_key)

    # Touch -------------------------------------------------------------------------

    # The record as loaded, which a touch on Redis swaps for a refreshed one.
    _loaded_record: StoredSession | None = None

    def _accept(self, record: StoredSession | None) -> dict[str, Any]:
        data = super()._accept(record)
        self._loaded_record = record if self.session_key is not None else None
        return data

    def touch(self) -> None:
        if self.modified or not self._touched_in_place():
            super().touch()

    async def atouch(self) -> None:
        if self.modified or not await sync_to_async(self._touched_in_place)():
            await super().atouch()

    def _touched_in_place(self) -> bool:
        """
        Refresh the loaded entry's header in one round trip where the cache can compare
        and set; return False when the touch must read the entry first (as elsewhere).
        """
        self._get_session()  # the expiry may live in the data
        loaded = self._loaded_record
        now = now_timestamp()
        # Expired since it loaded: the reading touch says so (UpdateError).
        if self.session_key is None or loaded is None or loaded.expires_at <= now:
            return False
        metadata = {**loaded.metadata, **self.metadata_for_touch(now)}
        record = StoredSession(loaded.data, self.expiry_timestamp(now), metadata)
        key = self.cache_key_prefix + self.session_key
        with unreachable_cache():
            swapped = swap_if_unchanged(
                self._cache,
                key,
                loaded.to_text(),
                record.to_text(),
                timeout_until(record.expires_at),
                self._route,
            )
        if swapped < 0:
            raise UpdateError
        if swapped:
            self._loaded_record = record
            self._mark_saved()
        return bool(swapped)

    @classmethod
    def clear_expired(cls) -> None:
        """Do nothing: the cache expires entries itself."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Do nothing: the cache expires entries itself."""
