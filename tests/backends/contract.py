"""
The behaviour every sessionplus engine shares, as mixins an engine's test class runs.

``SessionStoreContract`` holds what every engine does, signed cookies included;
``ServerSideStoreContract`` adds what engines that keep a record on the server do, and
``UserIndexedStoreContract`` what those that find sessions by user do.
An engine's test module is one line per class plus its engine-only tests:

    class DbSessionStoreTests(ServerSideStoreContract, TestCase):
        engine = ENGINES["db"]

A behaviour the sync and the async API share is written once, as a ``both_<name>(self,
call)`` plan that calls the store through ``call(store, "save")``; ``@with_twins`` turns
it into ``test_<name>`` (``store.save()``) and ``test_async_<name>`` (``store.asave()``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from unittest import mock
from uuid import uuid4

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth import SESSION_KEY as AUTH_USER_KEY
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone
from freezegun import freeze_time

from sessionplus.backends.base import SessionPlusBase
from sessionplus.backends.metadata import SessionMetadata
from tests.support.clocks import ZONES_APART, naive_clock_apart_from_time_zone
from tests.support.engines import Engine

# Keys a cookie may carry that must never be taken for a session key.
MALFORMED_KEYS = [
    "",
    "a" * 31,
    "a" * 33,
    "A" * 32,
    "abcdefghijklmnopqrstuvwxyz01234 ",
    "abcdefghijklmnopqrstuvwxyz01234\x00",
    "abcdefghijklmnopqrstuvwxyz01234é",
    "../../../../../../etc/passwd/abc",
    "abcdefghijklmnopqrstuvwx{hash}*?",
    "a" * 20_000,
]


class Calls:
    """
    Call a store method through the sync API, or through its async twin (``a<name>``).

    ``"set"`` is ``aset()`` in async and item assignment in sync, which has no ``set()``;
    a property in sync (``cache_key``, ``acache_key()`` in async) is read.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, store: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "async":
            return async_to_sync(getattr(store, f"a{method}"))(*args, **kwargs)
        if method == "set":
            method = "__setitem__"
        attribute = getattr(store, method)
        return attribute(*args, **kwargs) if callable(attribute) else attribute

    def name(self, method: str) -> str:
        """Return the name of ``method`` in the mode's API (``aget`` for ``get`` in async)."""
        return f"a{method}" if self.mode == "async" else method

    def client(self, test: Any) -> Any:
        """Return the test's ``client`` in sync, its ``async_client`` in async."""
        return test.async_client if self.mode == "async" else test.client

    def new_client(self) -> Any:
        """Return a new ``Client`` in sync, a new ``AsyncClient`` in async."""
        return AsyncClient() if self.mode == "async" else Client()

    def get(self, client: Any, path: str, **extra: Any) -> Any:
        """Send a GET through the request path of the mode (WSGI or ASGI)."""
        return self.send(client, "get", path, **extra)

    def post(self, client: Any, path: str, data: Any = None, **extra: Any) -> Any:
        """Send a POST through the request path of the mode (WSGI or ASGI)."""
        return self.send(client, "post", path, data, **extra)

    def send(self, client: Any, method: str, *args: Any, **extra: Any) -> Any:
        """Call the client's ``method`` (``get``, ``post`` …), awaited in async."""
        request = getattr(client, method)
        if self.mode == "async":
            return async_to_sync(request)(*args, **extra)
        return request(*args, **extra)

    def in_one_loop(self, function: Any, *args: Any) -> Any:
        """
        Call ``function``; in async, on one event loop that its async calls all share.

        Async Redis clients belong to their loop: a count that must not include opening
        connections runs its warm-up and its operation on the same one.
        """
        if self.mode == "async":
            return async_to_sync(sync_to_async(function))(*args)
        return function(*args)


SYNC = Calls("sync")


