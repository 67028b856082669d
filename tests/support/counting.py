"""Count the storage calls an operation makes, on the real store (a spy, not a fake)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import caches

CACHE_METHODS = (
    "add", "get", "set", "touch", "delete", "get_many", "set_many", "delete_many", "has_key",
    "incr", "decr", "get_or_set",
    "aadd", "aget", "aset", "atouch", "adelete", "aget_many", "aset_many", "adelete_many",
    "ahas_key", "aget_or_set",
)  # fmt: skip


@contextmanager
def count_cache_calls(alias: str = "default") -> Iterator[list[str]]:
    """Record the name of each public cache method called on ``caches[alias]``."""
    cache = caches[alias]
    calls: list[str] = []
    originals = {}
    for name in CACHE_METHODS:
        original = getattr(cache, name)
        originals[name] = original

        def recorder(*args, __name=name, __original=original, **kwargs):
            calls.append(__name)
            return __original(*args, **kwargs)

        setattr(cache, name, recorder)
    try:
        yield calls
    finally:
        for name in originals:
            delattr(cache, name)
