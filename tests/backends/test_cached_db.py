"""
The cached_db engine over a real Redis (django-redis): the contract every engine keeps, then
write-through, budgets, and what a cache outage may and may not do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cached_db import SessionStore as DjangoStore
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, InvalidCacheBackendError
from django.core.cache.backends.locmem import LocMemCache
from django.http import HttpRequest, HttpResponse
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import path
from django.utils import timezone
from django_redis import get_redis_connection
from freezegun import freeze_time

from sessionplus.backends import cached_db
from sessionplus.backends.cached_db import (
    MAX_ENTRY_TTL,
    Found,
    SessionCache,
    SessionStore,
)
from sessionplus.backends.record import StoredSession
from sessionplus.exceptions import SessionStoreUnavailable
from sessionplus.models import Session
from tests.backends.contract import SYNC, Calls, UserIndexedStoreContract, with_twins
from tests.support.budgets import measure, operation_calls
from tests.support.counting import count_storage
from tests.support.cuttable_proxy import CuttableProxy
from tests.support.engines import ENGINES, EngineTestMixin
from tests.support.services import LIVE_OR_GONE_TIMEOUTS, dead_port, redis_url
from tests.support.signed_in import replayed_after_logout

LOGGER = "sessionplus.backends.cached_db"
DJANGO_LOGGER = "django.contrib.sessions"


def session_cache() -> SessionCache:
    return SessionStore.session_cache()


def flip_a_byte(text: str) -> str:
    data = bytearray(text.encode())
    data[5] ^= 0x01
    return data.decode()


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis")
class CachedDbSessionStoreTests(UserIndexedStoreContract, TestCase):
    engine = ENGINES["cached_db"]

    def corrupt(self, session_key: str) -> None:
        row = Session.objects.get(pk=session_key)
        Session.objects.filter(pk=session_key).update(session_data=flip_a_byte(row.session_data))
        cache = session_cache()
        generation, text = cache.cache.get(cache.entry_key(session_key))
        record = StoredSession.from_text(text)
        forged = StoredSession(flip_a_byte(record.data), record.expires_at, record.metadata)
        cache.cache.set(cache.entry_key(session_key), [generation, forged.to_text()], 60)


def saved(call: Calls = SYNC, **data: Any) -> SessionStore:
    session = SessionStore()
    call(session, "update", data)
    call(session, "save")
    return session


def loaded(session_key: str, call: Calls = SYNC) -> SessionStore:
    session = SessionStore(session_key)
    call(session, "keys")
    return session


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis")
@with_twins
class WriteThroughTests(TestCase):
    def setUp(self) -> None:
        # A process tags what it writes with the generation it last read: read once first.
        SessionStore().exists("0" * 32)

    def test_the_cache_holds_the_signed_record_of_the_current_generation(self):
        session = saved(a=1)
        cache = session_cache()
        generation, text = cache.cache.get(cache.entry_key(session.session_key))
        assert generation == cache.cache.get(cache.generation_key)
        record = StoredSession.from_text(text)
        assert SessionStore().decode(record.data) == {"a": 1}
        assert record.metadata["created_at"] is not None

    def test_a_load_is_served_from_the_cache_with_metadata(self):
        session = SessionStore()
        session["a"] = 1
        session.update_metadata(user_id="7", ip="192.0.2.1")
        session.save()
        with self.assertNumQueries(0):
            reloaded = loaded(session.session_key)
            assert reloaded["a"] == 1
            assert (reloaded.metadata.user_id, reloaded.metadata.ip) == ("7", "192.0.2.1")

    def test_cycle_key_ends_the_old_entry_and_fills_the_new_one_with_the_moved_row(self):
        session = saved(a=1)
        old_key = session.session_key
        cache = session_cache()
        session.cycle_key()
        new_key = session.session_key
        assert cache.cache.get(cache.entry_key(old_key)) == cached_db.ENDED
        with self.assertNumQueries(0):
            assert loaded(new_key)["a"] == 1
        session["b"] = 2
        session.save()
        with self.assertNumQueries(0):
            assert dict(loaded(new_key).items()) == {"a": 1, "b": 2}
        assert list(loaded(old_key).keys()) == []

    def test_a_forged_cache_entry_is_no_session_and_logged(self):
        session = saved(a=1)
        cache = session_cache()
        generation, text = cache.cache.get(cache.entry_key(session.session_key))
        record = StoredSession.from_text(text)
        forged = StoredSession('{"a": 2}', record.expires_at, record.metadata)
        cache.cache.set(cache.entry_key(session.session_key), [generation, forged.to_text()], 60)
        with self.assertLogs("django.security.SuspiciousSession", "WARNING"):
            reloaded = loaded(session.session_key)
        assert list(reloaded.keys()) == []
        assert reloaded.session_key is None

    def test_a_damaged_cache_entry_is_replaced_from_the_database(self):
        session = saved(a=1)
        cache = session_cache()
        generation = cache.cache.get(cache.generation_key)
        for damaged in ([generation, "no header"], "not an entry"):
            cache.cache.set(cache.entry_key(session.session_key), damaged, 60)
            with self.assertNumQueries(1):
                assert loaded(session.session_key)["a"] == 1
            with self.assertNumQueries(0):
                assert loaded(session.session_key)["a"] == 1

    def test_an_entry_of_an_older_generation_is_not_trusted(self):
        session = saved(a=1)
        cache = session_cache()
        cache.cache.set(cache.generation_key, "a-newer-generation", None)
        # The database changes behind the cache's back; only a distrusted entry shows it.
        Session.objects.save(session.session_key, {"a": 2}, timezone.now() + timedelta(hours=1))
        with self.assertNumQueries(1):
            assert loaded(session.session_key)["a"] == 2
        with self.assertNumQueries(0):
            assert loaded(session.session_key)["a"] == 2

    def test_a_cache_without_a_generation_gets_a_random_one(self):
        session = saved(a=1)
        cache = session_cache()
        cache.cache.delete(cache.generation_key)
        with self.assertNumQueries(1):
            assert loaded(session.session_key)["a"] == 1
        generation = cache.cache.get(cache.generation_key)
        # An integer, which django-redis reads back without unpickling it.
        assert isinstance(generation, int)
        assert 0 <= generation < 2**63
        assert generation != cached_db.new_generation()
        with self.assertNumQueries(0):
            assert loaded(session.session_key)["a"] == 1

    def both_an_earlier_releases_text_generation_is_replaced_by_an_integer_once(
        self, call: Calls
    ) -> None:
        session = saved(call, a=1)
        cache = session_cache()
        entry_key = cache.entry_key(session.session_key)
        text = cache.cache.get(entry_key)[1]
        # What an earlier release left: a text token, and entries tagged with it.
        cache.cache.set(cache.generation_key, "abcdefghijklmnop", None)
        cache.cache.set(entry_key, ["abcdefghijklmnop", text], 60)
        assert call(cache, "read", session.session_key)[0] is Found.STALE  # refilled from the db
        generation = cache.cache.get(cache.generation_key)
        assert type(generation) is int
        call(cache, "fill", session.session_key, StoredSession.from_text(text), Found.STALE)
        assert call(cache, "read", session.session_key)[0] is Found.CURRENT
        assert cache.cache.get(cache.generation_key) == generation

    def test_an_end_marker_outranks_a_fill_or_a_save_racing_the_delete(self):
        session = saved(a=1)
        cache = session_cache()
        found, record = cache.read(session.session_key)
        assert found is Found.CURRENT
        SessionStore().delete(session.session_key)
        # What requests that read the session just before the delete write just after it:
        cache.fill(session.session_key, record, Found.ABSENT)
        cache.store(session.session_key, record)
        with self.assertNumQueries(0):
            reloaded = loaded(session.session_key)
        assert list(reloaded.keys()) == []
        assert reloaded.session_key is None

    def test_entries_live_no_longer_than_the_session_nor_a_day(self):
        long_lived = saved(a=1)
        short = SessionStore()
        short["a"] = 1
        short.set_expiry(60)
        short.save()
        expired = SessionStore()
        expired["a"] = 1
        expired.set_expiry(-60)
        expired.save()
        cache = session_cache()
        assert cache.cache.ttl(cache.entry_key(long_lived.session_key)) >= MAX_ENTRY_TTL - 5
        assert cache.cache.ttl(cache.entry_key(long_lived.session_key)) <= MAX_ENTRY_TTL
        assert 55 <= cache.cache.ttl(cache.entry_key(short.session_key)) <= 60
        assert cache.cache.get(cache.entry_key(expired.session_key)) is None

    def test_touch_rewrites_the_entry_with_the_new_last_activity(self):
        created, touched = timezone.now() - timedelta(hours=1), timezone.now()
        with freeze_time(created):
            session = saved(a=1)
        with freeze_time(touched):
            session = loaded(session.session_key)
            session.touch()
        with self.assertNumQueries(0):
            reloaded = loaded(session.session_key)
            assert reloaded.metadata.last_activity == touched
            assert reloaded["a"] == 1

    def test_a_save_writes_the_whole_row_so_the_cache_copy_agrees_with_it(self):
        session = loaded(saved(a=1).session_key)
        # Another request changes a column meanwhile: this save's row and copy both win.
        Session.objects.filter(pk=session.session_key).update(ip="192.0.2.9")
        session["a"] = 2
        session.save()
        assert Session.objects.get(pk=session.session_key).ip is None
        with self.assertNumQueries(0):
            assert loaded(session.session_key).metadata.ip is None

    def test_a_save_refused_by_the_database_leaves_the_cache_alone(self):
        session = loaded(saved(a=1).session_key)
        session["a"] = 2
        Session.objects.filter(pk=session.session_key).delete()
        with pytest.raises(UpdateError):
            session.save()
        cache = session_cache()
        _, text = cache.cache.get(cache.entry_key(session.session_key))
        assert SessionStore().decode(StoredSession.from_text(text).data) == {"a": 1}

    def test_ended_sessions_of_a_user_are_marked_ended_in_the_cache(self):
        ended = SessionStore()
        ended["a"] = 1
        ended.update_metadata(user_id="7")
        ended.save()
        assert SessionStore.end_sessions_for_user("7") == 1
        with self.assertNumQueries(0):
            assert list(loaded(ended.session_key).keys()) == []

    def both_end_marker_and_refill(self, call: Calls) -> None:
        session = saved(call, a=1)
        cache = session_cache()
        call(cache.cache, "delete", cache.entry_key(session.session_key))
        assert call(SessionStore(session.session_key), "get", "a") == 1
        assert call(cache, "read", session.session_key)[0] is Found.CURRENT
        call(SessionStore(), "delete", session.session_key)
        assert call(cache, "read", session.session_key)[0] is Found.ENDED


# Outages ---------------------------------------------------------------------------------


def caches_with_sessions_at(location: str) -> dict[str, Any]:
    sessions = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": "tests",
        "OPTIONS": settings.REDIS_OPTIONS,
    }
    return {**settings.CACHES, "sessions": sessions}


@contextmanager
def writes_paused() -> Iterator[None]:
    """Pause the real Redis's writes (``CLIENT PAUSE … WRITE``): they wait unanswered."""
    redis = get_redis_connection("redis")
    redis.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
    try:
        yield
    finally:
        redis.execute_command("CLIENT", "UNPAUSE")