def with_twins(cls: type) -> type:
    """Define ``test_<name>`` and ``test_async_<name>`` from each ``both_<name>`` plan."""
    for name, plan in list(vars(cls).items()):
        if name.startswith("both_"):
            for mode, prefix in (("sync", "test_"), ("async", "test_async_")):
                test_name = prefix + name.removeprefix("both_")

                def test(self: Any, plan: Any = plan, mode: str = mode) -> None:
                    plan(self, Calls(mode))

                test.__name__ = test.__qualname__ = test_name
                setattr(cls, test_name, test)
    return cls


@with_twins
class SessionStoreContract:
    """What every sessionplus engine does. Mix into a Django TestCase; set ``engine``."""

    engine: Engine

    @property
    def store_class(self) -> type[SessionPlusBase]:
        return self.engine.store_class

    def store(self, session_key: str | None = None) -> SessionPlusBase:
        return self.store_class(session_key)

    def saved(self, **data: Any) -> SessionPlusBase:
        session = self.store()
        session.update(data)
        session.save()
        return session

    def reloaded(self, session: SessionBase) -> SessionPlusBase:
        return self.store(session.session_key)

    async def asaved(self, **data: Any) -> SessionPlusBase:
        session = self.store()
        await session.aupdate(data)
        await session.asave()
        return session

    def test_data_failing_its_signature_is_logged_with_djangos_message(self):
        # Log-based alerts written for Django's engines match "Session data corrupted".
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            assert self.store().decode("bad:encoded:value") == {}
        assert logs.records[0].getMessage() == (
            "Session data corrupted: failed its signature check (session e3b0c44298fc)."
        )

    # The dict API ----------------------------------------------------------------

    def test_is_a_session_base_subclass(self):
        assert issubclass(self.store_class, SessionBase)
        assert issubclass(self.store_class, SessionPlusBase)

    def test_new_session_is_empty_and_untouched(self):
        session = self.store()
        assert session.session_key is None
        assert session.modified is False
        assert session.accessed is False
        assert session.is_empty()

    def test_reading_marks_accessed_but_not_modified(self):
        session = self.store()
        assert session.get("cat") is None
        assert session.accessed is True
        assert session.modified is False

    def test_set_get_contains_and_delete(self):
        session = self.store()
        session["cat"] = "lion"
        assert session.modified is True
        assert session["cat"] == "lion"
        assert "cat" in session
        del session["cat"]
        assert "cat" not in session
        assert session.get("cat", "none") == "none"

    def test_pop_setdefault_update_keys_values_items(self):
        session = self.store()
        session.update({"a": 1, "b": 2})
        assert session.setdefault("a", 9) == 1
        assert session.setdefault("c", 3) == 3
        assert sorted(session.keys()) == ["a", "b", "c"]
        assert sorted(session.values()) == [1, 2, 3]
        assert sorted(session.items()) == [("a", 1), ("b", 2), ("c", 3)]
        assert session.pop("a") == 1
        assert session.pop("missing", "default") == "default"
        assert session.has_key("b")
        assert not session.has_key("a")

    def test_pop_of_a_missing_key_without_default_raises_key_error(self):
        session = self.store()
        with pytest.raises(KeyError):
            session.pop("missing")
        assert session.modified is False

    def test_non_string_key_is_refused(self):
        session = self.store()
        with pytest.raises(TypeError, match="int"):
            session[1] = "one"

    def test_saved_data_loads_back(self):
        session = self.saved(cat="lion", numbers=[1, 2, 3], nested={"a": {"b": None}})
        assert session.session_key
        loaded = self.reloaded(session)
        assert dict(loaded.items()) == {
            "cat": "lion",
            "numbers": [1, 2, 3],
            "nested": {"a": {"b": None}},
        }

    def test_each_load_of_the_same_stored_session_gets_values_of_its_own(self):
        # Signatures verified once per process (VerifiedTexts): what a load hands out is
        # still its own, so a request changing a list in place changes no other request's.
        session = self.saved(cart=["a"], nested={"a": [1]}, name="x" * 40)
        first, second = self.reloaded(session), self.reloaded(session)
        first["cart"].append("b")
        first["nested"]["a"].append(2)
        assert second["cart"] == ["a"]
        assert second["nested"] == {"a": [1]}
        assert second["name"] == "x" * 40

    def test_second_save_replaces_changed_and_deleted_keys(self):
        session = self.saved(keep=1, change=2, drop=3)
        session = self.reloaded(session)
        session["change"] = 20
        del session["drop"]
        session["new"] = 4
        session.save()
        assert dict(self.reloaded(session).items()) == {"keep": 1, "change": 20, "new": 4}

    def test_clear_empties_the_session(self):
        session = self.saved(a=1, b=2)
        session = self.reloaded(session)
        session.clear()
        assert list(session.keys()) == []
        assert session.modified is True
        session.save()
        assert list(self.reloaded(session).keys()) == []

    def test_malformed_keys_are_no_session(self):
        for bad_key in MALFORMED_KEYS:
            session = self.store(bad_key)
            assert session.session_key is None, repr(bad_key[:40])
            assert dict(session.items()) == {}

    # Expiry ----------------------------------------------------------------------

    def test_default_expiry_is_the_cookie_age(self):
        session = self.store()
        assert session.get_expiry_age() == 1209600
        assert session.get_expire_at_browser_close() is False

    @override_settings(SESSION_COOKIE_AGE=600)
    def test_default_expiry_follows_session_cookie_age(self):
        session = self.store()
        assert session.get_expiry_age() == 600
        now = timezone.now()
        assert session.get_expiry_date(modification=now) == now + timedelta(seconds=600)

    def test_set_expiry_with_seconds(self):
        session = self.store()
        session.set_expiry(300)
        assert session.get_expiry_age() == 300
        assert session.get_expire_at_browser_close() is False

    def test_set_expiry_with_timedelta_and_datetime(self):
        session = self.store()
        session.set_expiry(timedelta(seconds=500))
        assert 498 <= session.get_expiry_age() <= 500
        moment = timezone.now() + timedelta(hours=2)
        session.set_expiry(moment)
        assert session.get_expiry_date() == moment

    def test_set_expiry_zero_expires_at_browser_close(self):
        session = self.store()
        session.set_expiry(0)
        assert session.get_expire_at_browser_close() is True
        session.set_expiry(None)
        assert session.get_expire_at_browser_close() is False
        assert "_session_expiry" not in session

    @override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True)
    def test_expire_at_browser_close_setting_is_the_default(self):
        session = self.store()
        assert session.get_expire_at_browser_close() is True
        session.set_expiry(10)
        assert session.get_expire_at_browser_close() is False

    def test_expiry_survives_a_reload(self):
        session = self.store()
        session["a"] = 1
        session.set_expiry(3600)
        session.save()
        assert self.reloaded(session).get_expiry_age() == 3600

    def test_session_with_expiry_in_the_past_loads_empty(self):
        session = self.store()
        session["a"] = 1
        session.set_expiry(-timedelta(seconds=10))
        session.save()
        loaded = self.reloaded(session)
        assert "a" not in loaded
        assert loaded.session_key is None or list(loaded.keys()) == []

    def test_expiry_dates_follow_djangos_clock_when_time_zone_disagrees(self):
        # Without USE_TZ, set_expiry() takes naive datetimes in the process's local time,
        # the clock of timezone.now(), whatever TIME_ZONE says.
        for time_zone, process_zone in ZONES_APART:
            with naive_clock_apart_from_time_zone(time_zone, process_zone):
                live = self.store()
                live["a"] = 1
                live.set_expiry(timezone.now() + timedelta(hours=1))
                live.save()
                expired = self.store()
                expired["a"] = 1
                expired.set_expiry(timezone.now() - timedelta(seconds=10))
                expired.save()
                reloaded = self.reloaded(live)
                assert reloaded["a"] == 1
                assert 3500 < reloaded.get_expiry_age() <= 3600
                assert list(self.reloaded(expired).keys()) == []

    # Sync and async twins: one plan each, run through the sync API and through the async one.

    def both_set_get_pop_and_save_round_trip(self, call: Calls) -> None:
        session = self.store()
        call(session, "set", "cat", "lion")
        assert call(session, "get", "cat") == "lion"
        assert call(session, "has_key", "cat")
        assert call(session, "setdefault", "dog", "rex") == "rex"
        assert call(session, "pop", "dog") == "rex"
        call(session, "update", {"n": 1})
        call(session, "save")
        loaded = self.store(session.session_key)
        assert dict(call(loaded, "items")) == {"cat": "lion", "n": 1}
        assert sorted(call(loaded, "keys")) == ["cat", "n"]
        assert sorted(call(loaded, "values"), key=str) == [1, "lion"]

    def both_expiry_methods(self, call: Calls) -> None:
        session = self.store()
        call(session, "set_expiry", 120)
        assert call(session, "get_expiry_age") == 120
        assert call(session, "get_expire_at_browser_close") is False
        call(session, "set_expiry", 0)
        assert call(session, "get_expire_at_browser_close") is True
        call(session, "set_expiry", None)
        now = timezone.now()
        expected = now + timedelta(seconds=1209600)
        assert call(session, "get_expiry_date", modification=now) == expected

    def saved_by(self, call: Calls, **data: Any) -> SessionPlusBase:
        session = self.store()
        call(session, "update", data)
        call(session, "save")
        return session

    def both_test_cookie_methods(self, call: Calls) -> None:
        session = self.store()
        assert call(session, "test_cookie_worked") is False
        call(session, "set_test_cookie")
        assert call(session, "test_cookie_worked") is True
        call(session, "delete_test_cookie")
        assert call(session, "test_cookie_worked") is False
        assert session.modified is True

    def both_in_place_mutation_is_saved_when_marked_modified(self, call: Calls) -> None:
        session = self.store(self.saved_by(call, cart=["apple"]).session_key)
        call(session, "get", "cart").append("pear")
        session.modified = True
        call(session, "save")
        assert call(self.reloaded(session), "get", "cart") == ["apple", "pear"]

    def both_flush_empties_and_forgets_the_key(self, call: Calls) -> None:
        session = self.saved_by(call, a=1)
        call(session, "flush")
        assert session.session_key is None
        assert list(call(session, "keys")) == []
        assert session.modified is True

    def both_cycle_key_keeps_data_under_a_new_key(self, call: Calls) -> None:
        session = self.saved_by(call, a=1, b=[2])
        old_key = session.session_key
        call(session, "cycle_key")
        assert session.session_key != old_key
        assert dict(call(session, "items")) == {"a": 1, "b": [2]}
        call(session, "save")
        assert dict(call(self.reloaded(session), "items")) == {"a": 1, "b": [2]}


