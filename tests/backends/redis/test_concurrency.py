"""
No lost updates: concurrent requests on one session, each changing a different key.

Each pair of requests loads the session, meets at a barrier (so both hold the same
snapshot), then writes its own key; the middleware saves both. Django's cache engine
saves the whole session, so the second save wipes the first request's key; the redis
engine saves only what each request changed.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.test import AsyncClient, Client, SimpleTestCase, override_settings

from tests import redis_urls

PAIRS = 25
DJANGO_CACHE = "django.contrib.sessions.backends.cache"
SESSIONPLUS_REDIS = "sessionplus.backends.redis"


def keys_written(pair: int) -> tuple[str, str]:
    return f"left{pair}", f"right{pair}"


@pytest.mark.usefixtures("redis_db")
@override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_CACHE_ALIAS="redis")
class LostUpdateTests(SimpleTestCase):
    def run_pairs(self, engine: str) -> int:
        """Run PAIRS races through the full middleware; return how many writes were lost."""
        with override_settings(SESSION_ENGINE=engine):
            first = Client()
            assert first.get("/write/seed/").status_code == 200
            cookie = first.cookies[settings.SESSION_COOKIE_NAME].value
            clients = [Client(), Client()]
            for client in clients:
                client.cookies[settings.SESSION_COOKIE_NAME] = cookie
            with ThreadPoolExecutor(max_workers=2) as pool:
                for pair in range(PAIRS):
                    race_id = f"{engine}-{pair}"
                    redis_urls.BARRIERS[race_id] = threading.Barrier(2)
                    requests = [
                        pool.submit(client.get, f"/race/{race_id}/{key}/")
                        for client, key in zip(clients, keys_written(pair), strict=True)
                    ]
                    assert [request.result().status_code for request in requests] == [200, 200]
            stored = set(first.get("/read/").content.decode().split(","))
        expected = {key for pair in range(PAIRS) for key in keys_written(pair)}
        return len(expected - stored)

    def test_concurrent_writes_to_different_keys_all_survive_unlike_djangos_cache_engine(self):
        django_lost = self.run_pairs(DJANGO_CACHE)
        sessionplus_lost = self.run_pairs(SESSIONPLUS_REDIS)
        # Both requests of a pair saved a snapshot taken before either wrote: Django's
        # whole-session save loses exactly one write per pair.
        assert django_lost == PAIRS
        assert sessionplus_lost == 0


@pytest.mark.usefixtures("redis_db")
@override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_CACHE_ALIAS="redis")
class AsyncLostUpdateTests(SimpleTestCase):
    async def run_pairs(self, engine: str) -> int:
        with override_settings(SESSION_ENGINE=engine):
            first = AsyncClient()
            assert (await first.get("/write/seed/")).status_code == 200
            cookie = first.cookies[settings.SESSION_COOKIE_NAME].value
            clients = [AsyncClient(), AsyncClient()]
            for client in clients:
                client.cookies[settings.SESSION_COOKIE_NAME] = cookie
            for pair in range(PAIRS):
                race_id = f"{engine}-{pair}"
                redis_urls.ASYNC_BARRIERS[race_id] = redis_urls.AsyncBarrier(2)
                responses = await asyncio.gather(
                    *(
                        client.get(f"/async/race/{race_id}/{key}/")
                        for client, key in zip(clients, keys_written(pair), strict=True)
                    )
                )
                assert [response.status_code for response in responses] == [200, 200]
            stored = set((await first.get("/async/read/")).content.decode().split(","))
        expected = {key for pair in range(PAIRS) for key in keys_written(pair)}
        return len(expected - stored)

    async def test_concurrent_async_writes_all_survive_unlike_djangos_cache_engine(self):
        django_lost = await self.run_pairs(DJANGO_CACHE)
        sessionplus_lost = await self.run_pairs(SESSIONPLUS_REDIS)
        assert django_lost == PAIRS
        assert sessionplus_lost == 0
