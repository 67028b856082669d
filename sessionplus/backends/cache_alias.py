"""What the cache and cached_db engines share: the cache of ``SESSION_CACHE_ALIAS``."""

from __future__ import annotations

from django.core.cache import caches

from sessionplus.backends.base import SessionPlusBase
from sessionplus.conf import conf


class CacheAliasStore(SessionPlusBase):
    """A store that keeps ``SESSION_CACHE_ALIAS``'s cache as ``_cache``, as Django's engines do."""

    def __init__(self, session_key: str | None = None) -> None:
        # As in Django's engines: an unknown SESSION_CACHE_ALIAS fails when a store is built.
        self._cache = caches[conf.SESSION_CACHE_ALIAS]
        super().__init__(session_key)