@with_twins
class ServerSideStoreContract(SessionStoreContract):
    """What engines that keep a record on the server do, on top of the common contract."""

    def test_delete_by_key(self):
        session = self.saved(a=1)
        self.store().delete(session.session_key)
        assert self.store().exists(session.session_key) is False

    def test_create_writes_an_empty_record_with_a_fresh_key(self):
        session = self.store()
        session.create()
        assert len(session.session_key) == 32
        assert session.exists(session.session_key) is True
        assert session.modified is True

    def test_flush_deletes_the_record(self):
        session = self.saved(a=1)
        old_key = session.session_key
        session.flush()
        assert self.store().exists(old_key) is False

    def test_expired_record_does_not_exist_for_load(self):
        session = self.store()
        session["a"] = 1
        session.set_expiry(-timedelta(seconds=10))
        session.save()
        loaded = self.reloaded(session)
        assert list(loaded.keys()) == []
        assert loaded.session_key is None

    def assert_clear_expired_removes_expired_and_keeps_live(
        self, call: Calls = SYNC
    ) -> SessionBase:
        """Save a live and an expired session, clear, and return the expired one."""
        live = self.store()
        call(live, "set", "a", 1)
        call(live, "set_expiry", 3600)
        call(live, "save")
        expired = self.store()
        call(expired, "set", "a", 1)
        call(expired, "set_expiry", -timedelta(seconds=10))
        call(expired, "save")
        call(self.store_class, "clear_expired")
        assert call(self.store(), "exists", live.session_key) is True
        assert call(self.store(), "exists", expired.session_key) is False
        return expired

    def both_clear_expired_removes_expired_and_keeps_live_sessions(self, call: Calls) -> None:
        self.assert_clear_expired_removes_expired_and_keeps_live(call)

    def test_expiry_and_clear_expired_follow_djangos_clock_when_time_zone_disagrees(self):
        # Without USE_TZ, Django's clock is the process's local time whatever TIME_ZONE says.
        for time_zone, process_zone in ZONES_APART:
            with naive_clock_apart_from_time_zone(time_zone, process_zone):
                expired = self.assert_clear_expired_removes_expired_and_keeps_live()
                assert list(self.reloaded(expired).keys()) == []

    def test_corrupt_stored_data_is_no_session_and_logged(self):
        session = self.saved(a=1)
        self.corrupt(session.session_key)
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            loaded = self.reloaded(session)
            assert list(loaded.keys()) == []
        assert loaded.session_key is None
        assert session.session_key not in "".join(logs.output)

    def corrupt(self, session_key: str) -> None:
        """Flip a byte of the stored payload, outside the app."""
        raise NotImplementedError

    # Metadata and touch ------------------------------------------------------------

    def test_metadata_records_creation_and_last_activity(self):
        session = self.saved(a=1)
        metadata = self.reloaded(session).metadata
        assert isinstance(metadata, SessionMetadata)
        assert metadata.created_at is not None
        assert metadata.last_activity is not None
        assert abs(metadata.created_at - timezone.now()) < timedelta(seconds=5)
        assert metadata.created_at.tzinfo is not None

    def test_metadata_is_kept_by_later_saves_and_cycle_key(self):
        created, later = self.moment(minutes_ago=60), self.moment(minutes_ago=30)
        with freeze_time(created):
            session = self.saved(a=1)
        with freeze_time(later):
            session = self.reloaded(session)
            session["b"] = 2
            session.save()
            session.cycle_key()
        metadata = self.reloaded(session).metadata
        assert metadata.created_at == created
        assert metadata.last_activity == later

    def test_update_metadata_is_written_with_the_next_save(self):
        session = self.saved(a=1)
        session = self.reloaded(session)
        session.update_metadata(user_id="42", ip="192.0.2.1", user_agent="Browser/1.0")
        assert session.modified is False
        session["b"] = 2
        session.save()
        metadata = self.reloaded(session).metadata
        assert (metadata.user_id, metadata.ip, metadata.user_agent) == (
            "42",
            "192.0.2.1",
            "Browser/1.0",
        )

    def test_metadata_never_appears_in_the_data(self):
        session = self.saved(a=1)
        session = self.reloaded(session)
        session.update_metadata(user_id="42")
        session.save()
        loaded = self.reloaded(session)
        assert list(loaded.keys()) == ["a"]
        assert len(dict(loaded.items())) == 1

    def test_touch_refreshes_last_activity_and_keeps_data(self):
        # Engine tests assert the stored expiry moved (expire_date column, TTL, file header).
        created, touched = self.moment(minutes_ago=60), self.moment(minutes_ago=1)
        with freeze_time(created):
            session = self.saved(a=1)
        with freeze_time(touched):
            session = self.reloaded(session)
            session["a"]  # the middleware touches a loaded session
            session.touch()
        loaded = self.reloaded(session)
        assert loaded["a"] == 1
        assert loaded.metadata.last_activity == touched
        assert loaded.metadata.created_at == created

    def both_touch_of_a_modified_session_saves_it(self, call: Calls) -> None:
        session = self.store(self.saved_by(call, a=1).session_key)
        call(session, "set", "a", 2)
        call(session, "touch")
        assert call(self.store(session.session_key), "get", "a") == 2

    def both_touch_keeps_data(self, call: Calls) -> None:
        session = self.store(self.saved_by(call, a=1).session_key)
        call(session, "get", "a")
        call(session, "touch")
        assert call(self.store(session.session_key), "get", "a") == 1

    # Key collisions ------------------------------------------------------------------

    def taken_key_then(self, fresh: str) -> tuple[str, Any]:
        """
        Store a session, then make the key generator return its key once, then ``fresh``.

        Fault injection: a random key colliding with a live one cannot be produced for
        real, so the generator is patched; the colliding record is real.
        """
        taken = self.saved(owner="first").session_key
        generator = mock.patch.object(
            self.store_class, "_get_new_session_key", side_effect=[taken, fresh]
        )
        return taken, generator

    def both_unknown_key_is_not_adopted_and_creates_nothing(self, call: Calls) -> None:
        unknown = "a" * 32
        session = self.store(unknown)
        assert list(call(session, "keys")) == []
        assert session.session_key is None
        assert call(self.store(), "exists", unknown) is False
        call(session, "update", {"a": 1})
        call(session, "save")
        assert session.session_key != unknown
        assert call(self.store(), "exists", unknown) is False

    def both_exists_after_save_and_not_after_delete(self, call: Calls) -> None:
        session = self.saved_by(call, a=1)
        assert call(session, "exists", session.session_key) is True
        assert call(self.store(session.session_key), "get", "a") == 1
        call(session, "delete")
        assert call(session, "exists", session.session_key) is False
        assert list(call(self.reloaded(session), "keys")) == []

    def both_create_and_cycle_key_remove_the_old_record(self, call: Calls) -> None:
        session = self.store()
        call(session, "create")
        call(session, "update", {"a": 1})
        call(session, "save")
        old_key = session.session_key
        call(session, "cycle_key")
        assert call(self.store(), "exists", old_key) is False
        assert call(self.store(), "exists", session.session_key) is True
        assert list(call(self.store(old_key), "keys")) == []

    def both_exists_and_delete_ignore_malformed_keys(self, call: Calls) -> None:
        for bad_key in MALFORMED_KEYS:
            assert call(self.store(), "exists", bad_key) is False
            call(self.store(), "delete", bad_key)

    def both_save_raises_update_error_when_the_record_was_deleted(self, call: Calls) -> None:
        session = self.store(self.saved_by(call, a=1).session_key)
        call(session, "update", {"b": 2})
        call(self.store(), "delete", session.session_key)
        with pytest.raises(UpdateError):
            call(session, "save")
        assert call(self.store(), "exists", session.session_key) is False

    def both_a_touch_never_brings_back_data_a_concurrent_save_changed(self, call: Calls) -> None:
        # A slow read-only request (A) loads, a concurrent one (B) changes and saves, then
        # A's response touches: a fresh load must see B's data.
        key = self.saved_by(call, mfa_verified=True, cart=["apple"]).session_key
        slow = self.store(key)
        assert call(slow, "get", "mfa_verified") is True
        concurrent = self.store(key)
        call(concurrent, "pop", "mfa_verified")
        call(concurrent, "update", {"cart": []})
        call(concurrent, "save")
        call(slow, "touch")
        fresh = self.store(key)
        assert dict(call(fresh, "items")) == {"cart": []}
        assert fresh.metadata.last_activity is not None

    def both_touch_of_an_unknown_key_writes_nothing(self, call: Calls) -> None:
        session = self.store("c" * 32)
        call(session, "touch")
        assert session.session_key is None
        assert call(self.store(), "exists", "c" * 32) is False

    def both_touch_raises_update_error_when_the_record_was_deleted(self, call: Calls) -> None:
        session = self.store(self.saved_by(call, a=1).session_key)
        call(session, "get", "a")
        call(self.store(), "delete", session.session_key)
        with pytest.raises(UpdateError):
            call(session, "touch")
        assert call(self.store(), "exists", session.session_key) is False

    def both_create_retries_with_a_new_key_when_the_key_is_taken(self, call: Calls) -> None:
        fresh = uuid4().hex  # a cache may keep what an earlier test stored
        taken, generator = self.taken_key_then(fresh)
        session = self.store()
        call(session, "update", {"owner": "second"})
        with generator:
            call(session, "save")
        assert session.session_key == fresh
        assert call(self.store(taken), "get", "owner") == "first"
        assert call(self.store(fresh), "get", "owner") == "second"

    @staticmethod
    def moment(minutes_ago: int) -> datetime:
        """Return a whole-second UTC moment in the recent past (stored sessions must be live)."""
        now = timezone.now().replace(microsecond=0)
        return now - timedelta(minutes=minutes_ago)


