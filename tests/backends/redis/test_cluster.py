"""
The redis engine on a real Redis Cluster of three masters, through django-redis.

Every per-request operation touches one key, so it runs unchanged; ``cycle_key`` writes the
new key then deletes the old one (two slots cannot be renamed atomically).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from asgiref.sync import async_to_sync
from django.contrib.auth import SESSION_KEY
from django.core.cache import caches
from django.test import SimpleTestCase

from sessionplus.backends.base import UpdateError
from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis.clients import async_client, sync_client
from tests.backends.contract import Calls, with_twins
from tests.backends.redis.test_engine import saved_by
from tests.support.redis_cluster import PrivateRedisCluster, engine_on

# The client each mode's store talks to the cluster through, and the class it must be.
CLIENTS = {
    "sync": (sync_client, redis.cluster.RedisCluster),
    "async": (async_to_sync(async_client), redis.asyncio.cluster.RedisCluster),
}


@with_twins
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

    def both_the_engine_talks_to_the_cluster(self, call: Calls) -> None:
        client, cluster_class = CLIENTS[call.mode]
        assert isinstance(client("cluster"), cluster_class)

    def test_django_redis_can_disconnect_and_reconnect_the_cluster(self):
        session = SessionStore()
        session["a"] = 1
        session.save()
        caches["cluster"].client.disconnect()
        assert SessionStore(session.session_key)["a"] == 1

    def both_create_load_save_touch_and_delete(self, call: Calls) -> None:
        session = saved_by(call, a=1, cart=["apple"])
        session = SessionStore(session.session_key)
        assert dict(call(session, "items")) == {"a": 1, "cart": ["apple"]}
        call(session, "get", "cart").append("pear")  # in place: the save finds it
        call(session, "pop", "a")
        call(session, "save")
        session = SessionStore(session.session_key)
        assert dict(call(session, "items")) == {"cart": ["apple", "pear"]}
        call(session, "touch")
        assert call(SessionStore(), "exists", session.session_key) is True
        call(session, "delete")
        assert call(SessionStore(), "exists", session.session_key) is False

    def both_sessions_spread_over_the_masters(self, call: Calls) -> None:
        keys = [saved_by(call, n=number).session_key for number in range(30)]
        assert len({self.node_holding(key) for key in keys}) > 1
        assert [call(SessionStore(key), "get", "n") for key in keys] == list(range(30))

    def both_concurrent_saves_of_different_keys_both_survive(self, call: Calls) -> None:
        session = saved_by(call, a=0)
        first, second = SessionStore(session.session_key), SessionStore(session.session_key)
        call(first, "set", "a", 1)
        call(second, "set", "b", 2)
        call(first, "save")
        call(second, "save")
        assert dict(call(SessionStore(session.session_key), "items")) == {"a": 1, "b": 2}

    def both_cycle_key_moves_the_session_across_slots_and_kills_the_old_key(
        self, call: Calls
    ) -> None:
        session = saved_by(call, **{SESSION_KEY: "7", "a": 1})
        old_key = session.session_key
        session = SessionStore(old_key)
        assert call(session, "get", "a") == 1
        call(session, "set", "b", 2)
        call(session, "save")
        call(session, "touch")
        call(session, "cycle_key")
        call(session, "save")
        assert call(SessionStore(), "exists", old_key) is False
        assert dict(call(SessionStore(session.session_key), "items")) == {
            SESSION_KEY: "7",
            "a": 1,
            "b": 2,
        }
        assert call(SessionStore, "sessions_for_user", "7") == [session.session_key]
        call(session, "flush")
        assert call(SessionStore, "sessions_for_user", "7") == []
        assert call(SessionStore, "prune_user_indexes") == 0

    def both_user_index_queries_and_pruning(self, call: Calls) -> None:
        keys = [saved_by(call, **{SESSION_KEY: "7"}).session_key for _ in range(3)]
        sync_client("cluster").delete(SessionStore.redis_key(keys[0]))  # as if expired
        assert call(SessionStore, "prune_user_indexes") == 1
        assert call(SessionStore, "sessions_for_user", "7") == sorted(keys[1:])
        assert call(SessionStore, "end_sessions_for_user", "7", keep=keys[1]) == 1
        assert call(SessionStore, "sessions_for_user", "7") == [keys[1]]

    def both_a_save_after_a_concurrent_delete_raises_update_error(self, call: Calls) -> None:
        session = SessionStore(saved_by(call, a=1).session_key)
        call(session, "set", "b", 2)
        call(SessionStore(), "delete", session.session_key)
        with pytest.raises(UpdateError):
            call(session, "save")
        assert call(SessionStore(), "exists", session.session_key) is False
