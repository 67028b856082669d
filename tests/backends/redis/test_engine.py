"""The redis engine: the contract every engine keeps, then what only Redis hashes do."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client, SimpleTestCase, override_settings
from django.utils import timezone
from django_redis import get_redis_connection
from django_redis.pool import ConnectionFactory
from freezegun import freeze_time
from redis import exceptions as redis_exceptions

from sessionplus.backends.base import MAX_CREATE_ATTEMPTS, UpdateError
from sessionplus.backends.metadata import SessionMetadata
from sessionplus.backends.redis import CLOCK_SKEW, SessionStore, layout
from sessionplus.backends.redis import clients as redis_clients
from sessionplus.backends.redis.clients import async_client
from sessionplus.exceptions import SessionStoreUnavailable, SessionTooLarge
from tests.backends.contract import SYNC, Calls, UserIndexedStoreContract, with_twins
from tests.support.engines import ENGINES
from tests.support.middleware_support import AsyncRequests, SyncRequests
from tests.support.redis_faults import HangingUpListener, SilentListener
from tests.support.redis_layout import set_field, stored_fields
from tests.support.services import (
    LIVE_OR_GONE_TIMEOUTS,
    PrivateRedis,
    dead_port,
    free_port,
    redis_url,
)

ENGINE = "sessionplus.backends.redis"


def redis():
    return get_redis_connection("redis")


@pytest.mark.usefixtures("redis_db")
class RedisSessionStoreTests(UserIndexedStoreContract, SimpleTestCase):
    engine = ENGINES["redis"]

    def corrupt(self, session_key: str) -> None:
        key = SessionStore.redis_key(session_key)
        value = bytearray(stored_fields(redis(), key)["d:a"])
        value[2] ^= 0x01
        set_field(redis(), key, "d:a", bytes(value))


def stored(session_key: str) -> dict[str, bytes]:
    """The session's fields as Redis holds them, by name."""
    return stored_fields(redis(), SessionStore.redis_key(session_key))


def saved(**data) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


def saved_with_client(**data) -> str:
    """Return the key of a session saved with ``data`` and a client's IP and user agent."""
    session = saved(**data)
    session.update_metadata(ip="192.0.2.1", user_agent="Browser/1.0")
    session.save()
    assert session.session_key is not None
    return session.session_key


async def asaved(**data) -> SessionStore:
    session = SessionStore()
    await session.aupdate(data)
    await session.asave()
    return session


def saved_by(call: Calls, **data) -> SessionStore:
    session = SessionStore()
    call(session, "update", data)
    call(session, "save")
    return session


def log_in(
    user_id: str = "7", session: SessionStore | None = None, call: Calls = SYNC
) -> SessionStore:
    """Save a session carrying Django's auth keys, as the response after login() does."""
    session = session or SessionStore()
    call(session, "update", {SESSION_KEY: user_id, "_auth_user_backend": "backend", "cart": []})
    call(session, "save")
    return session


def index_key(user_id: str = "7") -> str:
    return SessionStore.user_index_key(user_id)


def members(user_id: str = "7") -> set[str]:
    return {member.decode() for member in redis().smembers(index_key(user_id))}


@with_twins
@pytest.mark.usefixtures("redis_db")
class RedisLayoutTests(SimpleTestCase):
    def test_a_session_is_one_hash_with_a_field_per_key_and_reserved_metadata_fields(self):
        session = saved(cat="lion", n=1)
        assert redis().keys("*") == [SessionStore.redis_key(session.session_key).encode()]
        assert set(stored(session.session_key)) == {
            "d:cat",
            "d:n",
            "m:created_at",
            "m:last_activity",
        }

    def test_metadata_fields_are_stored_but_never_data(self):
        session = saved(a=1)
        session = SessionStore(session.session_key)
        session.update_metadata(user_id="3", ip="192.0.2.1", user_agent="Agent")
        session.touch()
        assert {"m:user_id", "m:ip", "m:user_agent"} <= set(stored(session.session_key))
        assert list(SessionStore(session.session_key).keys()) == ["a"]

    def test_data_keys_that_look_like_reserved_fields_stay_data(self):
        session = saved(**{"m:created_at": "mine", "x:index": "mine too", "created_at": 1})
        loaded = SessionStore(session.session_key)
        assert dict(loaded.items()) == {
            "m:created_at": "mine",
            "x:index": "mine too",
            "created_at": 1,
        }
        assert loaded.metadata.created_at is not None

    def test_the_ttl_is_the_session_expiry(self):
        session = SessionStore()
        session["a"] = 1
        session.set_expiry(600)
        session.save()
        assert 590_000 < redis().pttl(SessionStore.redis_key(session.session_key)) <= 600_000
        default = saved(a=1)
        ttl = redis().pttl(SessionStore.redis_key(default.session_key))
        assert 1_209_590_000 < ttl <= 1_209_600_000

    @override_settings(SESSIONPLUS_REDIS_KEY_PREFIX="site-b:")
    def test_every_key_is_under_the_configured_prefix(self):
        session = log_in()
        # A set: the random session key sorts before or after "user:" by chance.
        assert set(redis().keys("*")) == {
            f"site-b:{session.session_key}".encode(),
            b"site-b:user:7",
        }

    def test_a_save_writes_only_the_fields_that_changed(self):
        # The save runs under a rotated SECRET_KEY: a field it rewrote would have other bytes.
        now = timezone.now()
        with freeze_time(now - timedelta(minutes=2)):
            key = saved(keep="same", change=1, drop=0).session_key
        before = stored(key)
        rotated = override_settings(
            SECRET_KEY="a-rotated-secret-key-for-this-test-only",
            SECRET_KEY_FALLBACKS=[settings.SECRET_KEY],
        )
        with freeze_time(now - timedelta(minutes=1)), rotated:
            session = SessionStore(key)
            session["change"] = 2
            del session["drop"]
            session.save()
        after = stored(key)
        assert after["d:keep"] == before["d:keep"]
        assert after["m:created_at"] == before["m:created_at"]
        assert after["d:change"] != before["d:change"]
        assert after["m:last_activity"] != before["m:last_activity"]
        assert "d:drop" not in after

    def both_touch_refreshes_ttl_and_last_activity_and_leaves_data_alone(self, call: Calls) -> None:
        session = saved_by(call, a=1)
        key = SessionStore.redis_key(session.session_key)
        redis().pexpire(key, 5_000)
        data_before = stored(session.session_key)["d:a"]
        session = SessionStore(session.session_key)
        call(session, "get", "a")
        call(session, "touch")
        assert redis().pttl(key) > 1_209_000_000
        assert stored(session.session_key)["d:a"] == data_before

    def both_touch_of_a_session_that_is_gone_creates_nothing(self, call: Calls) -> None:
        session = SessionStore("c" * 32)
        call(session, "touch")
        assert session.session_key is None
        assert redis().keys("*") == []

    def test_touch_of_a_session_deleted_meanwhile_raises_update_error(self):
        session = saved(a=1)
        session = SessionStore(session.session_key)
        session["a"]
        SessionStore().delete(session.session_key)
        with pytest.raises(UpdateError):
            session.touch()
        assert redis().keys("*") == []

    def test_an_expiry_in_the_past_removes_the_session(self):
        session = saved(a=1)
        session = SessionStore(session.session_key)
        session.set_expiry(-1)
        session.save()
        assert redis().exists(SessionStore.redis_key(session.session_key)) == 0