@contextmanager
def as_another_process() -> Iterator[None]:
    """
    Run as a process that saw none of this test's cache failures.

    cached_db keeps what a process learnt about the cache in module globals; a second
    process cannot be run inside a test, so its fresh state stands in for it.
    """
    state = (dict(cached_db._generations), set(cached_db._unsure))
    cached_db._generations.clear()
    cached_db._unsure.clear()
    try:
        yield
    finally:
        cached_db._generations.clear()
        cached_db._generations.update(state[0])
        cached_db._unsure.clear()
        cached_db._unsure.update(state[1])


@contextmanager
def cache_down() -> Iterator[None]:
    """Point the session cache alias at a port nothing listens on."""
    with override_settings(CACHES=caches_with_sessions_at(f"redis://127.0.0.1:{dead_port()}/0")):
        yield


@pytest.mark.usefixtures("redis_db")
@with_twins
class OutageTests(TestCase):
    """
    The "sessions" alias is the same Redis database as "redis", then unreachable, then back.
    """

    def setUp(self) -> None:
        live = override_settings(
            CACHES=caches_with_sessions_at(redis_url()), SESSION_CACHE_ALIAS="sessions"
        )
        live.enable()
        self.addCleanup(live.disable)
        # Leave no doubt over the cache from an earlier test: this load renews it if needed.
        SessionStore().exists("0" * 32)

    def test_reads_fall_back_to_the_database_and_writes_reach_it_with_logs(self):
        with (
            cache_down(),
            self.assertLogs(LOGGER, "WARNING") as reads,
            self.assertLogs(DJANGO_LOGGER, "ERROR") as writes,
        ):
            session = saved(a=1)
            session = loaded(session.session_key)
            assert session["a"] == 1
            session["a"] = 2
            session.save()
            session.touch()
        assert Session.objects.get(pk=session.session_key).get_decoded() == {"a": 2}
        [read] = reads.records
        assert read.getMessage().startswith("Session cache 'sessions' failed (get_many: ")
        # The three writes, each as Django's engine logs a failed cache write.
        assert len(writes.records) == 3
        for write in writes.records:
            assert write.getMessage().startswith("Error saving to cache (<django_redis.cache")
            assert write.exc_info is not None

    def test_a_failed_cache_write_is_logged_as_djangos_engine_logs_it(self):
        with cache_down(), self.assertLogs(DJANGO_LOGGER, "ERROR") as logs:
            session = saved(a=1)
        [record] = logs.records
        assert record.getMessage() == f"Error saving to cache ({session._cache})"
        assert record.exc_info is not None

    def both_a_logout_the_cache_refuses_fails_and_deletes_nothing(self, call: Calls) -> None:
        key = saved(call, _auth_user_id="1").session_key
        with cache_down(), self.assertLogs(LOGGER, "WARNING"):
            session = SessionStore(key)
            assert call(session, "get", "_auth_user_id") == "1"
            with pytest.raises(SessionStoreUnavailable, match="could not mark sessions ended"):
                call(session, "flush")
        assert Session.objects.filter(pk=key).exists()
        # Once the cache is back the logout goes through, everywhere.
        session = SessionStore(key)
        assert call(session, "get", "_auth_user_id") == "1"
        call(session, "flush")
        assert not Session.objects.filter(pk=key).exists()
        assert call(SessionStore(), "exists", key) is False
        with as_another_process():
            assert list(loaded(key, call).keys()) == []

    # The views of each mode: the sync ones call login()/logout(), the async ones
    # alogin()/alogout().
    VIEWS = {
        "sync": {"login": "/login/", "logout": "/logout/", "whoami": "/whoami/"},
        "async": {"login": "/async/login/", "logout": "/async/logout/", "whoami": "/async/whoami/"},
    }

    @override_settings(
        ROOT_URLCONF="tests.urls_middleware", SESSION_ENGINE=ENGINES["cached_db"].module
    )
    def both_a_logout_while_the_cache_is_paused_is_a_503_and_no_process_serves_it_after(
        self, call: Calls
    ) -> None:
        views = self.VIEWS[call.mode]
        get_user_model().objects.create_user("ada")
        client = call.client(self)
        call.get(client, views["login"] + "?username=ada")
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        with writes_paused(), self.assertLogs(LOGGER, "WARNING"):
            response = call.get(client, views["logout"])
        assert response.status_code == 503
        assert settings.SESSION_COOKIE_NAME not in response.cookies
        assert Session.objects.filter(pk=key).exists()
        assert call.get(client, views["whoami"]).content == b"ada"
        response = call.get(client, views["logout"])
        assert response.status_code == 200
        assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 0
        with as_another_process():
            assert list(loaded(key, call).keys()) == []
            assert loaded(key, call).session_key is None

    def test_a_save_during_the_outage_is_not_hidden_by_the_old_entry(self):
        key = saved(cart=["apple"]).session_key
        with cache_down(), self.assertLogs(LOGGER, "WARNING"):
            session = loaded(key)
            session["cart"] = []
            session.save()
        assert loaded(key)["cart"] == []

    def test_a_failed_read_alone_voids_no_entry(self):
        key = saved(a=1).session_key
        with cache_down(), self.assertLogs(LOGGER, "WARNING"):
            assert loaded(key)["a"] == 1
        with self.assertNumQueries(0):
            assert loaded(key)["a"] == 1

    def test_djangos_engine_brings_the_logged_out_session_back(self):
        session = DjangoStore()
        session["_auth_user_id"] = "1"
        session.save()
        key = session.session_key
        with cache_down(), pytest.raises(Exception, match=r"Connection refused|Error"):
            DjangoStore(key).flush()
        assert not DjangoStore.get_model_class().objects.filter(pk=key).exists()
        assert DjangoStore(key)["_auth_user_id"] == "1"

    def both_a_row_left_by_a_database_failure_after_the_end_marker_goes_with_the_next_flush(
        self, call: Calls
    ) -> None:
        key = saved(call, _auth_user_id="1").session_key
        # The marker written, then the database failed before the DELETE: the state a
        # logout answered with a 503 leaves.
        call(session_cache(), "end", [key])
        session = SessionStore(key)
        assert call(session, "get", "_auth_user_id") is None
        assert list(call(session, "keys")) == []
        call(session, "flush")
        assert not Session.objects.filter(pk=key).exists()


