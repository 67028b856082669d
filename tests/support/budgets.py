"""
What an engine asks of its storage per session operation, on the real thing.

``measure()`` runs the same operations on any engine, sessionplus's or Django's, so tests
can put the two side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import RequestFactory

from tests.support.counting import StorageCount, count_storage


def measure(
    store_class: type[Any], evict: Callable[[str], None] | None = None
) -> dict[str, list[str]]:
    """
    Return what each session operation costs on ``store_class``, as ``StorageCount.calls``.

    ``refresh`` is ``touch()`` where the engine has it, else the save of an unmodified
    session (all Django's engines can do). ``login`` is what ``django.contrib.auth.login``
    does to an anonymous session that holds data: load, ``cycle_key()``, set, save, on
    a store serving a request (as the middleware's is: ``login()`` always has one).
    With ``evict``, ``load (miss)`` loads after ``evict(session_key)`` emptied the cache.
    """

    def saved(**data: Any) -> str:
        session = store_class()
        session.update(data)
        session.save()
        return session.session_key

    counts: dict[str, StorageCount] = {}
    key = saved(a=1)
    with count_storage() as counts["load"]:
        assert store_class(key)["a"] == 1
    if evict is not None:
        evict(key)
        with count_storage() as counts["load (miss)"]:
            assert store_class(key)["a"] == 1

    session = store_class(key)
    session["b"] = session["a"] + 1
    with count_storage() as counts["save"]:
        session.save()

    new = store_class()
    new["a"] = 1
    with count_storage() as counts["create"]:
        new.save()

    loaded = store_class(key)
    loaded["a"]
    with count_storage() as counts["refresh"]:
        getattr(loaded, "touch", loaded.save)()

    with count_storage() as counts["delete"]:
        store_class().delete(key)

    anonymous = saved(cart=["apple"])
    with count_storage() as counts["login"]:
        session = store_class(anonymous)
        session.request = RequestFactory().post("/login/")
        session["cart"]
        session.cycle_key()
        session["_auth_user_id"] = "1"
        session.save()
    return {operation: count.calls for operation, count in counts.items()}


def operation_calls(store_class: type[Any], call: Callable[..., Any]) -> list[list[str]]:
    """
    Return the storage calls of create, load, save, touch and delete, in that order, each
    made through ``call`` (a ``Calls``: the sync API or its async twins).
    """
    session = store_class()
    call(session, "set", "a", 1)
    with count_storage() as create:
        call(session, "save")
    reader = store_class(session.session_key)
    with count_storage() as load:
        call(reader, "get", "a")
    call(reader, "set", "b", 2)
    with count_storage() as save:
        call(reader, "save")
    with count_storage() as touch:
        call(reader, "touch")
    with count_storage() as delete:
        call(reader, "delete")
    return [create.calls, load.calls, save.calls, touch.calls, delete.calls]
