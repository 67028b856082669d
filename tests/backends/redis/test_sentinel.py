"""The redis engine behind Redis Sentinel, configured the django-redis way, sync and async."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.test import SimpleTestCase, override_settings

from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis.clients import async_client
from tests.support.redis_sentinel import SERVICE, PrivateRedisSentinel


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[PrivateRedisSentinel]:
    sentinel = PrivateRedisSentinel()
    sentinel.start()
    yield sentinel
    sentinel.stop()


class RedisSentinelTests(SimpleTestCase):
    @pytest.fixture(autouse=True)
    def behind_sentinel(self, redis_sentinel: PrivateRedisSentinel) -> Iterator[None]:
        alias = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{SERVICE}/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "SENTINELS": [("127.0.0.1", redis_sentinel.port)],
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
        self.master = redis.Redis(port=redis_sentinel.master.port)
        with override_settings(
            CACHES={**settings.CACHES, "sentinel": alias}, SESSIONPLUS_REDIS_ALIAS="sentinel"
        ):
            yield
        self.master.flushdb()
        self.master.close()

    def test_sessions_are_written_to_the_master_sentinel_names(self):
        session = SessionStore()
        session["a"] = 1
        session.save()
        assert self.master.exists(SessionStore.redis_key(session.session_key)) == 1
        session = SessionStore(session.session_key)
        session["b"] = 2
        session.save()
        assert dict(SessionStore(session.session_key).items()) == {"a": 1, "b": 2}

    async def test_async_sessions_go_through_sentinel_too(self):
        client = await async_client("sentinel")
        assert isinstance(client.connection_pool, redis.asyncio.sentinel.SentinelConnectionPool)
        session = SessionStore()
        await session.aset("a", 1)
        await session.asave()
        assert self.master.exists(SessionStore.redis_key(session.session_key)) == 1
        assert await SessionStore(session.session_key).aget("a") == 1