@with_twins
@pytest.mark.usefixtures("redis_db")
class RedisDeltaTests(SimpleTestCase):
    """Two stores loaded from one session stand for two concurrent requests."""

    def test_a_save_stores_its_planned_value_whole_unless_another_wrote_meanwhile(self):
        key = saved(a=1, b=2).session_key
        redis_key = SessionStore.redis_key(key)
        session = SessionStore(key)
        session["a"] = 3
        session.save()  # nothing written since the load: the value planned here, as it is
        assert session._loaded_value == redis().get(redis_key)
        other = SessionStore(key)
        other["c"] = 4
        other.save()
        session["b"] = 5
        session.save()  # the stored value is not the one this store knows: merged field by field
        assert session._loaded_value is None
        assert dict(SessionStore(key).items()) == {"a": 3, "b": 5, "c": 4}
        session["b"] = 6
        session.save()  # still merged: this store no longer knows the whole value
        assert dict(SessionStore(key).items()) == {"a": 3, "b": 6, "c": 4}

    def test_the_planned_value_and_the_merge_store_the_same_session(self):
        changes = {
            "a key added": lambda session: session.__setitem__("new", [1, 2]),
            "a key changed": lambda session: session.__setitem__("a", {"x": 1}),
            "a key deleted": lambda session: session.__delitem__("b"),
            "an expiry set": lambda session: session.set_expiry(600),
            "a user logged in": lambda session: session.__setitem__(SESSION_KEY, "7"),
            "everything cleared": lambda session: session.clear(),
        }
        for change_name, change in changes.items():
            with self.subTest(change_name):
                stored_sessions = []
                for planned in (True, False):
                    key = saved(a=1, b="two", c=[3]).session_key
                    session = SessionStore(key)
                    session["c"]  # read, as requests do
                    change(session)
                    if not planned:
                        session._loaded_value = None  # as if another request wrote meanwhile
                    session.save()
                    assert (session._loaded_value is not None) == planned
                    stored_sessions.append((dict(SessionStore(key).items()), set(stored(key))))
                planned_value, merged = stored_sessions
                assert planned_value == merged

    def both_concurrent_saves_of_different_keys_both_survive(self, call: Calls) -> None:
        key = saved_by(call, a=0).session_key
        first, second = SessionStore(key), SessionStore(key)
        call(first, "set", "a", 1)
        call(second, "set", "b", 2)
        call(first, "save")
        call(second, "save")
        assert dict(call(SessionStore(key), "items")) == {"a": 1, "b": 2}

    def test_a_deletion_does_not_undo_a_concurrent_write(self):
        key = saved(a=0, gone=1).session_key
        first, second = SessionStore(key), SessionStore(key)
        del first["gone"]
        second["b"] = 2
        second.save()
        first.save()
        assert dict(SessionStore(key).items()) == {"a": 0, "b": 2}

    def test_marked_modified_writes_what_changed_and_keeps_keys_added_meanwhile(self):
        key = saved(cart=["apple"], drop=1).session_key
        first, second = SessionStore(key), SessionStore(key)
        first["cart"].append("pear")
        first.pop("drop")
        first.modified = True
        second["added"] = True
        second.save()
        first.save()
        assert dict(SessionStore(key).items()) == {"cart": ["apple", "pear"], "added": True}

    def test_clear_without_loading_drops_all_data_and_keeps_metadata(self):
        key = saved(a=1, b=2).session_key
        session = SessionStore(key)
        session.clear()
        session.save()
        assert set(stored(key)) == {"m:created_at", "m:last_activity"}
        assert SessionStore(key).metadata.created_at is not None

    def test_a_value_the_serializer_refuses_writes_nothing(self):
        key = saved(a=1).session_key
        session = SessionStore(key)
        session["a"] = 2
        session["b"] = []
        session["b"].append(object())
        session.modified = True
        with pytest.raises(TypeError, match="'b'"):
            session.save()
        assert SessionStore(key)["a"] == 1

    def test_a_big_session_is_written_in_chunks(self):
        data = {f"key{number}": number for number in range(5000)}
        key = saved(**data).session_key
        session = SessionStore(key)
        assert dict(session.items()) == data
        session.clear()
        session.update({f"new{number}": number for number in range(5000)})
        session.save()
        assert len(SessionStore(key).keys()) == 5000


