"""
What a database-backed engine asks of its storage per session operation, on the real thing.

``storage_calls()`` records SQL statements by their first word (BEGIN, SAVEPOINT and
COMMIT included, as Django logs them) and, given a cache alias, cache calls as
``cache.<method>``. ``measure()`` runs the same operations on any engine, sessionplus's
or Django's, so tests can put the two side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from django.db import connections
from django.test.utils import CaptureQueriesContext

from tests.support.counting import count_cache_calls


@contextmanager
def storage_calls(cache_alias: str | None = None, database: str = "default") -> Iterator[list[str]]:
    """Yield a list that holds, on exit, the statements and cache calls made inside."""
    calls: list[str] = []
    with ExitStack() as stack:
        queries = stack.enter_context(CaptureQueriesContext(connections[database]))
        cache_calls = stack.enter_context(count_cache_calls(cache_alias)) if cache_alias else []
        yield calls
    calls.extend(query["sql"].split(None, 1)[0].upper() for query in queries.captured_queries)
    calls.extend(f"cache.{name}" for name in cache_calls)


def measure(
    store_class: type[Any],
    calls: Callable[[], Any],
    evict: Callable[[str], None] | None = None,
) -> dict[str, list[str]]:
    """
    Return what each session operation costs on ``store_class``.

    ``refresh`` is ``touch()`` where the engine has it, else the save of an unmodified
    session (all Django's engines can do). ``login`` is what ``django.contrib.auth.login``
    does to an anonymous session that holds data: load, ``cycle_key()``, set, save.
    With ``evict``, ``load (miss)`` loads after ``evict(session_key)`` emptied the cache.
    """

    def saved(**data: Any) -> str:
        session = store_class()
        session.update(data)
        session.save()
        return session.session_key

    costs: dict[str, list[str]] = {}
    key = saved(a=1)
    with calls() as costs["load"]:
        assert store_class(key)["a"] == 1
    if evict is not None:
        evict(key)
        with calls() as costs["load (miss)"]:
            assert store_class(key)["a"] == 1

    session = store_class(key)
    session["b"] = session["a"] + 1
    with calls() as costs["save"]:
        session.save()

    new = store_class()
    new["a"] = 1
    with calls() as costs["create"]:
        new.save()

    loaded = store_class(key)
    loaded["a"]
    with calls() as costs["refresh"]:
        getattr(loaded, "touch", loaded.save)()

    with calls() as costs["delete"]:
        store_class().delete(key)

    anonymous = saved(cart=["apple"])
    with calls() as costs["login"]:
        session = store_class(anonymous)
        session["cart"]
        session.cycle_key()
        session["_auth_user_id"] = "1"
        session.save()
    return costs
