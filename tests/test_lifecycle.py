"""
The lifecycle of a request's session, driven through a store's hooks without the middleware:
kept or ended as it loads, which write a response makes, and the signals.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.db import SessionStore as DjangoDbStore
from django.test import RequestFactory, SimpleTestCase, TestCase, override_settings
from freezegun import freeze_time

from sessionplus import lifecycle
from sessionplus.backends.base import LifecycleHooks
from sessionplus.exceptions import SessionStoreUnavailable
from sessionplus.signals import session_created, session_ended
from tests.support import memory_engine
from tests.support.middleware_support import received

START = datetime(2030, 1, 1, tzinfo=dt_timezone.utc)
factory = RequestFactory()


def browser_request(user_agent: str = "Firefox", ip: str = "192.0.2.1"):
    return factory.get("/", HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)


def stored_session(user_agent: str = "Firefox", ip: str = "192.0.2.1") -> str:
    """Save a session the way the middleware does at START; return its key."""
    with freeze_time(START):
        store = memory_engine.SessionStore()
        store["cart"] = ["apple"]
        store.update_metadata(user_agent=user_agent, ip=ip)
        store.save()
    return store.session_key


def serving(session_key: str | None, request=None) -> memory_engine.SessionStore:
    store = memory_engine.SessionStore(session_key)
    store.request = browser_request() if request is None else request
    return store


class HookedTests(TestCase):
    def test_a_sessionplus_engine_has_the_hooks_itself(self):
        assert lifecycle.hooked(memory_engine.SessionStore) is memory_engine.SessionStore

    def test_djangos_engine_gets_them_in_front_and_keeps_its_names_and_salt(self):
        store_class = lifecycle.hooked(DjangoDbStore)
        assert issubclass(store_class, LifecycleHooks)
        assert issubclass(store_class, DjangoDbStore)
        assert store_class.__qualname__ == DjangoDbStore.__qualname__
        assert store_class.signal_sender is DjangoDbStore
        plain = DjangoDbStore()
        plain["value"] = "x"
        plain.save()
        assert store_class(plain.session_key)["value"] == "x"

    def test_djangos_engine_is_wrapped_once(self):
        assert lifecycle.hooked(DjangoDbStore) is lifecycle.hooked(DjangoDbStore)

    def test_a_live_session_of_djangos_engine_is_kept_and_noted_live(self):
        plain = DjangoDbStore()
        plain["value"] = "x"
        plain.save()
        store = lifecycle.hooked(DjangoDbStore)(plain.session_key)
        store.request = browser_request()
        assert store["value"] == "x"
        assert store.started_live is True


class LoadTests(SimpleTestCase):
    def setUp(self):
        memory_engine.reset()

    def test_a_live_session_is_kept_and_noted_live(self):
        store = serving(stored_session())
        with freeze_time(START + timedelta(seconds=10)):
            assert store["cart"] == ["apple"]
        assert store.started_live is True
        assert store.ended is False

    def test_an_unknown_key_is_not_live(self):
        store = serving("u" * 32)
        assert store.get("cart") is None
        assert store.started_live is False

    def test_a_store_outside_a_request_runs_no_hook(self):
        key = stored_session()
        store = memory_engine.SessionStore(key)
        with (
            override_settings(SESSIONPLUS_IDLE_TIMEOUT=60),
            freeze_time(START + timedelta(hours=1)),
        ):
            assert store["cart"] == ["apple"]
        assert store.started_live is False

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=60)
    def test_an_idle_session_ends_as_it_loads(self):
        key = stored_session()
        store = serving(key)
        with received(session_ended) as ended, freeze_time(START + timedelta(seconds=61)):
            assert store.get("cart") is None
        assert [(signal["session_key"], signal["reason"]) for signal in ended] == [(key, "idle")]
        assert ended[0]["sender"] is memory_engine.SessionStore
        assert ended[0]["request"] is store.request
        assert store.session_key is None
        assert store.ended is True
        assert key not in memory_engine.RECORDS

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=60)
    def test_an_idle_session_ends_as_it_loads_async(self):
        key = stored_session()
        store = serving(key)
        with received(session_ended) as ended, freeze_time(START + timedelta(seconds=61)):
            assert async_to_sync(store.aget)("cart") is None
        assert [(signal["session_key"], signal["reason"]) for signal in ended] == [(key, "idle")]
        assert key not in memory_engine.RECORDS

    @override_settings(SESSIONPLUS_ABSOLUTE_TIMEOUT=3600, SESSIONPLUS_IDLE_TIMEOUT=60)
    def test_the_absolute_timeout_is_named_first(self):
        # Asked directly, of a store with no request (whose load runs no hook).
        store = memory_engine.SessionStore(stored_session())
        with freeze_time(START + timedelta(hours=2)):
            assert lifecycle.end_reason(store, browser_request()) == "absolute"

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=60)
    def test_a_session_inside_its_timeouts_is_kept(self):
        store = memory_engine.SessionStore(stored_session())
        with freeze_time(START + timedelta(seconds=59)):
            assert lifecycle.end_reason(store, browser_request()) is None

    @override_settings(SESSIONPLUS_BIND=("user_agent", "ip_network"))
    def test_a_changed_binding_ends_the_session_as_hijacked_and_is_logged(self):
        key = stored_session()
        store = serving(key, browser_request(user_agent="curl", ip="198.51.100.1"))
        with (
            received(session_ended) as ended,
            self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs,
        ):
            assert store.get("cart") is None
        assert [signal["reason"] for signal in ended] == ["hijack"]
        assert "user agent and IP network changed" in logs.output[0]
        assert key not in logs.output[0]

    @override_settings(SESSIONPLUS_BIND=("ip_network",))
    def test_an_address_inside_the_same_network_keeps_the_session(self):
        store = serving(stored_session(), browser_request(ip="192.0.2.200"))
        assert store["cart"] == ["apple"]

    def test_a_logout_after_loading_ends_the_session_as_logout(self):
        key = stored_session()
        store = serving(key)
        store["cart"]
        with received(session_ended) as ended:
            store.flush()
        assert [(signal["session_key"], signal["reason"]) for signal in ended] == [(key, "logout")]
        assert store.ended is True

    def test_flushing_no_session_sends_nothing(self):
        store = serving(None)
        with received(session_ended) as ended:
            async_to_sync(store.aflush)()
        assert ended == []
        assert store.ended is False


class OutageTests(SimpleTestCase):
    def setUp(self):
        memory_engine.reset()

    def test_a_store_down_at_load_is_recorded_and_the_session_reads_empty(self):
        store = serving("k" * 32)
        cause = ConnectionRefusedError("refused")
        # A fault injected: the memory engine cannot be taken down for real.
        store._read = lambda session_key: (_ for _ in ()).throw(cause)
        with pytest.raises(SessionStoreUnavailable) as raised:
            store["cart"]
        assert raised.value.__cause__ is cause
        assert store.outage is raised.value
        assert store.get("cart") is None  # no second trip to the store

    def test_the_first_outage_of_a_request_is_the_one_recorded(self):
        store = serving("k" * 32)
        first, second = ConnectionRefusedError("first"), ConnectionResetError("second")
        # Faults injected, as above.
        store._read = lambda session_key: (_ for _ in ()).throw(first)
        with pytest.raises(SessionStoreUnavailable):
            store["cart"]
        del store._session_cache  # as if the view cycled to a fresh load
        store._read = lambda session_key: (_ for _ in ()).throw(second)
        with pytest.raises(SessionStoreUnavailable) as raised:
            store["cart"]
        assert raised.value.__cause__ is second
        assert store.outage.__cause__ is first

    def test_an_error_that_is_no_outage_is_raised_as_it_is(self):
        store = serving("k" * 32)
        # A fault injected, as above.
        store._read = lambda session_key: (_ for _ in ()).throw(ValueError("bug"))
        with pytest.raises(ValueError, match="bug"):
            store["cart"]
        assert store.outage is None


class WriteToMakeTests(SimpleTestCase):
    def setUp(self):
        memory_engine.reset()

    def test_a_modified_session_is_saved(self):
        store = serving(None)
        store["cart"] = []
        assert lifecycle.write_to_make(store) == "save"

    def test_an_empty_session_writes_nothing(self):
        store = serving(None)
        store.get("cart")
        assert lifecycle.write_to_make(store) is None

    def test_an_untouched_session_writes_nothing(self):
        assert lifecycle.write_to_make(serving(stored_session())) is None

    def test_a_read_session_without_touch_interval_or_idle_timeout_writes_nothing(self):
        store = serving(stored_session())
        store.get("cart")
        assert lifecycle.write_to_make(store) is None

    @override_settings(SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_a_read_session_is_touched_once_the_interval_passed(self):
        store = serving(stored_session())
        with freeze_time(START + timedelta(seconds=299)):
            store.get("cart")
            assert lifecycle.write_to_make(store) is None
        with freeze_time(START + timedelta(seconds=300)):
            assert lifecycle.write_to_make(store) == "touch"

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_the_idle_timeout_alone_touches_on_every_read(self):
        store = serving(stored_session())
        with freeze_time(START + timedelta(seconds=1)):
            store.get("cart")
            assert lifecycle.write_to_make(store) == "touch"

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_save_every_request_touches_a_sessionplus_session(self):
        store = serving(stored_session())
        store.get("cart")
        assert lifecycle.write_to_make(store) == "touch"


class DjangoEngineWriteToMakeTests(TestCase):
    @override_settings(SESSION_SAVE_EVERY_REQUEST=True, SESSIONPLUS_IDLE_TIMEOUT=60)
    def test_djangos_engine_cannot_touch_so_it_saves_or_writes_nothing(self):
        plain = DjangoDbStore()
        plain["value"] = "x"
        plain.save()
        store = lifecycle.hooked(DjangoDbStore)(plain.session_key)
        store.get("value")
        assert lifecycle.write_to_make(store) == "save"
        with self.settings(SESSION_SAVE_EVERY_REQUEST=False):
            assert lifecycle.write_to_make(store) is None


class CreatedTests(SimpleTestCase):
    def setUp(self):
        memory_engine.reset()

    def test_a_new_session_written_is_created(self):
        store = serving(None)
        store["cart"] = []
        store.save()
        with received(session_created) as created:
            lifecycle.written(store, cookie_key=None)
        assert [signal["session_key"] for signal in created] == [store.session_key]
        assert created[0]["request"] is store.request

    def test_a_live_session_under_a_new_key_is_no_new_session(self):
        key = stored_session()
        store = serving(key)
        store["cart"]
        store.cycle_key()
        with received(session_created) as created:
            lifecycle.written(store, cookie_key=key)
        assert created == []

    def test_a_session_written_after_the_cookies_ended_is_created(self):
        key = stored_session()
        store = serving(key)
        store.flush()
        store["cart"] = []
        store.save()
        with received(session_created) as created:
            lifecycle.written(store, cookie_key=key)
        assert [signal["session_key"] for signal in created] == [store.session_key]

    def test_the_cookies_own_session_saved_again_is_no_new_session(self):
        key = stored_session()
        store = serving(key)
        store["cart"] = []
        store.save()
        with received(session_created) as created:
            lifecycle.written(store, cookie_key=key)
        assert created == []