TOKENS = "headless_refresh_tokens"


def rotate(session: SessionStore, old: str, new: str, call: Calls = SYNC) -> None:
    """django-allauth's refresh-token rotation: setdefault, change in place, save()."""
    tokens = call(session, "setdefault", TOKENS, {})
    tokens.pop(old, None)
    tokens[new] = "issued"
    call(session, "save")


@with_twins
@pytest.mark.usefixtures("redis_db")
class RedisInPlaceChangeTests(SimpleTestCase):
    """A save stores every change a whole-session save would: in-place ones too."""

    # The views of each mode: the sync ones read request.session, the async ones its a* API.
    ROTATE = {"sync": "/rotate/", "async": "/async/rotate/"}
    APPEND = {"sync": "/append/", "async": "/async/append/"}

    def both_save_after_an_in_place_change_stores_it(self, call: Calls) -> None:
        key = saved_by(call, **{TOKENS: {"t1": "issued"}}).session_key
        rotate(SessionStore(key), "t1", "t2", call)
        assert call(SessionStore(key), "get", TOKENS) == {"t2": "issued"}

    def both_in_place_changes_to_different_keys_both_survive(self, call: Calls) -> None:
        key = saved_by(call, tokens={"t1": "issued"}, cart=[]).session_key
        first, second = SessionStore(key), SessionStore(key)
        call(first, "get", "tokens")["t2"] = "issued"
        call(second, "get", "cart").append("pear")
        call(first, "save")
        call(second, "save")
        assert dict(call(SessionStore(key), "items")) == {
            "tokens": {"t1": "issued", "t2": "issued"},
            "cart": ["pear"],
        }

    def test_rotation_repeated_on_one_store_keeps_only_the_latest_token(self):
        session = saved(a=1)
        for old, new in (("", "t1"), ("t1", "t2"), ("t2", "t3")):
            rotate(session, old, new)
        assert SessionStore(session.session_key)[TOKENS] == {"t3": "issued"}

    def test_an_in_place_change_does_not_undo_a_concurrent_write_to_another_key(self):
        key = saved(**{TOKENS: {"t1": "issued"}}, cart=[]).session_key
        first, second = SessionStore(key), SessionStore(key)
        first[TOKENS]
        second["cart"] = ["pear"]
        second.save()
        rotate(first, "t1", "t2")
        assert dict(SessionStore(key).items()) == {TOKENS: {"t2": "issued"}, "cart": ["pear"]}

    def test_a_touch_does_not_write_back_a_value_another_request_changed(self):
        key = saved(cart=["apple"]).session_key
        first, second = SessionStore(key), SessionStore(key)
        assert first["cart"] == ["apple"]
        second["cart"].append("pear")
        second.save()
        first.touch()
        assert SessionStore(key)["cart"] == ["apple", "pear"]

    def test_unchanged_containers_are_not_rewritten(self):
        # Rewritten under a rotated SECRET_KEY, a field would have other bytes.
        key = saved(tokens={"t1": "issued"}, cart=["apple"], name="x").session_key
        before = stored(key)
        rotated = override_settings(
            SECRET_KEY="a-rotated-secret-key-for-this-test-only",
            SECRET_KEY_FALLBACKS=[settings.SECRET_KEY],
        )
        with rotated:
            session = SessionStore(key)
            session["cart"].append("pear")
            session["name"] = "x"  # assigned, but the same value
            session.save()
        after = stored(key)
        assert after["d:tokens"] == before["d:tokens"]
        assert after["d:name"] == before["d:name"]
        assert after["d:cart"] != before["d:cart"]

    def test_a_key_removed_behind_the_stores_back_is_deleted(self):
        key = saved(a=1, b=2).session_key
        session = SessionStore(key)
        del session._session["b"]  # bypasses __delitem__, as a whole-session save allows
        session.save()
        assert dict(SessionStore(key).items()) == {"a": 1}

    @override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_ENGINE=ENGINE)
    def both_save_after_an_in_place_change_through_the_middleware(self, call: Calls) -> None:
        client, rotate_path = call.new_client(), self.ROTATE[call.mode]
        assert call.get(client, rotate_path + "none/t1/").status_code == 200
        assert call.get(client, rotate_path + "t1/t2/").status_code == 200
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert call(SessionStore(key), "get", TOKENS) == {"t2": "issued"}

    @override_settings(
        ROOT_URLCONF="tests.redis_urls", SESSION_ENGINE=ENGINE, SESSION_SAVE_EVERY_REQUEST=True
    )
    def both_save_every_request_stores_an_in_place_change(self, call: Calls) -> None:
        client = call.new_client()
        assert call.get(client, "/write/cart/").status_code == 200
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        session = SessionStore(key)
        call(session, "set", "cart", [])
        call(session, "save")
        assert call.get(client, self.APPEND[call.mode] + "apple/").status_code == 200
        assert call(SessionStore(key), "get", "cart") == ["apple"]


class ScriptedKeys(SessionStore):
    """Hands out chosen session keys first: a collision cannot be produced otherwise."""

    keys: list[str] = []
    key_salt = SessionStore().key_salt  # read what SessionStore wrote

    def _get_new_session_key(self) -> str:
        return self.keys.pop(0) if self.keys else super()._get_new_session_key()


