"""What the cache and cached_db engines share: the cache of ``SESSION_CACHE_ALIAS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from sessionplus.backends.base import SessionPlusBase
from sessionplus.backends.memo import TextMemo
from sessionplus.conf import conf

# alias → (the cache object the route was found for, the route): ``caches`` hands each
# thread a cache object of its own, and a new one after a settings change.
_routes: dict[str, tuple[BaseCache, dict[str, Any]]] = {}
# Settings that decide a route besides the cache object: the redis engine's clients'.
ROUTE_SETTINGS = frozenset({"CACHES", "DJANGO_REDIS_CONNECTION_FACTORY"})


def lean_route(alias: str, cache: BaseCache) -> dict[str, Any]:
    """
    Return the keyword arguments that send a call of ``cache`` through the redis engine's
    lean client: ``{"client": LeanRedis}`` for django-redis's cache with its default client
    on one server, else nothing.

    django-redis takes the connection of each call as ``client=``; everything else (keys,
    serializer, compressor, timeouts, ``IGNORE_EXCEPTIONS``) stays django-redis's. The lean
    client skips redis-py 8's bookkeeping around each command, about 80,000 CPU
    instructions of a read's 170,000 (``clients.LeanRedis``).
    """
    known = _routes.get(alias)
    if known is not None and known[0] is cache:
        return known[1]
    route: dict[str, Any] = {}
    if type(cache).__module__ == "django_redis.cache":  # so django_redis is installed
        from django_redis.client import DefaultClient

        from sessionplus.backends.redis.clients import lean_client

        client = getattr(cache, "client", None)
        if type(client) is DefaultClient and len(client._server) == 1:
            lean = lean_client(alias)
            route = {} if lean is None else {"client": lean}
    _routes[alias] = (cache, route)
    return route


GetMany = Callable[[list[str]], dict[str, Any]]
# alias → (the cache object, its lean get_many or None), as ``_routes``.
_readers: dict[str, tuple[BaseCache, GetMany | None]] = {}
# alias → what each value read through its lean get_many decoded to.
_decoded: dict[str, TextMemo] = {}


def lean_get_many(alias: str, cache: BaseCache) -> GetMany | None:
    """
    Return ``get_many()`` for a cache that ``lean_route()`` routes, as one ``MGET`` on the
    lean client whose values are decoded by django-redis (``DefaultClient.decode()``) once
    per process each, or None where the cache's own ``get_many()`` must run.

    django-redis decodes every value afresh: a failed ``int()`` (whose error message
    holds the value's ``repr()``), then the serializer's ``loads()``: about 30,000 CPU
    instructions for a session's cached_db entry, read unchanged by most requests. A
    cache that ignores exceptions (``IGNORE_EXCEPTIONS``) keeps its own path, which turns
    them into misses.
    """
    known = _readers.get(alias)
    if known is not None and known[0] is cache:
        return known[1]
    lean = lean_route(alias, cache).get("client")
    reader = None
    if lean is not None and not getattr(cache, "_ignore_exceptions", False):
        reader = _lean_reader(lean, cache, _decoded.setdefault(alias, TextMemo()))
    _readers[alias] = (cache, reader)
    return reader


def _lean_reader(lean: Any, cache: Any, decoded: TextMemo) -> GetMany:
    decode, key_func = cache.client.decode, cache.key_func
    prefix, version = cache.key_prefix, cache.version

    def get_many(keys: list[str]) -> dict[str, Any]:
        values = lean.mget([key_func(key, prefix, version) for key in keys])
        found = {}
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            result = decoded.get(value, decoded)
            if result is decoded:
                result = decode(value)
                if type(result) is list:
                    result = tuple(result)  # shared by every read of this value
                decoded.remember(value, len(value), result)
            found[key] = result
        return found

    return get_many


@receiver(setting_changed)
def _route_settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ROUTE_SETTINGS:
        _routes.clear()
        _readers.clear()
        _decoded.clear()


class CacheAliasStore(SessionPlusBase):
    """A store that keeps ``SESSION_CACHE_ALIAS``'s cache as ``_cache``, as Django's engines do."""

    def __init__(self, session_key: str | None = None) -> None:
        # As in Django's engines: an unknown SESSION_CACHE_ALIAS fails when a store is built.
        alias = self._cache_alias = conf.SESSION_CACHE_ALIAS
        self._cache = caches[alias]
        # What each sync call of the cache adds to its arguments (``lean_route()``).
        self._route = lean_route(alias, self._cache)
        super().__init__(session_key)
