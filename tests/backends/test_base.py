"""
What every engine inherits from ``SessionPlusBase``: the key's shape, encoding, decoding.

On every engine: stored data altered outside the app is no session, logged once with the
key hashed; and (hypothesis) whatever JSON-able data a session holds, what was saved is
what loads, through a first save and a delta save.
"""

from __future__ import annotations

import pkgutil
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.signing import BadSignature, JSONSerializer
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import timezone
from freezegun import freeze_time
from hypothesis import given, reject
from hypothesis import strategies as st
from hypothesis.extra import django as hypothesis_django

import sessionplus.backends
from sessionplus.backends.base import SessionPlusBase, is_valid_session_key
from sessionplus.backends.data_rule import RESERVED_KEY_PREFIX
from sessionplus.backends.django_signing import signer
from sessionplus.backends.expiry import EXPIRY_KEY
from sessionplus.exceptions import SessionTooLarge
from sessionplus.identifiers import log_id
from tests.backends.contract import SYNC, Calls, with_twins
from tests.support.engines import (
    ENGINES,
    SHIPPED,
    EngineTestMixin,
    engine_matrix,
    flip_byte,
    read_payload,
    tamper,
)
from tests.support.properties import per_engine

SUSPICIOUS = "django.security.SuspiciousSession"


class SessionKeyTests(SimpleTestCase):
    def test_only_the_exact_shape_of_a_key_django_generates_is_valid(self):
        assert is_valid_session_key("a1" * 16)
        for key in (None, 1, "a1" * 15, "a1" * 17, "A1" * 16, "a-" * 16, "a1" * 15 + "a\n"):
            assert not is_valid_session_key(key), key

    def test_new_keys_have_that_shape(self):
        session = SessionPlusBase()
        keys = {session._get_new_session_key() for _ in range(10)}
        assert len(keys) == 10
        assert all(is_valid_session_key(key) for key in keys)


class StoreConstructionTests(SimpleTestCase):
    def test_a_new_store_has_every_attribute_djangos_init_sets(self):
        # SessionPlusBase.__init__ does SessionBase.__init__'s work itself: a Django release
        # that sets another attribute there fails here instead of in production.
        assert set(vars(SessionBase("a1" * 16))) <= set(vars(SessionPlusBase("a1" * 16)))

    def test_a_new_store_starts_unread_unmodified_and_with_the_configured_serializer(self):
        session = SessionPlusBase("a1" * 16)
        assert (session.session_key, session.accessed, session.modified) == (
            "a1" * 16,
            False,
            False,
        )
        assert session.serializer is SessionBase().serializer
        assert session._metadata == {}
        assert session._metadata_changes == {}

    def test_a_malformed_key_is_no_key_as_in_django(self):
        assert SessionPlusBase("not a key").session_key is None

    @override_settings(SESSION_SERIALIZER="tests.backends.test_base.TaggingSerializer")
    def test_the_serializer_follows_the_setting(self):
        assert SessionPlusBase().serializer is TaggingSerializer


class LongerExpiry(SessionPlusBase):
    def get_expiry_date(self, **kwargs: Any) -> Any:
        return super().get_expiry_date(**kwargs) + timedelta(days=1)


class ExpiryTimestampTests(SimpleTestCase):
    @freeze_time("2026-12-06 12:00:00.25")
    def test_the_expiry_is_djangos_expiry_date_as_a_timestamp(self):
        now = timezone.now().timestamp()
        for expiry in (None, 0, 60, 2.5, -10, (timezone.now() + timedelta(hours=3)).isoformat()):
            with self.subTest(expiry=expiry):
                session = SessionPlusBase()
                session._session_cache = {} if expiry is None else {EXPIRY_KEY: expiry}
                expected = session.get_expiry_date(modification=timezone.now()).timestamp()
                assert session.expiry_timestamp(now) == expected

    @freeze_time("2026-12-06 12:00:00")
    def test_a_store_that_computes_its_own_expiry_date_is_asked(self):
        session = LongerExpiry()
        session._session_cache = {EXPIRY_KEY: 60}
        assert session.expiry_timestamp() == timezone.now().timestamp() + 60 + 86400


class TaggingSerializer(JSONSerializer):
    """A serializer of its own, to tell that a store took the setting's."""