@with_twins
@pytest.mark.usefixtures("redis_db")
class RedisCreateAndCycleTests(SimpleTestCase):
    def both_create_never_overwrites_an_existing_session(self, call: Calls) -> None:
        existing = saved_by(call, owner="someone else").session_key
        ScriptedKeys.keys = [existing]
        session = ScriptedKeys()
        call(session, "set", "owner", "me")
        call(session, "save")
        assert session.session_key != existing
        assert call(SessionStore(existing), "get", "owner") == "someone else"
        assert call(SessionStore(session.session_key), "get", "owner") == "me"

    def test_cycle_key_moves_data_metadata_and_ttl_and_kills_the_old_key_at_once(self):
        session = saved(a=1)
        session = SessionStore(session.session_key)
        session.set_expiry(900)
        session.save()
        old_key = session.session_key
        created = session.metadata.created_at
        session.cycle_key()
        assert redis().exists(SessionStore.redis_key(old_key)) == 0
        assert 890_000 < redis().pttl(SessionStore.redis_key(session.session_key)) <= 900_000
        assert SessionStore(session.session_key).metadata.created_at == created
        assert session.modified is True

    def both_cycle_key_keeps_what_another_request_wrote_meanwhile(self, call: Calls) -> None:
        key = saved_by(call, a=1).session_key
        session = SessionStore(key)
        call(session, "set", "mine", "pending")
        other = SessionStore(key)
        call(other, "set", "theirs", "saved")
        call(other, "save")
        call(session, "cycle_key")
        call(session, "save")
        assert redis().exists(SessionStore.redis_key(key)) == 0
        assert dict(call(SessionStore(session.session_key), "items")) == {
            "a": 1,
            "mine": "pending",
            "theirs": "saved",
        }

    def both_cycle_key_skips_a_new_key_that_is_taken(self, call: Calls) -> None:
        taken = saved_by(call, owner="someone else").session_key
        session = saved_by(call, owner="me")
        ScriptedKeys.keys = [taken]
        session = ScriptedKeys(session.session_key)
        call(session, "get", "owner")
        call(session, "cycle_key")
        assert session.session_key != taken
        assert call(SessionStore(taken), "get", "owner") == "someone else"
        assert call(SessionStore(session.session_key), "get", "owner") == "me"

    def both_cycle_key_of_a_session_deleted_meanwhile_starts_a_new_one(self, call: Calls) -> None:
        session = SessionStore(saved_by(call, a=1).session_key)
        call(session, "get", "a")
        call(SessionStore(), "delete", session.session_key)
        old_key = session.session_key
        call(session, "cycle_key")
        assert session.session_key not in (None, old_key)
        assert call(SessionStore(session.session_key), "get", "a") == 1
        assert redis().exists(SessionStore.redis_key(old_key)) == 0


def past_its_expiry() -> Any:
    """A moment past a session saved now with the default age, clock skew allowed for."""
    return timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE + CLOCK_SKEW + 1)