class NativeAsyncLocMemCache(LocMemCache):
    """locmem with an async get_many() of its own, as a backend with an async client has."""

    async def aget_many(self, keys: Any, version: Any = None) -> dict[str, Any]:
        return self.get_many(keys, version=version)


class LossyLocMemCache(LocMemCache):
    """
    locmem whose set_many() stores nothing and reports every key as not stored.

    Fault injection: memcached reports keys it could not store instead of raising, which
    cannot be produced on demand.
    """

    def set_many(self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        return list(data)


def sessions_cache(backend: type[Any]) -> Any:
    backend_path = f"{backend.__module__}.{backend.__qualname__}"
    return override_settings(
        CACHES={**settings.CACHES, "sessions": {"BACKEND": backend_path}},
        SESSION_CACHE_ALIAS="sessions",
    )


@with_twins
class CacheBackendTests(TestCase):
    @override_settings(SESSION_CACHE_ALIAS="sessions")
    def test_an_unknown_session_cache_alias_fails_when_a_store_is_built(self):
        # As Django's engine does (its ticket #21000), not at the first cache call.
        with pytest.raises(InvalidCacheBackendError, match="sessions"):
            SessionStore()

    @sessions_cache(NativeAsyncLocMemCache)
    def both_a_load_is_the_backends_own_get_many_of_the_mode(self, call: Calls) -> None:
        session = saved(call, a=1)
        call(SessionStore(), "exists", "0" * 32)
        with count_storage() as count:
            assert call(SessionStore(session.session_key), "get", "a") == 1
        assert count.cache[0] == call.name("get_many")
        assert call.name("get") not in count.cache

    @sessions_cache(LossyLocMemCache)
    def test_keys_a_backend_reports_not_stored_count_as_a_failed_write(self):
        session = saved(a=1)
        with self.assertLogs(LOGGER, "WARNING") as logs, pytest.raises(SessionStoreUnavailable):
            SessionStore().delete(session.session_key)
        assert "2 keys were not stored" in logs.output[0]
        # Without its end marker the session is not deleted.
        assert loaded(session.session_key)["a"] == 1


# Budgets ---------------------------------------------------------------------------------


def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no session here")


def reads(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.session.get("a")))


