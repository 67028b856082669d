"""
Round trips per session operation, counted by the Redis server itself (MONITOR).

Each test measures the redis engine and Django's cache engine over the same django-redis
alias for the same operation, and asserts both, through the sync API and the async one.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

import django
import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import SimpleTestCase, override_settings

from tests.backends.contract import SYNC, Calls, with_twins
from tests.support.counting import count_storage

REDIS = "sessionplus.backends.redis"
DJANGO_CACHE = "django.contrib.sessions.backends.cache"

Operation = Callable[[], Any]
Scenario = Callable[[str, Calls], Operation]
# A load: one command, no script.
READ = "GET"
# How Django's cache engine checks that a new key is free, by mode: its async probe,
# BaseCache.ahas_key(), reads the value (a GET) up to Django 6.0; from 6.1 it runs the
# backend's own has_key() (an EXISTS).
DJANGO_EXISTS = {"sync": "EXISTS", "async": "EXISTS" if django.VERSION >= (6, 1) else "GET"}


def store_class(engine: str) -> Any:
    return import_module(engine).SessionStore


def saved_key(engine: str, call: Calls = SYNC, **data: Any) -> str:
    session = store_class(engine)()
    call(session, "update", data or {"a": 1})
    call(session, "save")
    return session.session_key


def loaded(engine: str, call: Calls, **data: Any) -> Any:
    session = store_class(engine)(saved_key(engine, call, **data))
    call(session, "get", "a")
    return session


# What each operation costs, given a fresh engine; returns the operation to count.
def load(engine: str, call: Calls) -> Operation:
    session = store_class(engine)(saved_key(engine, call))
    return lambda: call(session, "get", "a")


def save(engine: str, call: Calls) -> Operation:
    session = loaded(engine, call)

    def operation() -> None:
        call(session, "set", "b", 2)
        call(session, "save")

    return operation


def create(engine: str, call: Calls) -> Operation:
    session = store_class(engine)()

    def operation() -> None:
        call(session, "set", "a", 1)
        call(session, "save")

    return operation


def touch(engine: str, call: Calls) -> Operation:
    # Django's engines have no touch: refreshing expiry means saving the session, as
    # SESSION_SAVE_EVERY_REQUEST does.
    session = loaded(engine, call)
    return lambda: call(session, "touch" if hasattr(session, "touch") else "save")


def method(name: str) -> Scenario:
    """Return the scenario of a loaded session's ``name()``."""

    def scenario(engine: str, call: Calls) -> Operation:
        session = loaded(engine, call)
        return lambda: call(session, name)

    return scenario


delete, cycle_key, flush = method("delete"), method("cycle_key"), method("flush")

OPERATIONS = [load, save, create, touch, delete, cycle_key, flush]


def counted(operation: Operation, **options: Any) -> list[str]:
    with count_storage(redis=True, **options) as count:
        operation()
    return count.redis


