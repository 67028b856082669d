"""The redis engine behind Redis Sentinel, configured the django-redis way, sync and async."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import SimpleTestCase, override_settings

from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis.clients import async_client, sync_client
from tests.backends.contract import Calls, with_twins
from tests.support.redis_sentinel import SERVICE, PrivateRedisSentinel

# The client each mode's store goes through, and the pool it must have to follow Sentinel.
CLIENTS = {
    "sync": (sync_client, redis.sentinel.SentinelConnectionPool),
    "async": (async_to_sync(async_client), redis.asyncio.sentinel.SentinelConnectionPool),
}


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[PrivateRedisSentinel]:
    sentinel = PrivateRedisSentinel()
    sentinel.start()
    yield sentinel
    sentinel.stop()


@with_twins
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

    def both_sessions_are_written_to_the_master_sentinel_names(self, call: Calls) -> None:
        client, pool_class = CLIENTS[call.mode]
        assert isinstance(client("sentinel").connection_pool, pool_class)
        session = SessionStore()
        call(session, "set", "a", 1)
        call(session, "save")
        assert self.master.exists(SessionStore.redis_key(session.session_key)) == 1
        assert call(SessionStore(session.session_key), "get", "a") == 1
        session = SessionStore(session.session_key)
        call(session, "set", "b", 2)
        call(session, "save")
        assert dict(call(SessionStore(session.session_key), "items")) == {"a": 1, "b": 2}