urlpatterns = [path("untouched/", untouched), path("reads/", reads)]


def evict(store_class: type[Any], session_key: str) -> None:
    caches["redis"].delete(store_class.cache_key_prefix + session_key)


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis", SESSION_ENGINE=ENGINES["cached_db"].module)
@with_twins
class CachedDbBudgetTests(TransactionTestCase):
    """SQL statements in autocommit mode, plus cache calls, per operation."""

    def setUp(self) -> None:
        # The first load on an emptied cache gives it a generation (one call more).
        SessionStore().exists("0" * 32)

    def test_each_operation_is_one_statement_and_one_cache_call_at_most(self):
        assert measure(SessionStore, partial(evict, SessionStore)) == {
            "load": ["cache.get_many"],
            "load (miss)": ["SELECT", "cache.get_many", "cache.add"],
            "save": ["UPDATE", "cache.set"],
            "create": ["INSERT", "cache.set"],
            "refresh": ["UPDATE", "cache.set"],
            "delete": ["DELETE", "cache.set_many"],
            "login": ["UPDATE", "cache.get_many", "cache.set_many", "cache.set"],
        }

    def test_djangos_engine_spends_more_on_the_same_operations(self):
        assert measure(DjangoStore, partial(evict, DjangoStore)) == {
            "load": ["cache.get"],
            "load (miss)": ["SELECT", "cache.get", "cache.set"],
            "save": ["BEGIN", "UPDATE", "COMMIT", "cache.set"],
            "create": [
                *["SELECT", "BEGIN", "INSERT", "COMMIT"],
                *["cache.has_key", "cache.set", "cache.set"],
            ],
            "refresh": ["BEGIN", "UPDATE", "COMMIT", "cache.set"],
            "delete": ["SELECT", "DELETE", "cache.delete"],
            "login": [
                *["SELECT", "BEGIN", "INSERT", "COMMIT", "SELECT", "DELETE"],
                *["BEGIN", "UPDATE", "COMMIT"],
                *["cache.get", "cache.has_key", "cache.set", "cache.delete", "cache.set"],
            ],
        }

    def test_a_load_from_django_redis_is_one_mget(self):
        key = saved(a=1).session_key
        with count_storage(redis=True) as count:
            assert SessionStore(key)["a"] == 1
        assert count.calls == ["cache.get_many", "redis.MGET"]
        assert count.round_trips == 1

    def test_an_ended_session_costs_one_cache_call(self):
        key = saved(a=1).session_key
        SessionStore().delete(key)
        with count_storage() as count:
            assert list(SessionStore(key).keys()) == []
        assert count.calls == ["cache.get_many"]

    def test_per_user_operations(self):
        session = SessionStore()
        session["a"] = 1
        session.update_metadata(user_id="7")
        session.save()
        with count_storage() as listing:
            assert SessionStore.sessions_for_user("7") == [session.session_key]
        with count_storage() as ending:
            assert SessionStore.end_sessions_for_user("7") == 1
        assert listing.calls == ["SELECT"]
        assert ending.calls == ["SELECT", "DELETE", "cache.set_many"]

    def both_operations_keep_the_budgets(self, call: Calls) -> None:
        # django-redis has no async methods of its own: in async the engine runs the sync
        # ones in a thread (BaseCache's aget_many() would be one aget() per key).
        assert operation_calls(SessionStore, call) == [
            ["INSERT", "cache.set"],
            ["cache.get_many"],
            ["UPDATE", "cache.set"],
            ["UPDATE", "cache.set"],
            ["DELETE", "cache.set_many"],
        ]

    @override_settings(ROOT_URLCONF=__name__)
    def test_a_request_that_never_touches_the_session_costs_nothing_and_a_read_one_call(self):
        session = saved(a=1)
        self.client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
        with count_storage() as untouched:
            assert self.client.get("/untouched/").content == b"no session here"
        with count_storage() as read:
            assert self.client.get("/reads/").content == b"1"
        assert (untouched.calls, read.calls) == ([], ["cache.get_many"])


