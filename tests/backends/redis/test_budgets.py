"""
Round trips per session operation, counted by the Redis server itself (MONITOR).

Each test measures the redis engine and Django's cache engine over the same django-redis
alias for the same operation, and asserts both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

import django
import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import AsyncClient, Client, SimpleTestCase, override_settings

from tests.support.counting import count_storage

REDIS = "sessionplus.backends.redis"
DJANGO_CACHE = "django.contrib.sessions.backends.cache"

Operation = Callable[[], Any]
# A load: one command, no script.
READ = "HGETALL"
# Django's async exists() probe: BaseCache.ahas_key() reads the value (a GET) up to Django
# 6.0; from 6.1 it runs the backend's own has_key() (an EXISTS).
DJANGO_ASYNC_EXISTS = "EXISTS" if django.VERSION >= (6, 1) else "GET"


def store_class(engine: str) -> Any:
    return import_module(engine).SessionStore


def saved_key(engine: str, **data: Any) -> str:
    session = store_class(engine)()
    session.update(data or {"a": 1})
    session.save()
    return session.session_key


def loaded(engine: str, **data: Any) -> Any:
    session = store_class(engine)(saved_key(engine, **data))
    session.get("a")
    return session


# What each operation costs, given a fresh engine; returns the operation to count.
def load(engine: str) -> Operation:
    session = store_class(engine)(saved_key(engine))
    return lambda: session["a"]


def save(engine: str) -> Operation:
    session = loaded(engine)

    def operation() -> None:
        session["b"] = 2
        session.save()

    return operation


def create(engine: str) -> Operation:
    session = store_class(engine)()

    def operation() -> None:
        session["a"] = 1
        session.save()

    return operation


def touch(engine: str) -> Operation:
    # Django's engines have no touch: refreshing expiry means saving the session, as
    # SESSION_SAVE_EVERY_REQUEST does.
    session = loaded(engine)
    return getattr(session, "touch", session.save)


def delete(engine: str) -> Operation:
    return loaded(engine).delete


def cycle_key(engine: str) -> Operation:
    return loaded(engine).cycle_key


def flush(engine: str) -> Operation:
    return loaded(engine).flush


OPERATIONS = [load, save, create, touch, delete, cycle_key, flush]


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis", ROOT_URLCONF="tests.redis_urls")
class RedisBudgetTests(SimpleTestCase):
    def setUp(self) -> None:
        # Scripts cached on the server, connections open: what every later request finds.
        for engine in (REDIS, DJANGO_CACHE):
            for operation in OPERATIONS:
                operation(engine)()
        logged_in = store_class(REDIS)()
        logged_in[SESSION_KEY] = "7"
        logged_in.save()
        logged_in.flush()

    def count(self, scenario: Callable[[str], Operation]) -> dict[str, list[str]]:
        counted = {}
        for engine in (REDIS, DJANGO_CACHE):
            operation = scenario(engine)
            with count_storage(redis=True) as count:
                operation()
            counted[engine] = count.redis
        return counted

    def test_load_is_one_round_trip(self):
        assert self.count(load) == {REDIS: [READ], DJANGO_CACHE: ["GET"]}

    def test_a_load_transaction_is_sent_in_one_write(self):
        # The server cannot see writes: count them where redis-py makes them.
        operation = load(REDIS)
        with count_storage(redis=True) as count:
            operation()
        assert count.round_trips == 1

    def test_save_of_a_loaded_modified_session_is_one_round_trip_where_django_needs_two(self):
        assert self.count(save) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["GET", "SET"]}

    def test_create_is_one_round_trip_with_no_exists_probe(self):
        assert self.count(create) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["EXISTS", "SET"]}

    def test_touch_is_one_round_trip_where_django_rewrites_the_session(self):
        assert self.count(touch) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["GET", "SET"]}

    def test_delete_is_one_round_trip(self):
        assert self.count(delete) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["DEL"]}

    def test_cycle_key_is_one_round_trip_where_django_needs_three(self):
        assert self.count(cycle_key) == {
            REDIS: ["EVALSHA"],
            DJANGO_CACHE: ["EXISTS", "SET", "DEL"],
        }

    def test_flush_is_one_round_trip(self):
        assert self.count(flush) == {REDIS: ["EVALSHA"], DJANGO_CACHE: ["DEL"]}

    def test_a_request_that_never_touches_the_session_costs_nothing(self):
        def request(engine: str) -> Operation:
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = saved_key(engine)
            return lambda: client.get("/untouched/")

        assert self.count(request) == {REDIS: [], DJANGO_CACHE: []}

    def test_a_request_that_reads_costs_one_and_one_that_writes_two(self):
        def reading(engine: str) -> Operation:
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = saved_key(engine)
            return lambda: client.get("/read/")

        def writing(engine: str) -> Operation:
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = saved_key(engine)
            return lambda: client.get("/write/b/")

        with override_settings(SESSION_ENGINE=REDIS):
            assert self.count(reading)[REDIS] == [READ]
            assert self.count(writing)[REDIS] == [READ, "EVALSHA"]
        with override_settings(SESSION_ENGINE=DJANGO_CACHE):
            assert self.count(reading)[DJANGO_CACHE] == ["GET"]
            assert self.count(writing)[DJANGO_CACHE] == ["GET", "GET", "SET"]

    def test_the_user_index_costs_one_more_round_trip_at_login_and_logout_only(self):
        def counted(operation: Operation) -> list[str]:
            with count_storage(redis=True) as count:
                operation()
            return count.redis

        session = store_class(REDIS)()
        session["a"] = 1
        session.save()
        session = store_class(REDIS)(session.session_key)
        session.cycle_key()  # login(): anonymous session, not indexed yet
        session[SESSION_KEY] = "7"
        assert counted(session.save) == ["EVALSHA", "EVALSHA"]  # index, then session
        session = store_class(REDIS)(session.session_key)
        assert counted(lambda: session[SESSION_KEY]) == [READ]
        assert counted(session.touch) == ["EVALSHA"]
        session.modified = True  # every key rewritten, the login among them: index as it was
        assert counted(session.save) == ["EVALSHA"]
        assert counted(session.flush) == ["EVALSHA", "EVALSHA"]  # logout: session, index


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis", ROOT_URLCONF="tests.redis_urls")
class AsyncRedisBudgetTests(SimpleTestCase):
    async def count(
        self, engine: str, prepare: Callable[[Any], Awaitable[Callable[[], Awaitable[Any]]]]
    ) -> list[str]:
        # Prepared (and run once, to open connections and cache scripts) in this loop.
        await (await prepare(store_class(engine)))()
        operation = await prepare(store_class(engine))
        async with count_storage(redis=True) as count:
            await operation()
        return count.redis

    @staticmethod
    async def asaved(store: Any) -> Any:
        session = store()
        await session.aset("a", 1)
        await session.asave()
        session = store(session.session_key)
        await session.aget("a")
        return session

    async def test_async_operations_are_one_round_trip_each(self):
        async def aload(store):
            key = (await self.asaved(store)).session_key
            return lambda: store(key).aget("a")

        async def asave(store):
            session = await self.asaved(store)

            async def operation():
                await session.aset("b", 2)
                await session.asave()

            return operation

        async def acreate(store):
            session = store()

            async def operation():
                await session.aset("a", 1)
                await session.asave()

            return operation

        async def atouch(store):
            session = await self.asaved(store)
            return getattr(session, "atouch", session.asave)

        async def adelete(store):
            return (await self.asaved(store)).adelete

        async def acycle_key(store):
            return (await self.asaved(store)).acycle_key

        expected = {
            aload: ["GET"],
            asave: ["GET", "SET"],
            acreate: [DJANGO_ASYNC_EXISTS, "SET"],
            atouch: ["GET", "SET"],
            adelete: ["DEL"],
            acycle_key: [DJANGO_ASYNC_EXISTS, "SET", "DEL"],
        }
        for prepare, django_commands in expected.items():
            redis_commands = [READ] if prepare is aload else ["EVALSHA"]
            assert await self.count(REDIS, prepare) == redis_commands, prepare.__name__
            assert await self.count(DJANGO_CACHE, prepare) == django_commands, prepare.__name__

    async def test_an_async_request_that_never_touches_the_session_costs_nothing(self):
        for engine in (REDIS, DJANGO_CACHE):
            client = AsyncClient()
            client.cookies[settings.SESSION_COOKIE_NAME] = saved_key(engine)
            with override_settings(SESSION_ENGINE=engine):
                async with count_storage(redis=True) as count:
                    response = await client.get("/untouched/")
            assert response.status_code == 200
            assert count.redis == []