def request(path: str) -> Scenario:
    """Return the scenario of a GET of ``path`` with a stored session's cookie."""

    def scenario(engine: str, call: Calls) -> Operation:
        client = call.new_client()  # a handler of its own: it reads SESSION_ENGINE once
        client.cookies[settings.SESSION_COOKIE_NAME] = saved_key(engine, call)

        def operation() -> None:
            with override_settings(SESSION_ENGINE=engine):
                assert call.get(client, path).status_code == 200

        return operation

    return scenario


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis", ROOT_URLCONF="tests.redis_urls")
@with_twins
class RedisBudgetTests(SimpleTestCase):
    def setUp(self) -> None:
        # Scripts cached on the server, connections open: what every later request finds.
        for engine in (REDIS, DJANGO_CACHE):
            for operation in OPERATIONS:
                operation(engine, SYNC)()
        logged_in = store_class(REDIS)()
        logged_in[SESSION_KEY] = "7"
        logged_in.save()
        logged_in.flush()

    def count(self, call: Calls, scenario: Scenario) -> dict[str, list[str]]:
        return {
            engine: call.in_one_loop(self.count_warm, call, scenario, engine)
            for engine in (REDIS, DJANGO_CACHE)
        }

    @staticmethod
    def count_warm(call: Calls, scenario: Scenario, engine: str) -> list[str]:
        # Run once first: an async client's connections are its event loop's own.
        scenario(engine, call)()
        return counted(scenario(engine, call))

    def both_load_is_one_round_trip(self, call: Calls) -> None:
        assert self.count(call, load) == {REDIS: [READ], DJANGO_CACHE: ["GET"]}

    def both_a_load_transaction_is_sent_in_one_write(self, call: Calls) -> None:
        # The server cannot see writes: count them where redis-py makes them.
        def round_trips() -> int:
            load(REDIS, call)()
            operation = load(REDIS, call)
            with count_storage(redis=True) as count:
                operation()
            return count.round_trips

        assert call.in_one_loop(round_trips) == 1

    def both_save_of_a_loaded_modified_session_is_one_round_trip_where_django_needs_two(
        self, call: Calls
    ) -> None:
        assert self.count(call, save) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["GET", "SET"]}

    def both_create_is_one_round_trip_with_no_exists_probe(self, call: Calls) -> None:
        assert self.count(call, create) == {
            REDIS: ["SET"],
            DJANGO_CACHE: [DJANGO_EXISTS[call.mode], "SET"],
        }

    def both_touch_is_one_round_trip_where_django_rewrites_the_session(self, call: Calls) -> None:
        assert self.count(call, touch) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["GET", "SET"]}

    def both_delete_is_one_round_trip(self, call: Calls) -> None:
        assert self.count(call, delete) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["DEL"]}

    def both_cycle_key_is_one_round_trip_where_django_needs_three(self, call: Calls) -> None:
        assert self.count(call, cycle_key) == {
            REDIS: ["EVALSHA"],
            DJANGO_CACHE: [DJANGO_EXISTS[call.mode], "SET", "DEL"],
        }

    def both_flush_is_one_round_trip(self, call: Calls) -> None:
        assert self.count(call, flush) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["DEL"]}

    def both_a_request_that_never_touches_the_session_costs_nothing(self, call: Calls) -> None:
        assert self.count(call, request("/untouched/")) == {REDIS: [], DJANGO_CACHE: []}

    def both_a_request_that_reads_costs_one_and_one_that_writes_two(self, call: Calls) -> None:
        assert self.count(call, request("/read/")) == {REDIS: [READ], DJANGO_CACHE: ["GET"]}
        assert self.count(call, request("/write/b/")) == {
            REDIS: [READ, "EVALSHA"],
            DJANGO_CACHE: ["GET", "GET", "SET"],
        }

    def both_the_user_index_costs_one_more_round_trip_at_login_and_logout_only(
        self, call: Calls
    ) -> None:
        def login_to_logout() -> None:
            session = store_class(REDIS)()
            call(session, "set", "a", 1)
            call(session, "save")
            session = store_class(REDIS)(session.session_key)
            call(session, "cycle_key")  # login(): anonymous session, not indexed yet
            call(session, "set", SESSION_KEY, "7")
            # index, then session
            assert counted(lambda: call(session, "save")) == ["EVALSHA", "EVALSHA"]
            session = store_class(REDIS)(session.session_key)
            assert counted(lambda: call(session, "get", SESSION_KEY)) == [READ]
            assert counted(lambda: call(session, "touch")) == ["EVALSHA"]
            session.modified = True  # every key rewritten, the login among them: index as it was
            assert counted(lambda: call(session, "save")) == ["EVALSHA"]
            # logout: session, index
            assert counted(lambda: call(session, "flush")) == ["EVALSHA", "EVALSHA"]

        call.in_one_loop(login_to_logout)