@pytest.mark.usefixtures("redis_db")
@with_twins
class CachedDbLogoutThroughACacheFaultTests(EngineTestMixin, TestCase):
    """
    A logout on cached_db never looks successful while a cached copy could outlive it.

    The session cache is a real Redis behind a real proxy, whose link is cut the moment
    Django starts logging out (``user_logged_out`` is sent before the session is flushed):
    the end marker cannot be written, so the logout answers 503 and deletes nothing.
    """

    engine = ENGINES["cached_db"]

    def setUp(self) -> None:
        target = urlsplit(redis_url())
        self.proxy = CuttableProxy(target.hostname, target.port).__enter__()
        self.addCleanup(self.proxy.__exit__, None, None, None)
        cache = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{self.proxy.port}{target.path}",
            "KEY_PREFIX": "hardening-proxied",
            "OPTIONS": LIVE_OR_GONE_TIMEOUTS,
        }
        overridden = override_settings(
            CACHES={**settings.CACHES, "proxied": cache}, SESSION_CACHE_ALIAS="proxied"
        )
        overridden.enable()
        self.addCleanup(overridden.disable)
        super().setUp()
        self.user = User.objects.create_user("alice", password="secret")

    def cut_on_logout(self) -> None:
        def cut(**kwargs: Any) -> None:
            user_logged_out.disconnect(cut)  # the first logout only
            self.proxy.cut()

        user_logged_out.connect(cut)
        self.addCleanup(user_logged_out.disconnect, cut)

    def entry(self, session_key: str) -> Any:
        return caches["proxied"].get(self.engine.store_class.cache_key_prefix + session_key)

    def both_a_logout_the_cache_missed_fails_and_the_retry_ends_the_session(
        self, call: Calls
    ) -> None:
        client = call.client(self)
        call(client, "force_login", self.user)
        old = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert call.get(client, "/read/").content.startswith(b"authenticated=True")
        assert isinstance(self.entry(old), list)  # cached, so a stale copy could outlive the row

        self.cut_on_logout()
        with self.assertLogs("sessionplus.middleware", "ERROR") as logs:
            response = call.get(client, "/logout/")
        self.proxy.restore()
        assert response.status_code == 503
        assert settings.SESSION_COOKIE_NAME not in response.cookies
        assert "Session store unavailable" in logs.output[0]
        assert self.store().model.objects.filter(session_key=old).exists() is True
        assert isinstance(self.entry(old), list)
        assert call.get(client, "/read/").content.startswith(b"authenticated=True")

        response = replayed_after_logout(call, client, old)
        assert response.content == b"authenticated=False keys="
        response = call.get(client, "/write/")
        assert response.cookies[settings.SESSION_COOKIE_NAME].value != old
        assert self.store().exists(old) is False