@with_twins
@pytest.mark.usefixtures("redis_db")
class RedisIntegrityTests(SimpleTestCase):
    def assert_no_session_and_logged(
        self, session_key: str, problem: str, call: Calls = SYNC
    ) -> None:
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            loaded = SessionStore(session_key)
            assert list(call(loaded, "keys")) == []
        assert loaded.session_key is None
        assert problem in logs.output[0]
        assert session_key not in "".join(logs.output)

    def both_a_key_whose_ttl_was_removed_ends_with_its_own_signed_expiry(self, call: Calls) -> None:
        key = saved_by(call, a=1).session_key
        redis().persist(SessionStore.redis_key(key))
        assert call(SessionStore(key), "get", "a") == 1
        with freeze_time(past_its_expiry()):
            self.assert_no_session_and_logged(key, "outlived its expiry", call)

    def test_a_stretched_ttl_does_not_stretch_the_session(self):
        session = SessionStore()
        session["a"] = 1
        session.set_expiry(600)
        session.save()
        redis().expire(SessionStore.redis_key(session.session_key), 86_400)
        with freeze_time(timezone.now() + timedelta(seconds=600 + CLOCK_SKEW + 1)):
            self.assert_no_session_and_logged(session.session_key, "outlived its expiry")

    def test_a_tampered_value_read_after_load_ends_the_session_there(self):
        session = saved(a=1, b=2)
        set_field(
            redis(),
            SessionStore.redis_key(session.session_key),
            "d:b",
            stored(session.session_key)["d:a"],
        )
        loaded = SessionStore(session.session_key)
        loaded.update_metadata(ip="192.0.2.1")
        assert loaded["a"] == 1  # verified when read: b is not read yet
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            assert loaded.get("b") is None
        assert "signature" in logs.output[0]
        assert loaded.session_key is None
        assert dict(loaded.items()) == {}
        assert loaded.metadata.ip == "192.0.2.1"

    def test_a_value_moved_to_another_field_fails_its_signature(self):
        key = saved(a="admin", b="guest").session_key
        set_field(redis(), SessionStore.redis_key(key), "d:b", stored(key)["d:a"])
        self.assert_no_session_and_logged(key, "signature")

    def test_a_value_from_another_session_fails_when_its_field_differs(self):
        victim = saved(role="admin").session_key
        attacker = saved(name="x").session_key
        set_field(redis(), SessionStore.redis_key(attacker), "d:name", stored(victim)["d:role"])
        self.assert_no_session_and_logged(attacker, "signature")

    def test_a_field_written_outside_the_engine_is_no_session(self):
        key = saved(a=1).session_key
        set_field(redis(), SessionStore.redis_key(key), "d:admin", "true")
        self.assert_no_session_and_logged(key, "signature")

    def test_forged_metadata_is_no_session(self):
        key = saved(a=1).session_key
        set_field(redis(), SessionStore.redis_key(key), "m:user_id", "1")
        self.assert_no_session_and_logged(key, "signature")

    def test_metadata_a_load_does_not_need_is_verified_when_first_read(self):
        key = saved_with_client(a=1)
        set_field(redis(), SessionStore.redis_key(key), "m:user_agent", stored(key)["m:ip"])
        loaded = SessionStore(key)
        loaded.update_metadata(user_id="7")
        assert loaded["a"] == 1  # loaded: the user agent is not read yet
        assert loaded.seconds_since("last_activity") is not None
        assert loaded.session_key == key
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            metadata = loaded.metadata
        assert "signature" in logs.output[0]
        assert key not in "".join(logs.output)
        assert loaded.session_key is None
        assert dict(loaded.items()) == {}
        # Verified whole: nothing stored shows, only what was staged here.
        assert metadata == SessionMetadata(user_id="7")

    def test_staging_metadata_over_a_forged_field_writes_it_afresh(self):
        key = saved_with_client(a=1)
        set_field(redis(), SessionStore.redis_key(key), "m:ip", "192.0.2.66")
        session = SessionStore(key)
        assert session["a"] == 1
        with self.assertNoLogs("django.security.SuspiciousSession"):
            # Compared as stored text, never verified: nothing stored is handed out.
            session.update_metadata(ip="192.0.2.1")
            session.save()
        assert session.session_key == key
        with self.assertNoLogs("django.security.SuspiciousSession"):
            metadata = SessionStore(key).metadata
        assert (metadata.ip, metadata.user_agent) == ("192.0.2.1", "Browser/1.0")

    def test_staging_the_stored_value_neither_verifies_nor_rewrites_it(self):
        key = saved_with_client(a=1)
        payload = stored(key)["m:ip"].rpartition(b":")[0]
        forged = payload + b":" + b"A" * 43  # the stored IP, under a signature not ours
        set_field(redis(), SessionStore.redis_key(key), "m:ip", forged)
        session = SessionStore(key)
        with self.assertNoLogs("django.security.SuspiciousSession"):
            assert session["a"] == 1
            session.update_metadata(ip="192.0.2.1")
            session["a"] = 2
            session.save()
        assert stored(key)["m:ip"] == forged
        # Read, it fails as any forged field does.
        self.assert_no_session_and_logged(key, "signature")

    def test_a_save_leaves_metadata_it_does_not_write_unread(self):
        key = saved_with_client(a=1)
        set_field(redis(), SessionStore.redis_key(key), "m:user_agent", stored(key)["m:ip"])
        session = SessionStore(key)
        with self.assertNoLogs("django.security.SuspiciousSession"):
            session["a"] = 2
            session.save()  # the user agent is neither read nor written
        assert stored(key)["m:user_agent"] == stored(key)["m:ip"]
        self.assert_no_session_and_logged(key, "signature")

    def test_a_new_key_keeps_metadata_never_read(self):
        key = saved_with_client(a=1)
        session = SessionStore(key)
        assert session["a"] == 1
        redis().delete(SessionStore.redis_key(key))  # cycle_key then creates afresh
        session.cycle_key()
        assert session.session_key not in (None, key)
        metadata = SessionStore(session.session_key).metadata
        assert (metadata.ip, metadata.user_agent) == ("192.0.2.1", "Browser/1.0")

    def test_metadata_the_lifecycle_reads_at_load_is_verified_with_the_load(self):
        for name, setting in [
            ("created_at", {"SESSIONPLUS_ABSOLUTE_TIMEOUT": 3600}),
            ("ip", {"SESSIONPLUS_BIND": ("ip_network",)}),
            ("user_agent", {"SESSIONPLUS_BIND": ("user_agent",)}),
        ]:
            with self.subTest(name), override_settings(**setting):
                key = saved_with_client(a=1)
                set_field(redis(), SessionStore.redis_key(key), f"m:{name}", stored(key)["d:a"])
                with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
                    loaded = SessionStore(key)
                    assert loaded.get("a") is None
                assert loaded.session_key is None
                assert "signature" in logs.output[0]

    def test_a_hash_written_by_someone_else_is_no_session(self):
        key = "d" * 32
        set_field(redis(), SessionStore.redis_key(key), "d:a", "1")
        redis().expire(SessionStore.redis_key(key), 60)
        self.assert_no_session_and_logged(key, "no last activity")

    def test_a_value_signed_with_another_secret_key_is_no_session(self):
        with override_settings(SECRET_KEY="another-secret-key-entirely-not-ours"):
            key = saved(a=1).session_key
        self.assert_no_session_and_logged(key, "signature")

    def test_a_value_signed_with_a_fallback_secret_key_still_loads(self):
        key = saved(a=1).session_key
        with override_settings(
            SECRET_KEY="the-new-secret-key-after-a-rotation",
            SECRET_KEY_FALLBACKS=[settings.SECRET_KEY],
        ):
            assert SessionStore(key)["a"] == 1

    def test_a_large_value_is_stored_compressed_and_reads_back(self):
        text = "the same words again " * 200
        key = saved(text=text, small="x").session_key
        assert len(stored(key)["d:text"]) < len(text) // 4
        assert stored(key)["d:text"].startswith(b".")
        assert not stored(key)["d:small"].startswith(b".")
        assert SessionStore(key)["text"] == text

    def test_bytes_that_are_not_text_are_no_session(self):
        # Checked as bytes, before any decoding: refused as not signed by us.
        key = saved(a=1).session_key
        set_field(redis(), SessionStore.redis_key(key), "d:a", b"\xff\xfe")
        self.assert_no_session_and_logged(key, "failed its signature check")

    def test_a_value_not_laid_out_as_the_engine_writes_is_no_session_and_not_remembered(self):
        key = saved(a=1).session_key
        redis_key = SessionStore.redis_key(key)
        good = redis().get(redis_key)
        header, _, body = good.partition(b"\n")
        not_ours = {
            "no header": body,
            "a header that is not JSON": b"[[" + good,
            "a header that is not UTF-8": b'[["\xff"],[],0]\n' + body.split(b" ")[0],
            "a header of another shape": b'{"d":["a"]}\n' + body,
            "an index count other than 0 or 1": header[:-2] + b"2]\n" + body,
            "a key named twice": b'[["a","a"],["created_at","last_activity"],0]\n' + body,
            "a text too many": good + b" " + body.split(b" ")[0],
            "a text too few": good.rpartition(b" ")[0],
            "an empty text": good.replace(b" ", b"  ", 1),
        }
        for problem, value in not_ours.items():
            with self.subTest(problem):
                redis().set(redis_key, value, ex=60)
                self.assert_no_session_and_logged(key, "is not a session value")
                assert value not in layout._values
        redis().set(redis_key, good, ex=60)
        assert SessionStore(key)["a"] == 1

    def both_a_key_holding_another_kind_of_value_is_no_session(self, call: Calls) -> None:
        key = saved(a=1).session_key
        redis_key = SessionStore.redis_key(key)
        redis().delete(redis_key)
        redis().rpush(redis_key, b"1")
        self.assert_no_session_and_logged(key, "it is not a string", call)
        assert redis().type(redis_key) == b"list"

    def test_a_key_holding_another_kind_of_value_is_no_session_and_can_be_deleted(self):
        # What a key written by something else (or an earlier layout's hash) holds.
        key = saved(a=1).session_key
        redis_key = SessionStore.redis_key(key)
        redis().delete(redis_key)
        redis().hset(redis_key, "d:a", b"1")
        self.assert_no_session_and_logged(key, "it is not a string")
        session = SessionStore(key)
        session["b"] = 2
        session.save()  # a new session under a new key: the other value is left alone
        assert session.session_key != key
        assert redis().type(redis_key) == b"hash"
        SessionStore().delete(key)
        assert not redis().exists(redis_key)

    def test_a_value_replaced_behind_a_loaded_session_is_never_overwritten(self):
        for replacement in (b"not a session", None):
            with self.subTest(replacement=replacement):
                key = saved(a=1).session_key
                redis_key = SessionStore.redis_key(key)
                session = SessionStore(key)
                session["a"]  # loaded
                redis().delete(redis_key)
                if replacement is None:
                    redis().hset(redis_key, "d:a", b"1")
                else:
                    redis().set(redis_key, replacement)
                session["a"] = 2
                with pytest.raises(UpdateError):
                    session.save()
                kept = redis().get(redis_key) if replacement else redis().hget(redis_key, "d:a")
                assert kept == (replacement or b"1")

    def test_keys_json_escapes_survive_the_write_script(self):
        # The Lua script reads and writes the header: every key must come back as it went.
        keys = [
            "a/b",
            'say "hi"',
            "back\\slash",
            "new\nline",
            "tab\t",
            "é",
            "日本",
            "🙂",
            "1",
            "[]",
            "null",
            "\u2028",
            "\x00",
            "",
            " ",
        ]
        key = saved(**dict.fromkeys(keys, "v"), other=0).session_key
        session = SessionStore(key)
        session["other"] = 1
        del session["1"]
        meanwhile = SessionStore(key)
        meanwhile["added"] = 2
        meanwhile.save()
        session.save()  # merged by the script, every other key carried over by its name
        expected = {**dict.fromkeys(keys, "v"), "other": 1, "added": 2}
        del expected["1"]
        assert session._loaded_value is None  # (the merge, not the planned value)
        assert dict(SessionStore(key).items()) == expected

    def test_a_request_with_a_tampered_session_goes_on_anonymous(self):
        key = saved(a=1).session_key
        set_field(redis(), SessionStore.redis_key(key), "d:a", stored(key)["m:created_at"])
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = key
        with (
            override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_ENGINE=ENGINE),
            self.assertLogs("django.security.SuspiciousSession", "WARNING"),
        ):
            response = client.get("/read/")
        assert response.status_code == 200
        assert response.content == b""