class EncodingTests(SimpleTestCase):
    def test_encoded_data_is_what_django_would_encode(self):
        # The same signing format as Django's SessionBase, so either decodes the other's.
        session = SessionPlusBase()
        encoded = session.encode({"a": 1})
        assert SessionBase.decode(session, encoded) == {"a": 1}
        assert session.decode(SessionBase.encode(session, {"b": 2})) == {"b": 2}

    def test_data_that_fails_its_signature_decodes_to_nothing_and_is_logged(self):
        session = SessionPlusBase()
        encoded = session.encode({"a": 1})
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            assert session.decode(encoded[:-1] + ("A" if encoded[-1] != "A" else "B")) == {}
        assert "Session data corrupted: failed its signature check" in logs.output[0]


# Tampering, on every engine ------------------------------------------------------------


@with_twins
class TamperingChecks(EngineTestMixin):
    """Stored data altered outside the app is no session, logged once with the key hashed."""

    SECRET = "the-secret-value"

    def assert_no_session_logged_once(
        self, presented: str, original: str, what: object, call: Calls = SYNC
    ) -> None:
        payload = read_payload(self.engine, original) if presented == original else presented
        with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
            session = self.store(presented)
            assert dict(call(session, "items")) == {}, what
        assert session.session_key is None, what
        assert len(logs.records) == 1, (what, logs.output)
        output = logs.output[0]
        assert log_id(presented) in output, what
        assert presented not in output, what
        assert original not in output, what
        assert payload not in output, what
        assert self.SECRET not in output, what

    def both_a_flipped_byte_in_the_stored_data_is_no_session_logged_once(self, call: Calls) -> None:
        length = len(read_payload(self.engine, self.saved(secret=self.SECRET).session_key))
        for position in (0, 1, 3, length // 3, length // 2, length - 2, length - 1):
            session = self.store()
            call(session, "update", {"secret": self.SECRET})
            call(session, "save")
            key = session.session_key
            presented = tamper(self.engine, key, flip_byte(position))
            self.assert_no_session_logged_once(presented, key, position, call)

    def test_a_truncated_stored_payload_is_no_session_logged_once(self):
        for cut in (1, 5, 10):
            key = self.saved(secret=self.SECRET).session_key
            presented = tamper(self.engine, key, lambda payload, cut=cut: payload[:-cut])
            self.assert_no_session_logged_once(presented, key, cut)

    # The view the tampered session is sent to: it reads the session, then writes to it.
    write_view = "/write/"

    def test_a_tampered_session_gets_an_anonymous_response_and_a_fresh_key(self):
        key = self.saved(secret=self.SECRET).session_key
        presented = tamper(self.engine, key, flip_byte(5))
        self.client.cookies[settings.SESSION_COOKIE_NAME] = presented
        with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
            response = self.client.get(self.write_view)
        assert len(logs.records) == 1
        assert response.status_code == 200
        assert response.content == b"visits=1"
        assert response.cookies[settings.SESSION_COOKIE_NAME].value not in (key, presented)


engine_matrix(
    globals(), "TamperingTests", (TamperingChecks, TestCase), ["db", "cached_db", "cache", "file"]
)


# The data as the server-side engines store it -----------------------------------------


class StoredDataChecks(EngineTestMixin):
    """The data's JSON signed as it is; earlier releases' base64 (Django's form) still loads."""

    def test_the_data_is_its_json_signed_as_it_is(self):
        session = self.saved(cat="lion", n=[1, 2])
        payload = read_payload(self.engine, session.session_key)
        assert payload.rsplit(":", 2)[0] == '{"cat":"lion","n":[1,2]}'
        assert signer(session.key_salt).loads(payload, JSONSerializer) == {
            "cat": "lion",
            "n": [1, 2],
        }
        with pytest.raises(BadSignature):
            signer(session.key_salt + ".other").loads(payload, JSONSerializer)

    def test_data_stored_in_base64_as_earlier_releases_did_loads_and_is_rewritten_plain(self):
        session = self.saved(cat="lion")
        earlier = session.encode({"cat": "lion"})  # Django's form: base64 payload
        assert earlier[0] != "{"
        tamper(self.engine, session.session_key, lambda payload: earlier)
        loaded = self.store(session.session_key)
        assert dict(loaded.items()) == {"cat": "lion"}
        loaded["dog"] = "wolf"
        loaded.save()
        assert read_payload(self.engine, session.session_key).startswith('{"cat":"lion",')
        assert self.stored(loaded) == {"cat": "lion", "dog": "wolf"}


engine_matrix(
    globals(), "StoredDataTests", (StoredDataChecks, TestCase), ["db", "cached_db", "cache", "file"]
)


@pytest.mark.usefixtures("redis_db")
class RedisTamperingTests(TamperingChecks, TestCase):
    engine = ENGINES["redis"]
    # Each value is verified when read: "/write/" never reads the tampered one.
    write_view = "/read-all-then-write/"

    def test_a_tampered_value_no_request_reads_is_never_returned_and_the_session_goes_on(self):
        key = self.saved(secret=self.SECRET).session_key
        tamper(self.engine, key, flip_byte(5))
        self.client.cookies[settings.SESSION_COOKIE_NAME] = key
        response = self.client.get("/write/")
        assert response.content == b"visits=1"
        assert response.cookies[settings.SESSION_COOKIE_NAME].value == key
        with self.assertLogs(SUSPICIOUS, "WARNING"):
            assert self.store(key).get("secret") is None


class SignedCookiesTamperingTests(TamperingChecks, TestCase):
    engine = ENGINES["signed_cookies"]

    def test_a_cookie_signed_in_the_future_is_no_session_logged_once(self):
        with freeze_time(timezone.now() + timedelta(hours=1)):
            cookie = self.saved(secret=self.SECRET).session_key
        self.assert_no_session_logged_once(cookie, cookie, "signed in the future")


# Round trips of random data (hypothesis), on every engine --------------------------------


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
session_keys = st.text(max_size=12).filter(
    lambda key: key != EXPIRY_KEY and not key.startswith(RESERVED_KEY_PREFIX)
)
session_data = st.dictionaries(session_keys, json_values, max_size=6)


class RoundTripPropertyChecks(EngineTestMixin):
    """Property (b), for one engine, through the sync API and its async twins. Set ``engine``."""

    def save(self, session: Any, call: Calls) -> None:
        try:
            call(session, "save")
        except SessionTooLarge:
            # Only a cookie can be too small for a small session (4 kB, signed, base64).
            if not self.engine.server_side:
                reject()
            raise

    def loaded(self, session: Any, call: Calls) -> dict[str, Any]:
        return dict(call(self.store(session.session_key), "items"))

    def what_is_saved_is_what_loads(
        self, call: Calls, first: dict[str, Any], second: dict[str, Any], data: Any
    ) -> None:
        session = self.store()
        call(session, "update", first)
        self.save(session, call)
        assert self.loaded(session, call) == first

        session = self.store(session.session_key)
        dropped = data.draw(st.sets(st.sampled_from(sorted(first))) if first else st.just(set()))
        for key in dropped:
            call(session, "pop", key)
        call(session, "update", second)
        self.save(session, call)
        expected = {key: value for key, value in first.items() if key not in dropped}
        expected.update(second)
        assert self.loaded(session, call) == expected

    # Hypothesis runs each example in a transaction of its own only for a method it
    # decorates: the two modes are two such methods, not one generated pair.
    @per_engine
    @given(first=session_data, second=session_data, data=st.data())
    def test_what_is_saved_is_what_loads(self, first, second, data):
        self.what_is_saved_is_what_loads(SYNC, first, second, data)

    @per_engine
    @given(first=session_data, second=session_data, data=st.data())
    def test_async_what_is_saved_is_what_loads(self, first, second, data):
        self.what_is_saved_is_what_loads(Calls("async"), first, second, data)


engine_matrix(
    globals(),
    "RoundTripPropertyTests",
    (RoundTripPropertyChecks, hypothesis_django.TestCase),
    SHIPPED,
)


# The modules whose checks run on every engine sessionplus ships.
HARDENING_SUITES = (
    "tests.backends.test_base",
    "tests.backends.test_data_rule",
    "tests.backends.test_expiry",
    "tests.middleware.test_cookies",
)


class EngineCoverageTests(SimpleTestCase):
    """Every engine sessionplus ships runs every hardening suite."""

    def test_every_engine_module_is_in_the_engine_list(self):
        modules = {
            info.name
            for info in pkgutil.iter_modules(sessionplus.backends.__path__)
            if hasattr(import_module(f"sessionplus.backends.{info.name}"), "SessionStore")
        }
        assert modules == {ENGINES[name].module.rpartition(".")[2] for name in SHIPPED}

    def test_every_engine_runs_every_hardening_suite(self):
        for module in HARDENING_SUITES:
            classes = vars(import_module(module)).values()
            covered = {
                cls.engine.name
                for cls in classes
                if isinstance(cls, type) and issubclass(cls, TestCase) and hasattr(cls, "engine")
            }
            assert covered == set(SHIPPED), module
