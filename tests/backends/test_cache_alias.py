"""The cache of SESSION_CACHE_ALIAS, which the cache and cached_db engines keep as Django's do."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import InvalidCacheBackendError
from django.test import SimpleTestCase, override_settings

from sessionplus.backends import cache, cached_db
from sessionplus.backends.cache_alias import lean_get_many, lean_route
from sessionplus.backends.redis.clients import LeanRedis, sync_client

ENGINES = (cache.SessionStore, cached_db.SessionStore)


class CacheAliasStoreTests(SimpleTestCase):
    @override_settings(SESSION_CACHE_ALIAS="redis")
    def test_a_store_keeps_the_cache_of_session_cache_alias(self):
        for store_class in ENGINES:
            with self.subTest(store_class.__module__):
                assert store_class()._cache is caches["redis"]

    @override_settings(SESSION_CACHE_ALIAS="sessions")
    def test_an_unknown_session_cache_alias_fails_when_a_store_is_built(self):
        for store_class in ENGINES:
            with (
                self.subTest(store_class.__module__),
                pytest.raises(InvalidCacheBackendError, match="sessions"),
            ):
                store_class()


def alias_with(**options: object) -> dict[str, object]:
    """Return the suite's django-redis alias with these OPTIONS added."""
    alias = dict(settings.CACHES["redis"])
    alias["OPTIONS"] = {**alias.get("OPTIONS", {}), **options}
    return alias


@pytest.mark.usefixtures("redis_db")
class LeanRouteTests(SimpleTestCase):
    """django-redis on one server: the engines' calls go through the redis engine's lean client."""

    def test_django_redis_with_its_default_client_on_one_server_is_routed(self):
        route = lean_route("redis", caches["redis"])
        assert route == {"client": sync_client("redis")}
        assert type(route["client"]) is LeanRedis
        for store_class in ENGINES:
            with (
                self.subTest(store_class.__module__),
                override_settings(SESSION_CACHE_ALIAS="redis"),
            ):
                assert store_class()._route == route

    def test_other_caches_and_clients_keep_their_own_path(self):
        url = settings.CACHES["redis"]["LOCATION"]
        aliases = {
            "herd": alias_with(CLIENT_CLASS="django_redis.client.HerdClient"),
            "replicated": {**settings.CACHES["redis"], "LOCATION": [url, url]},
        }
        with override_settings(CACHES={**settings.CACHES, **aliases}):
            for alias in ("herd", "replicated", "redis_builtin", "default"):
                with self.subTest(alias):
                    assert lean_route(alias, caches[alias]) == {}

    def test_what_the_engines_store_is_django_redis_own_format(self):
        backend = caches["redis"]
        with override_settings(SESSION_CACHE_ALIAS="redis"):
            session = cache.SessionStore()
            session["a"] = 1
            session.create()
            entry = cache.KEY_PREFIX + session.session_key
            # Written through the lean client, read by django-redis's own path ...
            text = backend.get(entry)
            assert text.startswith("{")
            # ... and written by django-redis's own path, read through the lean client.
            backend.delete(entry)
            backend.set(entry, text, 100)
            assert cache.SessionStore(session.session_key)["a"] == 1

    def test_a_cache_object_of_its_own_or_new_settings_find_the_route_again(self):
        route = lean_route("redis", caches["redis"])
        other_thread: list[dict[str, object]] = []
        thread = threading.Thread(
            target=lambda: other_thread.append(lean_route("redis", caches["redis"]))
        )
        thread.start()
        thread.join()
        assert other_thread == [route]
        herd = alias_with(CLIENT_CLASS="django_redis.client.HerdClient")
        with override_settings(CACHES={**settings.CACHES, "redis": herd}):
            assert lean_route("redis", caches["redis"]) == {}
        # Back: the clients were made again for the settings restored.
        assert lean_route("redis", caches["redis"]) == {"client": sync_client("redis")}


@pytest.mark.usefixtures("redis_db")
class LeanGetManyTests(SimpleTestCase):
    """cached_db's read on django-redis: one MGET, each stored value decoded once per process."""

    def test_it_reads_what_django_redis_own_get_many_reads(self):
        aliases = {
            "plain": alias_with(),
            "json_zlib": alias_with(
                SERIALIZER="django_redis.serializers.json.JSONSerializer",
                COMPRESSOR="django_redis.compressors.zlib.ZlibCompressor",
            ),
        }
        with override_settings(CACHES={**settings.CACHES, **aliases}):
            for alias in aliases:
                with self.subTest(alias):
                    backend = caches[alias]
                    backend.set_many({"number": 7, "entry": [3, "text " * 200], "word": "w"})
                    get_many = lean_get_many(alias, backend)
                    assert get_many is not None
                    keys = ["number", "entry", "word", "absent"]
                    expected = backend.get_many(keys)
                    expected["entry"] = tuple(expected["entry"])  # shared, so never a list
                    assert get_many(keys) == expected
                    assert list(get_many(keys)) == ["number", "entry", "word"]

    def test_a_value_read_again_is_not_decoded_again_and_a_new_one_is(self):
        backend = caches["redis"]
        get_many = lean_get_many("redis", backend)
        assert get_many is not None
        backend.set("entry", [1, "first"])
        first, again = get_many(["entry"])["entry"], get_many(["entry"])["entry"]
        assert first == (1, "first")
        assert again is first
        backend.set("entry", [2, "second"])
        assert get_many(["entry"])["entry"] == (2, "second")

    def test_caches_that_are_not_routed_or_ignore_exceptions_keep_their_own_get_many(self):
        aliases = {
            "herd": alias_with(CLIENT_CLASS="django_redis.client.HerdClient"),
            "ignoring": alias_with(IGNORE_EXCEPTIONS=True),
        }
        with override_settings(CACHES={**settings.CACHES, **aliases}):
            for alias in ("herd", "ignoring", "redis_builtin", "default"):
                with self.subTest(alias):
                    assert lean_get_many(alias, caches[alias]) is None