SHORT_TIMEOUTS = {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3}


@contextmanager
def outage_settings(url: str, options: dict[str, Any] = SHORT_TIMEOUTS) -> Iterator[None]:
    """Point the engine at ``url`` through its own django-redis alias, with short timeouts."""
    # django-redis keeps one pool per URL for the whole process, made with the options of
    # the first alias that used it: a port an earlier test's listener had (the OS hands
    # ports out again) would bring that test's timeouts along (seen once in CI).
    ConnectionFactory._pools.pop(url, None)
    alias = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "OPTIONS": options}
    with override_settings(
        CACHES={**settings.CACHES, "outage": alias}, SESSIONPLUS_REDIS_ALIAS="outage"
    ):
        yield


@with_twins
class RedisOutageTests(SimpleTestCase):
    """Redis down, hanging up or never answering: SessionStoreUnavailable, in bounded time."""

    def assert_every_operation_unavailable(self, call: Calls, cause: type[Exception]) -> None:
        operations = {
            "load": lambda: call(SessionStore("a" * 32), "load"),
            "create": lambda: call(SessionStore(), "create"),
            "save": lambda: call(SessionStore("a" * 32), "save"),
            "exists": lambda: call(SessionStore(), "exists", "a" * 32),
            "delete": lambda: call(SessionStore(), "delete", "a" * 32),
            "cycle_key": lambda: call(SessionStore("a" * 32), "cycle_key"),
            "sessions_for_user": lambda: call(SessionStore, "sessions_for_user", "7"),
            "end_sessions_for_user": lambda: call(SessionStore, "end_sessions_for_user", "7"),
            "prune_user_indexes": lambda: call(SessionStore, "prune_user_indexes"),
        }
        for name, operation in operations.items():
            with pytest.raises(SessionStoreUnavailable) as raised:
                operation()
            assert isinstance(raised.value.__cause__, cause), name

    def both_a_dead_port_is_unavailable(self, call: Calls) -> None:
        with outage_settings(f"redis://127.0.0.1:{dead_port()}/0"):
            self.assert_every_operation_unavailable(call, redis_exceptions.ConnectionError)

    def both_a_server_that_hangs_up_is_unavailable(self, call: Calls) -> None:
        with HangingUpListener() as listener, outage_settings(listener.url):
            self.assert_every_operation_unavailable(call, redis_exceptions.ConnectionError)

    def both_a_server_that_never_answers_is_unavailable_after_the_socket_timeout(
        self, call: Calls
    ) -> None:
        with SilentListener() as listener, outage_settings(listener.url):
            self.assert_every_operation_unavailable(call, redis_exceptions.TimeoutError)
            assert listener.accepted  # the client did connect: it gave up waiting

    # The Redis client each mode's store uses for an alias.
    CLIENT = {"sync": redis_clients.sync_client, "async": async_to_sync(async_client)}

    def both_an_alias_without_timeouts_gets_the_default_and_a_silent_server_a_503(
        self, call: Calls
    ) -> None:
        client = call.new_client()
        client.cookies[settings.SESSION_COOKIE_NAME] = "a" * 32
        with (
            SilentListener() as listener,
            outage_settings(listener.url, options={}),
            override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_ENGINE=ENGINE),
        ):
            with pytest.raises(SessionStoreUnavailable):
                call(SessionStore("a" * 32), "load")
            response = call.get(client, "/write/a/")
            connection_kwargs = self.CLIENT[call.mode]("outage").connection_pool.connection_kwargs
        assert response.status_code == 503
        assert listener.accepted  # it connected, then gave up waiting for an answer
        # redis-py's own default is 5 s (forever before redis-py 6).
        assert redis_clients.DEFAULT_SOCKET_TIMEOUT == 1.0
        assert connection_kwargs["socket_timeout"] == redis_clients.DEFAULT_SOCKET_TIMEOUT
        assert connection_kwargs["socket_connect_timeout"] == redis_clients.DEFAULT_SOCKET_TIMEOUT

    def test_timeouts_the_alias_sets_are_kept(self):
        with SilentListener() as listener, outage_settings(listener.url):
            client = redis_clients.sync_client("outage")
            connection_kwargs = client.connection_pool.connection_kwargs
        assert connection_kwargs["socket_timeout"] == 0.3
        assert connection_kwargs["socket_connect_timeout"] == 0.3

    def test_a_request_that_never_touches_the_session_is_unaffected(self):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = "a" * 32
        with (
            outage_settings(f"redis://127.0.0.1:{dead_port()}/0"),
            override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_ENGINE=ENGINE),
        ):
            assert client.get("/untouched/").status_code == 200

    def both_a_request_that_reads_the_session_gets_a_503_and_keeps_its_cookie(
        self, call: Calls
    ) -> None:
        # The sync request path (WSGI, the middleware's __call__) or the async one (ASGI).
        requests = AsyncRequests() if call.mode == "async" else SyncRequests()
        for path in ("/write/a/", "/async/read/"):
            client = requests.make_client()
            client.cookies[settings.SESSION_COOKIE_NAME] = "a" * 32
            with (
                outage_settings(f"redis://127.0.0.1:{dead_port()}/0"),
                override_settings(ROOT_URLCONF="tests.redis_urls", SESSION_ENGINE=ENGINE),
            ):
                response = requests.send(client, "get", path, None, None, {})
            assert response.status_code == 503, path
            assert settings.SESSION_COOKIE_NAME not in response.cookies, path

    def both_it_recovers_by_itself_when_redis_returns(self, call: Calls) -> None:
        port = free_port()
        with outage_settings(f"redis://127.0.0.1:{port}/0", LIVE_OR_GONE_TIMEOUTS):
            with running_redis(port):
                key = saved_by(call, a=1).session_key
                session = SessionStore(key)
                call(session, "set", "b", 2)
            with pytest.raises(SessionStoreUnavailable):
                call(session, "save")
            assert session.modified is True  # the change is still pending, not lost
            with pytest.raises(SessionStoreUnavailable):
                call(SessionStore(key), "load")
            with running_redis(port):  # back, empty: this Redis keeps nothing on disk
                # The session went with Redis's data: a save must not resurrect it.
                with pytest.raises(UpdateError):
                    call(session, "save")
                assert call(SessionStore(key), "get", "a") is None
                assert call(SessionStore(saved_by(call, c=3).session_key), "get", "c") == 3


