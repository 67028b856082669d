"""The cache engine on locmem, django-redis, Django's own Redis backend and memcached."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.backends.cache import SessionStore as DjangoCacheStore
from django.core.cache import caches
from django.test import SimpleTestCase, override_settings
from django.utils import timezone
from freezegun import freeze_time

from sessionplus.backends.cache import KEY_PREFIX, SessionStore
from sessionplus.backends.django_signing import signer
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.exceptions import SessionStoreUnavailable
from tests.backends.contract import MALFORMED_KEYS, Calls, ServerSideStoreContract, with_twins
from tests.support.counting import StorageCount, count_storage
from tests.support.engines import ENGINES
from tests.support.services import dead_port

ONE_EACH = {"create": 1, "load": 1, "save": 1, "touch": 1, "delete": 1}


@with_twins
class CacheEngineContract(ServerSideStoreContract):
    """The contract plus the engine-only tests, run on every cache backend below."""

    engine = ENGINES["cache"]
    alias = "default"
    # The cache calls a save of an existing session, and a touch of an unmodified one, make
    # on this backend (django-redis: SET XX, and the touch's script through its client).
    save_calls = ["set"]
    touch_calls: list[str] = []
    # The async save's calls, where they are not the async names of ``save_calls``.
    async_save_calls: list[str] | None = None

    def setUp(self) -> None:
        super().setUp()
        override = override_settings(SESSION_CACHE_ALIAS=self.alias)
        override.enable()
        self.addCleanup(override.disable)

    @property
    def cache(self):
        return caches[self.alias]

    def raw(self, session_key: str) -> str | None:
        return self.cache.get(KEY_PREFIX + session_key)

    def corrupt(self, session_key: str) -> None:
        text = self.raw(session_key)
        header, payload = text.split("\n")
        flipped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
        self.cache.set(KEY_PREFIX + session_key, f"{header}\n{flipped}", 60)

    # What is stored ------------------------------------------------------------------

    def test_entry_is_a_signed_encoding_with_an_expiry_and_metadata_header(self):
        session = self.saved(cat="lion")
        text = self.raw(session.session_key)
        assert isinstance(text, str)
        header, payload = text.split("\n")
        header = json.loads(header)
        assert abs(header["expires_at"] - (now_timestamp() + 1209600)) < 5
        assert abs(header["created_at"] - now_timestamp()) < 5
        assert "cat" not in header
        # The data's JSON signed as it is (tests/backends/test_base.py: StoredDataChecks).
        assert signer(session.key_salt).loads(payload, session.serializer) == {"cat": "lion"}

    def test_entry_of_another_type_is_no_session_and_logged(self):
        # What Django's own engine stores: the raw session dict.
        key = "c" * 32
        self.cache.set(KEY_PREFIX + key, {"cat": "lion"}, 60)
        with self.assertLogs("django.security.SuspiciousSession", "WARNING"):
            session = self.store(key)
            assert list(session.keys()) == []
        assert session.session_key is None

    def test_damaged_header_is_no_session_and_logged(self):
        session = self.saved(a=1)
        for header in ("{", "[]", '{"expires_at": "soon"}', '{"expires_at": 1e999}'):
            payload = self.raw(session.session_key).split("\n")[1]
            self.cache.set(KEY_PREFIX + session.session_key, f"{header}\n{payload}", 60)
            with self.assertLogs("django.security.SuspiciousSession", "WARNING"):
                assert list(self.reloaded(session).keys()) == [], header

    def test_entry_past_the_expiry_in_its_header_is_refused(self):
        session = self.saved(a=1)
        payload = self.raw(session.session_key).split("\n")[1]
        header = json.dumps({"expires_at": now_timestamp() - 1})
        self.cache.set(KEY_PREFIX + session.session_key, f"{header}\n{payload}", 60)
        loaded = self.reloaded(session)
        assert list(loaded.keys()) == []
        assert loaded.session_key is None
        assert self.store().exists(session.session_key) is False

    def test_key_collision_on_create_retries_with_a_new_key(self):
        taken = self.saved(a=1).session_key

        class CollidingStore(SessionStore):
            # A real collision of random keys cannot be provoked: hand out a taken key first.
            keys = iter([taken, "d" * 32])

            def _get_new_session_key(self) -> str:
                return next(self.keys)

        session = CollidingStore()
        session["b"] = 2
        session.save()
        assert session.session_key == "d" * 32
        # The signing salt names the store class, so read back with the same class.
        assert CollidingStore(session.session_key)["b"] == 2
        assert self.store(taken)["a"] == 1

    def both_save_with_must_create_on_an_existing_key_raises_create_error(
        self, call: Calls
    ) -> None:
        session = self.saved_by(call, a=1)
        with pytest.raises(CreateError):
            call(session, "save", must_create=True)

    def test_cache_key_names_the_entry_as_djangos_engine_does(self):
        session = self.saved(a=1)
        assert session.cache_key == KEY_PREFIX + session.session_key
        assert self.cache.get(session.cache_key) == self.raw(session.session_key)

    def both_cache_key_creates_a_key_when_there_is_none(self, call: Calls) -> None:
        session = self.store()
        key = call(session, "cache_key")
        assert key == KEY_PREFIX + session.session_key

    def both_save_after_delete_does_not_bring_the_entry_back(self, call: Calls) -> None:
        session = self.reloaded(self.saved_by(call, a=1))
        call(session, "set", "b", 2)
        self.cache.delete(KEY_PREFIX + session.session_key)
        with pytest.raises(UpdateError):
            call(session, "save")
        assert self.raw(session.session_key) is None

    # Budgets -----------------------------------------------------------------------

    def both_malformed_keys_cost_no_cache_call(self, call: Calls) -> None:
        with count_storage() as count:
            for bad_key in MALFORMED_KEYS:
                session = self.store(bad_key)
                assert list(call(session, "keys")) == []
                assert call(session, "exists", bad_key) is False
                call(session, "delete", bad_key)
        assert count.cache == []

    # In async, Django's BaseCache serves each call by its sync twin in a thread: counted
    # once, by the async name.

    def both_budget_untouched_and_new_sessions_cost_nothing(self, call: Calls) -> None:
        key = self.saved_by(call, a=1).session_key
        with count_storage() as count:
            self.store(key)
            assert call(self.store(), "get", "a") is None
        assert count.cache == []

    def both_budget_load_is_one_get(self, call: Calls) -> None:
        key = self.saved_by(call, a=1).session_key
        with count_storage() as count:
            assert call(self.store(key), "get", "a") == 1
        assert count.cache == [call.name("get")]

    def both_budget_create_is_one_add(self, call: Calls) -> None:
        session = self.store()
        call(session, "set", "a", 1)
        with count_storage() as count:
            call(session, "save")
        assert count.cache == [call.name("add")]

    def both_budget_save_and_touch(self, call: Calls) -> None:
        session = self.reloaded(self.saved_by(call, a=1))
        call(session, "set", "b", 2)
        with count_storage() as count:
            call(session, "save")
        if call.mode == "async" and self.async_save_calls is not None:
            assert count.cache == self.async_save_calls
        else:
            assert count.cache == [call.name(name) for name in self.save_calls]
        session = self.reloaded(session)
        call(session, "get", "a")  # the middleware touches a loaded, unmodified session
        with count_storage() as count:
            call(session, "touch")
        assert count.cache == [call.name(name) for name in self.touch_calls]

    def both_a_touch_after_the_entry_expired_raises_update_error(self, call: Calls) -> None:
        session = self.store()
        call(session, "set", "a", 1)
        call(session, "set_expiry", 60)
        call(session, "save")
        session = self.reloaded(session)
        call(session, "get", "a")
        with freeze_time(timezone.now() + timedelta(seconds=120)), pytest.raises(UpdateError):
            call(session, "touch")

    def both_budget_delete_is_one_delete(self, call: Calls) -> None:
        session = self.saved_by(call, a=1)
        with count_storage() as count:
            call(session, "delete")
        assert count.cache == [call.name("delete")]

    def costs(
        self, call: Calls, cost: Callable[[StorageCount], int], **servers: bool
    ) -> dict[str, int]:
        """Return what each operation costs, as ``cost`` reads it from its count."""
        return call.in_one_loop(self.count_costs, call, cost, servers)

    def count_costs(
        self, call: Calls, cost: Callable[[StorageCount], int], servers: dict[str, bool]
    ) -> dict[str, int]:
        # One event loop for all: in async, a client's connections belong to its loop.
        counts: dict[str, StorageCount] = {}
        session = self.store()
        call(session, "set", "a", 1)
        with count_storage(**servers) as counts["create"]:
            call(session, "save")
        session = self.store(session.session_key)
        with count_storage(**servers) as counts["load"]:
            call(session, "load")
        call(session, "set", "b", 2)
        with count_storage(**servers) as counts["save"]:
            call(session, "save")
        session = self.store(session.session_key)
        call(session, "get", "a")  # loaded, unmodified: what the middleware touches
        with count_storage(**servers) as counts["touch"]:
            call(session, "touch")
        with count_storage(**servers) as counts["delete"]:
            call(session, "delete")
        return {operation: cost(count) for operation, count in counts.items()}


@with_twins
class LocmemCacheSessionStoreTests(CacheEngineContract, SimpleTestCase):
    alias = "default"
    # locmem has no conditional write: touch probes that the entry still exists, then set;
    # a session's touch reads the entry first.
    save_calls = ["touch", "set"]
    touch_calls = ["get", "touch", "set"]

    def test_djangos_cache_engine_costs_more_for_the_same_operations(self):
        def measure(store_class):
            counts = {}
            with count_storage() as counts["new session read"]:
                store_class().get("a")
            session = store_class()
            session["a"] = 1
            with count_storage() as counts["create"]:
                session.save()
            with count_storage() as counts["load"]:
                session = store_class(session.session_key)
                session["a"]
            session["b"] = 2
            with count_storage() as counts["save"]:
                session.save()
            with count_storage() as counts["delete"]:
                session.delete()
            return {operation: count.cache for operation, count in counts.items()}

        assert measure(DjangoCacheStore) == {
            "new session read": [],
            "create": ["has_key", "add"],
            "load": ["get"],
            "save": ["get", "set"],
            "delete": ["delete"],
        }
        assert measure(SessionStore) == {
            "new session read": [],
            "create": ["add"],
            "load": ["get"],
            "save": ["touch", "set"],
            "delete": ["delete"],
        }


@pytest.mark.usefixtures("redis_db")
@with_twins
class DjangoRedisCacheSessionStoreTests(CacheEngineContract, SimpleTestCase):
    alias = "redis"
    async_save_calls = ["set"]  # areplace() runs replace()'s SET XX in a thread

    def both_every_operation_is_one_redis_round_trip(self, call: Calls) -> None:
        # Round trips, not commands: the server counts the GET and SET a script runs.
        assert self.costs(call, lambda count: count.round_trips, redis=True) == ONE_EACH

    def test_a_client_that_stores_values_its_own_way_touches_by_reading_first(self):
        # django-redis's herd client wraps every value: the touch's script cannot compare it.
        herd = {**settings.CACHES["redis"]}
        herd["OPTIONS"] = {**herd["OPTIONS"], "CLIENT_CLASS": "django_redis.client.HerdClient"}
        caches_with_herd = {**settings.CACHES, "herd": herd}
        with override_settings(CACHES=caches_with_herd, SESSION_CACHE_ALIAS="herd"):
            session = self.reloaded(self.saved(a=1))
            session["a"]
            with count_storage(redis=True) as count:
                session.touch()
            assert count.round_trips == 2
            assert self.reloaded(session)["a"] == 1

    def test_djangos_cache_engine_needs_two_round_trips_to_create_and_to_save(self):
        session = DjangoCacheStore()
        session["a"] = 1
        with count_storage(redis=True) as create:
            session.save()
        session = DjangoCacheStore(session.session_key)
        session["b"] = 2
        with count_storage(redis=True) as save:
            session.save()
        assert (len(create.redis), len(save.redis)) == (2, 2)

    def test_entry_expires_with_the_session(self):
        with override_settings(SESSION_COOKIE_AGE=100):
            session = self.saved(a=1)
        assert 95 <= self.cache.ttl(KEY_PREFIX + session.session_key) <= 100
        with override_settings(SESSION_COOKIE_AGE=1000):
            session = self.reloaded(session)
            session["a"]
            session.touch()
            assert 995 <= self.cache.ttl(KEY_PREFIX + session.session_key) <= 1000
            header = json.loads(self.raw(session.session_key).split("\n")[0])
            assert abs(header["expires_at"] - (now_timestamp() + 1000)) < 5

    def test_custom_expiry_sets_the_entry_timeout(self):
        session = self.store()
        session["a"] = 1
        session.set_expiry(timezone.now() + timedelta(seconds=300))
        session.save()
        assert 295 <= self.cache.ttl(KEY_PREFIX + session.session_key) <= 300

    def both_save_is_one_command_and_refuses_a_deleted_session(self, call: Calls) -> None:
        session = self.store(self.saved_by(call, a=1).session_key)
        call(session, "set", "b", 2)
        with count_storage(redis=True) as executed:
            call(session, "save")
        assert len(executed.redis) == 1
        call(self.store(), "delete", session.session_key)
        with pytest.raises(UpdateError):
            call(session, "save")
        assert self.raw(session.session_key) is None


@pytest.mark.usefixtures("redis_db")
@with_twins
class DjangoBuiltinRedisCacheSessionStoreTests(CacheEngineContract, SimpleTestCase):
    alias = "redis_builtin"
    # The conditional SET and the touch's script go through the backend's client (counted below).
    save_calls = touch_calls = []

    def both_every_operation_is_one_redis_round_trip(self, call: Calls) -> None:
        # Round trips, not commands: the server counts the GET and SET a script runs.
        assert self.costs(call, lambda count: count.round_trips, redis=True) == ONE_EACH


@pytest.mark.usefixtures("memcached_db")
@with_twins
class MemcachedCacheSessionStoreTests(CacheEngineContract, SimpleTestCase):
    alias = "memcached"
    save_calls = []  # memcached's replace goes through the backend's client (counted below)
    touch_calls = ["get"]  # no compare-and-set: the touch reads the entry, then replaces it

    def both_every_operation_but_touch_is_one_memcached_command(self, call: Calls) -> None:
        costs = self.costs(call, lambda count: len(count.memcached), memcached=True)
        assert costs == {**ONE_EACH, "touch": 2}

    def test_djangos_cache_engine_needs_two_commands_to_create_and_to_save(self):
        session = DjangoCacheStore()
        session["a"] = 1
        with count_storage(memcached=True) as create:
            session.save()
        session = DjangoCacheStore(session.session_key)
        session["b"] = 2
        with count_storage(memcached=True) as save:
            session.save()
        assert (len(create.memcached), len(save.memcached)) == (2, 2)


def dead_caches() -> dict[str, dict]:
    """CACHES with one alias per backend, each pointing at a port nothing listens on."""
    port = dead_port()
    return {
        **settings.CACHES,
        "dead_django_redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
        },
        "dead_redis_builtin": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        },
        "dead_memcached": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": f"127.0.0.1:{port}",
            "OPTIONS": {"connect_timeout": 1, "timeout": 1, "retry_attempts": 0},
        },
    }


@with_twins
class UnreachableCacheTests(SimpleTestCase):
    aliases = ("dead_django_redis", "dead_redis_builtin", "dead_memcached")

    def setUp(self) -> None:
        override = override_settings(CACHES=dead_caches())
        override.enable()
        self.addCleanup(override.disable)

    def each_alias(self) -> Iterator[str]:
        for alias in self.aliases:
            with self.subTest(alias=alias), override_settings(SESSION_CACHE_ALIAS=alias):
                yield alias

    def both_every_operation_raises_session_store_unavailable_with_the_cause(
        self, call: Calls
    ) -> None:
        key = "e" * 32
        operations = {
            "load": lambda: call(SessionStore(key), "load"),
            "exists": lambda: call(SessionStore(), "exists", key),
            "delete": lambda: call(SessionStore(), "delete", key),
            "create": lambda: call(SessionStore(), "create"),
            "save": lambda: call(SessionStore(key), "save"),
        }
        for _alias in self.each_alias():
            for name, operation in operations.items():
                with pytest.raises(SessionStoreUnavailable) as raised:
                    operation()
                assert raised.value.__cause__ is not None, name