@with_twins
class UserIndexedStoreContract(ServerSideStoreContract):
    """What server-side engines that find sessions by user (db, cached_db, redis) do besides."""

    def users_session(self, call: Calls, user_id: str, **data: Any) -> SessionPlusBase:
        # What a login through the middleware leaves: auth's user key in the data, the
        # user id in the metadata.
        session = self.store()
        call(session, "update", {**data, AUTH_USER_KEY: user_id})
        session.update_metadata(user_id=user_id)
        call(session, "save")
        return session

    def both_sessions_for_user_lists_only_that_users_live_sessions(self, call: Calls) -> None:
        first, second = self.users_session(call, "7", a=1), self.users_session(call, "7", a=2)
        self.users_session(call, "8", a=3)
        self.saved_by(call, anonymous=True)
        expired = self.store()
        call(expired, "set_expiry", -timedelta(seconds=10))
        expired.update_metadata(user_id="7")
        call(expired, "update", {"a": 4, AUTH_USER_KEY: "7"})
        call(expired, "save")
        keys = call(self.store_class, "sessions_for_user", "7")
        assert sorted(keys) == sorted([first.session_key, second.session_key])
        assert sorted(call(self.store_class, "sessions_for_user", 7)) == sorted(keys)
        assert call(self.store_class, "sessions_for_user", "nobody") == []

    def both_end_sessions_for_user_ends_all_but_the_kept_one(self, call: Calls) -> None:
        current, other = self.users_session(call, "7", a=1), self.users_session(call, "7", a=2)
        stranger = self.users_session(call, "8", a=3)
        loaded_elsewhere = self.reloaded(other)
        call(loaded_elsewhere, "set", "b", 1)
        ended = call(self.store_class, "end_sessions_for_user", "7", keep=current.session_key)
        assert ended == 1
        assert call(self.store_class, "sessions_for_user", "7") == [current.session_key]
        assert list(call(self.reloaded(other), "keys")) == []
        assert call(self.store(), "exists", other.session_key) is False
        assert call(self.reloaded(stranger), "get", "a") == 3
        # A request that loaded the session before it ended cannot write it back.
        with pytest.raises(UpdateError):
            call(loaded_elsewhere, "save")
        assert call(self.store_class, "end_sessions_for_user", "7") == 1
        assert call(self.store_class, "sessions_for_user", "7") == []
        assert call(self.store_class, "end_sessions_for_user", "7") == 0
        assert call(self.store_class, "end_sessions_for_user", "nobody") == 0
