"""
No lost updates: concurrent requests on one session, each changing a different key.

Each pair of requests loads the session, meets at a barrier (so both hold the same
snapshot), then writes its own key; the middleware saves both. Django's cache engine
saves the whole session, so the second save wipes the first request's key; the redis
engine saves only what each request changed. Sync requests race in two threads, async
ones in one event loop.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import SimpleTestCase, override_settings

from tests import redis_urls
from tests.backends.contract import Calls, with_twins

PAIRS = 25
DJANGO_CACHE = "django.contrib.sessions.backends.cache"
SESSIONPLUS_REDIS = "sessionplus.backends.redis"


def keys_written(pair: int) -> tuple[str, str]:
    return f"left{pair}", f"right{pair}"


class Race:
    """Send requests at once and wait for them: WSGI ones in threads, ASGI ones gathered."""

    def __init__(self, call: Calls) -> None:
        self.call = call
        self.views = "/async" if call.mode == "async" else ""

    def barrier(self, race_id: str) -> str:
        """Set the barrier of ``race_id``; return the path prefix of its race view."""
        if self.call.mode == "async":
            redis_urls.ASYNC_BARRIERS[race_id] = redis_urls.AsyncBarrier(2)
        else:
            redis_urls.BARRIERS[race_id] = threading.Barrier(2)
        return f"{self.views}/race/{race_id}"

    def run(self, requests: list[tuple[Any, str]]) -> list[Any]:
        """GET each ``(client, path)`` at the same time; return the responses."""
        if self.call.mode == "async":

            async def gathered() -> list[Any]:
                return await asyncio.gather(*(client.get(path) for client, path in requests))

            return async_to_sync(gathered)()
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            futures = [pool.submit(client.get, path) for client, path in requests]
            return [future.result() for future in futures]


@pytest.mark.usefixtures("redis_db")
@override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_CACHE_ALIAS="redis")
@with_twins
class LostUpdateTests(SimpleTestCase):
    def run_pairs(self, call: Calls, engine: str) -> int:
        """Run PAIRS races through the full middleware; return how many writes were lost."""
        race = Race(call)
        with override_settings(SESSION_ENGINE=engine):
            first = call.new_client()
            assert call.get(first, "/write/seed/").status_code == 200
            cookie = first.cookies[settings.SESSION_COOKIE_NAME].value
            clients = [call.new_client(), call.new_client()]
            for client in clients:
                client.cookies[settings.SESSION_COOKIE_NAME] = cookie
            for pair in range(PAIRS):
                race_view = race.barrier(f"{engine}-{pair}")
                responses = race.run(
                    [
                        (client, f"{race_view}/{key}/")
                        for client, key in zip(clients, keys_written(pair), strict=True)
                    ]
                )
                assert [response.status_code for response in responses] == [200, 200]
            stored = set(call.get(first, f"{race.views}/read/").content.decode().split(","))
        expected = {key for pair in range(PAIRS) for key in keys_written(pair)}
        return len(expected - stored)

    def both_concurrent_writes_to_different_keys_all_survive_unlike_djangos_cache_engine(
        self, call: Calls
    ) -> None:
        django_lost = self.run_pairs(call, DJANGO_CACHE)
        sessionplus_lost = self.run_pairs(call, SESSIONPLUS_REDIS)
        # Both requests of a pair saved a snapshot taken before either wrote: Django's
        # whole-session save loses exactly one write per pair.
        assert django_lost == PAIRS
        assert sessionplus_lost == 0
