"""
Sessions in any ``CACHES`` alias (``SESSION_CACHE_ALIAS``), signed like the db engine.

Each session is one cache entry: the text of a ``StoredSession`` (a JSON header with expiry
and metadata, then the signed, serialized data), never a raw pickled dict. A create is
one ``add``; a save only overwrites an entry that still exists, so a session deleted
meanwhile (a logout in another tab) is not brought back.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.memcached import BaseMemcachedCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.db import DatabaseError

from sessionplus.backends.base import (
    CreateError,
    SessionPlusBase,
    UpdateError,
    is_valid_session_key,
)
from sessionplus.backends.record import StoredSession
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.outage import unavailable_on

KEY_PREFIX = "sessionplus.cache:"


@cache
def client_errors() -> tuple[type[BaseException], ...]:
    """Return the errors a cache backend raises when its server cannot be reached."""
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


def _is_django_redis(backend: BaseCache) -> bool:
    try:
        from django_redis.cache import RedisCache
    except ImportError:
        return False
    return isinstance(backend, RedisCache)


def replace(backend: BaseCache, key: str, value: Any, timeout: int) -> bool:
    """
    Overwrite ``key`` only if it exists; return whether it did.

    One atomic call where the backend has a conditional write: django-redis and Django's
    Redis backend (``SET … XX``), memcached (``replace``). Django's cache API has none, so
    other backends (locmem, file, database) probe with ``touch`` (which fails on a missing
    key) and then ``set``: two calls, and a delete landing between them is undone.
    """
    if _is_django_redis(backend):
        return backend.set(key, value, timeout, xx=True)
    if isinstance(backend, DjangoRedisCache):
        # Django's backend takes no flags: go through its client, with its serializer.
        redis_client = backend._cache
        full_key = backend.make_and_validate_key(key)
        return bool(
            redis_client.get_client(full_key, write=True).set(
                full_key,
                redis_client._serializer.dumps(value),
                ex=backend.get_backend_timeout(timeout),
                xx=True,
            )
        )
    if isinstance(backend, BaseMemcachedCache):
        return bool(
            backend._cache.replace(
                backend.make_and_validate_key(key), value, backend.get_backend_timeout(timeout)
            )
        )
    if not backend.touch(key, timeout):
        return False
    backend.set(key, value, timeout)
    return True


async def areplace(backend: BaseCache, key: str, value: Any, timeout: int) -> bool:
    """Do what ``replace()`` does, with the cache's async API where it has one."""
    if _is_django_redis(backend) or isinstance(backend, (DjangoRedisCache, BaseMemcachedCache)):
        return await sync_to_async(replace)(backend, key, value, timeout)
    if not await backend.atouch(key, timeout):
        return False
    await backend.aset(key, value, timeout)
    return True


def timeout_until(expires_at: float) -> int:
    """Return the cache timeout for an entry that expires at ``expires_at``."""
    # At least a second: 0 means "never expire" to some backends. An entry kept past its
    # expiry is refused on load anyway, from the expiry in its header.
    return max(1, math.ceil(expires_at - now_timestamp()))


class SessionStore(SessionPlusBase):
    """A cache-based session store, a drop-in for Django's ``backends.cache``."""

    cache_key_prefix = KEY_PREFIX

    def __init__(self, session_key: str | None = None) -> None:
        self._cache = caches[settings.SESSION_CACHE_ALIAS]
        super().__init__(session_key)

    @property
    def cache_key(self) -> str:
        return self.cache_key_prefix + self._get_or_create_session_key()

    async def acache_key(self) -> str:
        return self.cache_key_prefix + await self._aget_or_create_session_key()

    @contextmanager
    def _reaching_cache(self) -> Iterator[None]:
        with unavailable_on(*client_errors()):
            yield

    # Reads -------------------------------------------------------------------------

    def _read(self, session_key: str) -> StoredSession | None:
        with self._reaching_cache():
            text = self._cache.get(self.cache_key_prefix + session_key)
        return None if text is None else self.record_from_text(text)

    async def _aread(self, session_key: str) -> StoredSession | None:
        with self._reaching_cache():
            text = await self._cache.aget(self.cache_key_prefix + session_key)
        return None if text is None else self.record_from_text(text)

    # Writes ------------------------------------------------------------------------

    def _write(self, record: StoredSession, must_create: bool) -> None:
        key = self.cache_key_prefix + self.session_key
        timeout = timeout_until(record.expires_at)
        with self._reaching_cache():
            if must_create:
                if not self._cache.add(key, record.to_text(), timeout):
                    raise CreateError
            elif not replace(self._cache, key, record.to_text(), timeout):
                raise UpdateError

    async def _awrite(self, record: StoredSession, must_create: bool) -> None:
        key = self.cache_key_prefix + self.session_key
        timeout = timeout_until(record.expires_at)
        with self._reaching_cache():
            if must_create:
                if not await self._cache.aadd(key, record.to_text(), timeout):
                    raise CreateError
            elif not await areplace(self._cache, key, record.to_text(), timeout):
                raise UpdateError

    def delete(self, session_key: str | None = None) -> None:
        session_key = self.session_key if session_key is None else session_key
        if not is_valid_session_key(session_key):
            return
        with self._reaching_cache():
            self._cache.delete(self.cache_key_prefix + session_key)

    async def adelete(self, session_key: str | None = None) -> None:
        session_key = self.session_key if session_key is None else session_key
        if not is_valid_session_key(session_key):
            return
        with self._reaching_cache():
            await self._cache.adelete(self.cache_key_prefix + session_key)

    @classmethod
    def clear_expired(cls) -> None:
        """Do nothing: the cache expires entries itself."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Do nothing: the cache expires entries itself."""
