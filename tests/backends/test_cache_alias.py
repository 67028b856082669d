"""The cache of SESSION_CACHE_ALIAS, which the cache and cached_db engines keep as Django's do."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.core.cache.backends.base import InvalidCacheBackendError
from django.test import SimpleTestCase, override_settings

from sessionplus.backends import cache, cached_db

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
