"""
The redis engine on a real Redis Cluster of three masters, through django-redis.

Every per-request operation touches one key, so it runs unchanged; ``cycle_key`` writes the
new key then deletes the old one (two slots cannot be renamed atomically).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from django.contrib.auth import SESSION_KEY
from django.core.cache import caches
from django.test import SimpleTestCase

from sessionplus.backends.base import UpdateError
from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis.clients import async_client, sync_client
from tests.support.redis_cluster import PrivateRedisCluster, engine_on


class RedisClusterTests(SimpleTestCase):
    @pytest.fixture(autouse=True)
    def on_the_cluster(self, redis_cluster: PrivateRedisCluster) -> Iterator[None]:
        self.cluster = redis_cluster
        with engine_on(redis_cluster):
            yield

    def node_holding(self, session_key: str) -> int:
        """Return the port of the master serving the session's slot."""
        key = SessionStore.redis_key(session_key)
        for port in self.cluster.ports:
            with redis.Redis(port=port) as node:
                if node.cluster("COUNTKEYSINSLOT", node.cluster("KEYSLOT", key)):
                    return port
        raise AssertionError("the session is on no node")

    def test_the_engine_talks_to_the_cluster(self):
        assert isinstance(sync_client("cluster"), redis.cluster.RedisCluster)

    def test_django_redis_can_disconnect_and_reconnect_the_cluster(self):
        session = SessionStore()
        session["a"] = 1
        session.save()
        caches["cluster"].client.disconnect()
        assert SessionStore(session.session_key)["a"] == 1

    def test_create_load_save_touch_and_delete(self):
        session = SessionStore()
        session.update({"a": 1, "cart": ["apple"]})
        session.save()
        session = SessionStore(session.session_key)
        assert dict(session.items()) == {"a": 1, "cart": ["apple"]}
        session["cart"].append("pear")  # in place: the save finds it
        del session["a"]
        session.save()
        session = SessionStore(session.session_key)
        assert dict(session.items()) == {"cart": ["apple", "pear"]}
        session.touch()
        assert SessionStore().exists(session.session_key) is True
        session.delete()
        assert SessionStore().exists(session.session_key) is False

    def test_sessions_spread_over_the_masters(self):
        keys = []
        for number in range(30):
            session = SessionStore()
            session["n"] = number
            session.save()
            keys.append(session.session_key)
        assert len({self.node_holding(key) for key in keys}) > 1
        assert [SessionStore(key)["n"] for key in keys] == list(range(30))

    def test_concurrent_saves_of_different_keys_both_survive(self):
        session = SessionStore()
        session["a"] = 0
        session.save()
        first, second = SessionStore(session.session_key), SessionStore(session.session_key)
        first["a"], second["b"] = 1, 2
        first.save()
        second.save()
        assert dict(SessionStore(session.session_key).items()) == {"a": 1, "b": 2}

    def test_cycle_key_moves_the_session_across_slots_and_kills_the_old_key(self):
        session = SessionStore()
        session.update({SESSION_KEY: "7", "a": 1})
        session.save()
        old_key = session.session_key
        session = SessionStore(old_key)
        session.cycle_key()
        session.save()
        assert SessionStore().exists(old_key) is False
        assert dict(SessionStore(session.session_key).items()) == {SESSION_KEY: "7", "a": 1}
        assert SessionStore.sessions_for_user("7") == [session.session_key]

    def test_user_index_queries_and_pruning(self):
        keys = []
        for _ in range(3):
            session = SessionStore()
            session[SESSION_KEY] = "7"
            session.save()
            keys.append(session.session_key)
        sync_client("cluster").delete(SessionStore.redis_key(keys[0]))  # as if expired
        assert SessionStore.prune_user_indexes() == 1
        assert SessionStore.sessions_for_user("7") == sorted(keys[1:])
        assert SessionStore.end_sessions_for_user("7", keep=keys[1]) == 1
        assert SessionStore.sessions_for_user("7") == [keys[1]]

    def test_a_save_after_a_concurrent_delete_raises_update_error(self):
        session = SessionStore()
        session["a"] = 1
        session.save()
        session = SessionStore(session.session_key)
        session["b"] = 2
        SessionStore().delete(session.session_key)
        with pytest.raises(UpdateError):
            session.save()
        assert SessionStore().exists(session.session_key) is False

    async def test_async_round_trip_on_the_cluster(self):
        assert isinstance(await async_client("cluster"), redis.asyncio.cluster.RedisCluster)
        session = SessionStore()
        await session.aupdate({SESSION_KEY: "7", "a": 1})
        await session.asave()
        session = SessionStore(session.session_key)
        assert await session.aget("a") == 1
        await session.aset("b", 2)
        await session.asave()
        await session.atouch()
        old_key = session.session_key
        await session.acycle_key()
        assert await SessionStore().aexists(old_key) is False
        assert dict(await SessionStore(session.session_key).aitems()) == {
            SESSION_KEY: "7",
            "a": 1,
            "b": 2,
        }
        assert await SessionStore.asessions_for_user("7") == [session.session_key]
        await session.aflush()
        assert await SessionStore.asessions_for_user("7") == []
        assert await SessionStore.aprune_user_indexes() == 0