@contextmanager
def running_redis(port: int) -> Iterator[None]:
    server = PrivateRedis(port)
    server.start()
    try:
        yield
    finally:
        server.stop()


@pytest.mark.usefixtures("redis_db")
class RedisLazyDataTests(SimpleTestCase):
    """Values verified when read, and a save that handles only what it writes."""

    def test_a_loaded_store_is_freed_by_reference_counting_not_the_collector(self):
        # The loaded data must not hold its store strongly: a cycle between them would leave
        # both, on every request, to the garbage collector (which then runs more often).
        key = saved(a=1, b=[2]).session_key
        gc.disable()
        try:
            session = SessionStore(key)
            assert session["b"] == [2]
            assert session.metadata.last_activity is not None  # the metadata loaded too
            data = session.load()
            gone = weakref.ref(session)
            del session
            assert gone() is None
            assert data["a"] == 1  # data read after its store went is still verified
        finally:
            gc.enable()

    def test_a_client_that_decodes_replies_reads_sessions_too(self):
        # Another database: django-redis shares one pool per URL, and this one decodes.
        decoding = {
            **settings.CACHES["redis"],
            "LOCATION": redis_url().rsplit("/", 1)[0] + "/7",
            "OPTIONS": {
                **settings.CACHES["redis"]["OPTIONS"],
                "CONNECTION_POOL_KWARGS": {"decode_responses": True},
            },
        }
        caches = {**settings.CACHES, "decoding": decoding}
        with override_settings(CACHES=caches, SESSIONPLUS_REDIS_ALIAS="decoding"):
            try:
                session = saved(a=1, cart=["apple"])
                session = SessionStore(session.session_key)
                assert dict(session.items()) == {"a": 1, "cart": ["apple"]}
                session["a"] = 2
                session.save()
                assert SessionStore(session.session_key)["a"] == 2
            finally:
                get_redis_connection("decoding").flushdb()

    def test_a_field_of_a_later_release_is_verified_and_kept(self):
        session = saved(a=1)
        codec = session.codec()
        set_field(
            redis(),
            SessionStore.redis_key(session.session_key),
            "m:future",
            codec.dumps("m:future", 1),
        )
        assert SessionStore(session.session_key)["a"] == 1
        assert "m:future" in stored(session.session_key)

    def test_a_damaged_value_assigned_without_being_read_is_overwritten(self):
        key = saved(a=1, b=2).session_key
        set_field(redis(), SessionStore.redis_key(key), "d:b", b"damaged")
        session = SessionStore(key)
        session["b"] = 3
        session.save()
        assert dict(SessionStore(key).items()) == {"a": 1, "b": 3}

    def test_a_value_assigned_unread_and_unchanged_is_not_rewritten(self):
        key = saved(a=1, cart=["apple"]).session_key
        before = stored(key)
        with override_settings(
            SECRET_KEY_FALLBACKS=[settings.SECRET_KEY], SECRET_KEY="rotated-key"
        ):
            session = SessionStore(key)
            session["cart"] = ["apple"]
            session.save()
        assert stored(key)["d:cart"] == before["d:cart"]

    def test_a_value_assigned_unread_is_compared_with_the_stored_text_unverified(self):
        key = saved(a=1, b=2).session_key
        forged = stored(key)["d:b"].rpartition(b":")[0] + b":" + b"A" * 43
        set_field(redis(), SessionStore.redis_key(key), "d:b", forged)
        session = SessionStore(key)
        with self.assertNoLogs("django.security.SuspiciousSession"):
            session["b"] = 2  # what the forged text holds: nothing to write
            session["a"] = 5
            session.save()
        assert stored(key)["d:b"] == forged
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            assert SessionStore(key).get("b") is None  # read, it fails as forged fields do
        assert "signature" in logs.output[0]

    @override_settings(SESSIONPLUS_MAX_SIZE=3000)
    def test_a_compressed_value_never_read_counts_at_its_full_size(self):
        key = saved(text="the same words again " * 100, small="x").session_key
        assert stored(key)["d:text"].startswith(b".")
        session = SessionStore(key)
        session["small"] = "y"
        session.save()
        session = SessionStore(key)
        session["more"] = "z" * 1000
        with pytest.raises(SessionTooLarge):
            session.save()
        assert "d:more" not in stored(key)

    @override_settings(SESSIONPLUS_MAX_SIZE=100)
    def test_a_damaged_value_met_while_measuring_the_session_ends_it_unsaved(self):
        key = saved(a=1, b=2).session_key
        set_field(redis(), SessionStore.redis_key(key), "d:b", stored(key)["d:a"])
        session = SessionStore(key)
        session["c"] = "x" * 60
        with (
            self.assertLogs("django.security.SuspiciousSession", "WARNING"),
            pytest.raises(UpdateError),
        ):
            session.save()
        assert "d:c" not in stored(key)

    def test_create_gives_up_when_every_new_key_is_taken(self):
        taken = [saved(n=number).session_key for number in range(MAX_CREATE_ATTEMPTS)]
        ScriptedKeys.keys = list(taken)
        session = ScriptedKeys()
        session["a"] = 1
        with pytest.raises(RuntimeError, match="new session key"):
            session.create()
        assert [SessionStore(key)["n"] for key in taken] == list(range(MAX_CREATE_ATTEMPTS))


@with_twins
@pytest.mark.usefixtures("redis_db")
class RedisEdgeCaseTests(SimpleTestCase):
    def both_cycle_key_of_a_new_session_creates_it(self, call: Calls) -> None:
        session = SessionStore()
        call(session, "set", "a", 1)
        call(session, "cycle_key")
        assert call(SessionStore(session.session_key), "get", "a") == 1

    def both_delete_without_a_key_and_exists_of_a_malformed_one_do_nothing(
        self, call: Calls
    ) -> None:
        call(SessionStore(), "delete")
        assert call(SessionStore(), "exists", "not a key") is False
        assert redis().keys("*") == []

    def both_cycle_key_gives_up_when_every_new_key_is_taken(self, call: Calls) -> None:
        taken = [saved_by(call, n=number).session_key for number in range(MAX_CREATE_ATTEMPTS)]
        session = ScriptedKeys(saved_by(call, a=1).session_key)
        call(session, "get", "a")
        ScriptedKeys.keys = list(taken)
        with pytest.raises(RuntimeError, match="new session key"):
            call(session, "cycle_key")
        assert [call(SessionStore(key), "get", "n") for key in taken] == list(
            range(MAX_CREATE_ATTEMPTS)
        )

    def test_delete_of_a_session_with_a_damaged_index_field_still_deletes(self):
        session = log_in("7")
        set_field(redis(), SessionStore.redis_key(session.session_key), "x:index", "garbage")
        SessionStore().delete(session.session_key)
        assert SessionStore().exists(session.session_key) is False
