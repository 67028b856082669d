"""
The data rule, corrupt expiries, tampering and logout, the same on every engine.

Cookies are in ``test_hardening_cookies``, hypothesis in ``test_hardening_properties``.
"""

from __future__ import annotations

import math
import pkgutil
import re
from datetime import timedelta
from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.core.cache import caches
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import timezone
from freezegun import freeze_time

import sessionplus.backends
from sessionplus.exceptions import SessionTooLarge
from sessionplus.identifiers import log_id
from tests.support.cuttable_proxy import CuttableProxy
from tests.support.engines import (
    ENGINES,
    SHIPPED,
    EngineTestMixin,
    engine_matrix,
    flip_byte,
    planted_session,
    read_payload,
    tamper,
)
from tests.support.services import redis_url

SUSPICIOUS = "django.security.SuspiciousSession"
UNSERIALIZABLE_CART = re.escape(
    "The session value for key 'cart' cannot be serialized by "
    "django.contrib.sessions.serializers.JSONSerializer: "
    "Object of type object is not JSON serializable"
)
TOO_LARGE = r"The session data serializes to \d+ bytes, more than SESSIONPLUS_MAX_SIZE \(1000\)\."
TOO_DEEP = "The session value for key 'tree' nests too deeply for "
# Deeper than any session a site keeps, and far too deep for the JSON serializer.
TOO_DEEP_NESTING = 100_000

# What a stored ``_session_expiry`` may hold that Django's expiry maths would choke on.
CORRUPT_EXPIRIES = {
    "text": "garbage",
    "bool": True,
    "NaN": math.nan,
    "infinity": math.inf,
    "far future": 10**30,
    "naive date": "2030-01-01T00:00:00",
    "year 9999": "9999-12-31T23:59:59+00:00",
    "list": [],
    "dict": {"a": 1},
}


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


class DataRuleChecks(EngineTestMixin):
    """A refused value raises before anything is written, with the same error everywhere."""

    def test_a_bad_value_is_refused_at_save_and_the_stored_session_kept(self):
        session = self.saved(a=1)
        session = self.store(session.session_key)
        session["a"] = 2
        session["cart"] = object()
        with pytest.raises(TypeError, match=UNSERIALIZABLE_CART):
            session.save()
        assert self.stored(session) == {"a": 1}

    def test_keys_every_engine_could_not_store_alike_are_refused_at_save(self):
        # Found by hypothesis: signed cookies lost a "_sessionplus" key, Redis failed to
        # save a key with a lone surrogate. Now every engine refuses both before writing.
        session = self.saved(a=1)
        for key, problem in (("_sessionplus", "reserved"), ("\udfff", "not valid Unicode text")):
            session = self.store(session.session_key)
            session["a"] = 2
            session[key] = None
            with pytest.raises(ValueError, match=problem):
                session.save()
            assert self.stored(session) == {"a": 1}
        session = self.store(session.session_key)
        session["snow ☃"] = "\udfff"  # values are serialized, so any str is fine there
        session.save()
        assert self.stored(session) == {"a": 1, "snow ☃": "\udfff"}

    def test_a_bad_value_put_in_place_is_refused_at_save_and_nothing_is_written(self):
        session = self.saved(a=1, cart=[])
        session = self.store(session.session_key)
        session["cart"].append(object())
        session["a"] = 2
        with pytest.raises(TypeError, match=UNSERIALIZABLE_CART):
            session.save()
        assert self.stored(session) == {"a": 1, "cart": []}

    async def test_async_a_bad_value_put_in_place_is_refused_at_save(self):
        session = await self.asaved(a=1, cart=[])
        session = self.store(session.session_key)
        (await session.aget("cart")).append(object())
        session.modified = True
        with pytest.raises(TypeError, match=UNSERIALIZABLE_CART):
            await session.asave()
        assert dict(await self.store(session.session_key).aitems()) == {"a": 1, "cart": []}

    def test_a_new_session_with_a_bad_value_creates_nothing(self):
        session = self.store()
        session["cart"] = []
        session["cart"].append(object())
        with pytest.raises(TypeError, match=UNSERIALIZABLE_CART):
            session.save()
        if self.engine.server_side:
            assert self.store().exists(session.session_key) is False

    @override_settings(SESSIONPLUS_MAX_SIZE=1000)
    def test_a_session_grown_past_the_max_size_is_refused_and_the_stored_one_kept(self):
        session = self.saved(a="x" * 500)
        session = self.store(session.session_key)
        session["b"] = "y" * 600
        with pytest.raises(SessionTooLarge, match=TOO_LARGE):
            session.save()
        assert self.stored(session) == {"a": "x" * 500}

    def test_nesting_grown_in_place_past_the_limit_is_refused_and_the_stored_one_kept(self):
        session = self.saved(tree=[])
        session = self.store(session.session_key)
        session["tree"].append(nested(TOO_DEEP_NESTING))
        session.modified = True
        with pytest.raises(SessionTooLarge, match=TOO_DEEP):
            session.save()
        assert self.stored(session) == {"tree": []}

    # Bytes of its own an engine puts in the serialized payload, counted against the limit.
    own_payload_bytes = 0

    def test_a_session_at_the_limits_is_stored_and_loads_back(self):
        limit = 4096
        room = limit - self.own_payload_bytes
        with override_settings(SESSIONPLUS_MAX_SIZE=limit):
            probe = self.store()
            deepest = nested(100)
            filler = "x" * (room - len(probe.serialize_data({"a": "", "tree": deepest})))
            session = self.saved(a=filler, tree=deepest)
            assert len(session.serialize_data(dict(session.items()))) == room
            assert self.stored(session) == {"a": filler, "tree": deepest}
            session["a"] += "x" * (self.own_payload_bytes + 1)
            with pytest.raises(SessionTooLarge):
                session.save()


class CorruptExpiryChecks(EngineTestMixin):
    """A stored ``_session_expiry`` that cannot be used means no session, never a 500."""

    def test_a_corrupt_stored_expiry_is_no_session_and_logged_once(self):
        for name, expiry in CORRUPT_EXPIRIES.items():
            key = planted_session(self.engine, {"_session_expiry": expiry, "a": 1})
            with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
                session = self.store(key)
                assert dict(session.items()) == {}, name
            assert session.session_key is None, name
            assert len(logs.records) == 1, (name, logs.output)
            assert "invalid expiry" in logs.output[0]
            assert key not in logs.output[0]

    async def test_async_a_corrupt_stored_expiry_is_no_session(self):
        plant = sync_to_async(planted_session)
        key = await plant(self.engine, {"_session_expiry": "garbage", "a": 1})
        with self.assertLogs(SUSPICIOUS, "WARNING"):
            session = self.store(key)
            assert dict(await session.aitems()) == {}
        assert session.session_key is None

    def test_a_corrupt_stored_expiry_gets_an_anonymous_response_not_a_500(self):
        for name, expiry in CORRUPT_EXPIRIES.items():
            key = planted_session(self.engine, {"_session_expiry": expiry, "a": 1})
            self.client.cookies[settings.SESSION_COOKIE_NAME] = key
            with self.assertLogs(SUSPICIOUS, "WARNING"):
                response = self.client.get("/read/")
            assert response.status_code == 200, name
            assert response.content == b"authenticated=False keys=", name
            self.client.cookies[settings.SESSION_COOKIE_NAME] = key
            with self.assertLogs(SUSPICIOUS, "WARNING"):
                response = self.client.get("/write/")
            assert response.content == b"visits=1", name
            assert response.cookies[settings.SESSION_COOKIE_NAME].value != key, name

    def test_a_valid_stored_expiry_still_loads(self):
        key = planted_session(self.engine, {"_session_expiry": 600, "a": 1})
        session = self.store(key)
        assert session["a"] == 1
        assert session.get_expiry_age() == 600


class TamperingChecks(EngineTestMixin):
    """Stored data altered outside the app is no session, logged once with the key hashed."""

    SECRET = "the-secret-value"

    def assert_no_session_logged_once(self, presented: str, original: str, what: object) -> None:
        payload = read_payload(self.engine, original) if presented == original else presented
        with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
            session = self.store(presented)
            assert dict(session.items()) == {}, what
        assert session.session_key is None, what
        assert len(logs.records) == 1, (what, logs.output)
        output = logs.output[0]
        assert log_id(presented) in output, what
        assert presented not in output, what
        assert original not in output, what
        assert payload not in output, what
        assert self.SECRET not in output, what

    def test_a_flipped_byte_in_the_stored_data_is_no_session_logged_once(self):
        length = len(read_payload(self.engine, self.saved(secret=self.SECRET).session_key))
        for position in (0, 1, length // 3, length // 2, length - 2, length - 1):
            key = self.saved(secret=self.SECRET).session_key
            presented = tamper(self.engine, key, flip_byte(position))
            self.assert_no_session_logged_once(presented, key, position)

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

    async def test_async_a_flipped_byte_is_no_session(self):
        key = (await self.asaved(secret=self.SECRET)).session_key
        presented = await sync_to_async(tamper)(self.engine, key, flip_byte(3))
        with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
            session = self.store(presented)
            assert dict(await session.aitems()) == {}
        assert len(logs.records) == 1


class LogoutChecks(EngineTestMixin):
    """After logout, the old cookie is worth nothing on engines that keep a record."""

    def setUp(self) -> None:
        super().setUp()
        self.user = User.objects.create_user("alice", password="secret")

    def test_replaying_the_cookie_after_logout_is_anonymous(self):
        self.client.force_login(self.user)
        old = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        assert self.client.get("/read/").content.startswith(b"authenticated=True")
        assert self.client.get("/logout/").status_code == 200
        self.client.cookies.clear()
        self.client.cookies[settings.SESSION_COOKIE_NAME] = old
        response = self.client.get("/read/")
        assert response.content == b"authenticated=False keys="
        assert self.store().exists(old) is False

    async def test_async_replaying_the_cookie_after_logout_is_anonymous(self):
        await self.async_client.aforce_login(self.user)
        old = self.async_client.cookies[settings.SESSION_COOKIE_NAME].value
        assert (await self.async_client.get("/read/")).content.startswith(b"authenticated=True")
        await self.async_client.get("/logout/")
        self.async_client.cookies.clear()
        self.async_client.cookies[settings.SESSION_COOKIE_NAME] = old
        response = await self.async_client.get("/read/")
        assert response.content == b"authenticated=False keys="
        assert await self.store().aexists(old) is False

    def test_replaying_the_cookie_after_logout_cannot_write_into_it(self):
        self.client.force_login(self.user)
        old = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        self.client.get("/logout/")
        self.client.cookies[settings.SESSION_COOKIE_NAME] = old
        response = self.client.get("/write/")
        assert response.cookies[settings.SESSION_COOKIE_NAME].value != old
        assert self.store().exists(old) is False


class ServerSideHardeningChecks(DataRuleChecks, CorruptExpiryChecks, TamperingChecks, LogoutChecks):
    """Everything above, for an engine that keeps a record per session."""


engine_matrix(
    globals(),
    "HardeningTests",
    (ServerSideHardeningChecks, TestCase),
    ["db", "cached_db", "cache", "file"],
)


@pytest.mark.usefixtures("redis_db")
class RedisHardeningTests(ServerSideHardeningChecks, TestCase):
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


class SignedCookiesHardeningTests(DataRuleChecks, CorruptExpiryChecks, TamperingChecks, TestCase):
    engine = ENGINES["signed_cookies"]
    # The cookie carries the session's creation time: ',"_sessionplus":{"created_at":N}'.
    own_payload_bytes = len(',"_sessionplus":{"created_at":1700000000}')

    def test_a_cookie_signed_in_the_future_is_no_session_logged_once(self):
        with freeze_time(timezone.now() + timedelta(hours=1)):
            cookie = self.saved(secret=self.SECRET).session_key
        self.assert_no_session_logged_once(cookie, cookie, "signed in the future")

    def test_replaying_a_cookie_after_logout_works_until_it_expires(self):
        # The documented limit of cookie-held sessions: nothing on the server to revoke.
        user = User.objects.create_user("alice", password="secret")
        self.client.force_login(user)
        old = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        self.client.get("/logout/")
        self.client.cookies[settings.SESSION_COOKIE_NAME] = old
        assert self.client.get("/read/").content.startswith(b"authenticated=True")
        later = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE + 1)
        with freeze_time(later):
            self.client.cookies[settings.SESSION_COOKIE_NAME] = old
            assert self.client.get("/read/").content == b"authenticated=False keys="


@pytest.mark.usefixtures("redis_db")
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
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
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

    def test_a_logout_the_cache_missed_fails_and_the_retry_ends_the_session(self):
        self.client.force_login(self.user)
        old = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        assert self.client.get("/read/").content.startswith(b"authenticated=True")
        assert isinstance(self.entry(old), list)  # cached, so a stale copy could outlive the row

        self.cut_on_logout()
        with self.assertLogs("sessionplus.middleware", "ERROR") as logs:
            response = self.client.get("/logout/")
        self.proxy.restore()
        assert response.status_code == 503
        assert settings.SESSION_COOKIE_NAME not in response.cookies
        assert "Session store unavailable" in logs.output[0]
        assert self.store().model.objects.filter(session_key=old).exists() is True
        assert self.client.get("/read/").content.startswith(b"authenticated=True")

        assert self.client.get("/logout/").status_code == 200
        self.client.cookies.clear()
        self.client.cookies[settings.SESSION_COOKIE_NAME] = old
        response = self.client.get("/read/")
        assert response.content == b"authenticated=False keys="
        response = self.client.get("/write/")
        assert response.cookies[settings.SESSION_COOKIE_NAME].value != old
        assert self.store().exists(old) is False

    async def test_async_a_logout_the_cache_missed_fails_and_the_retry_ends_the_session(self):
        await self.async_client.aforce_login(self.user)
        old = self.async_client.cookies[settings.SESSION_COOKIE_NAME].value
        assert (await self.async_client.get("/read/")).content.startswith(b"authenticated=True")

        self.cut_on_logout()
        with self.assertLogs("sessionplus.middleware", "ERROR"):
            response = await self.async_client.get("/logout/")
        self.proxy.restore()
        assert response.status_code == 503
        assert isinstance(await sync_to_async(self.entry)(old), list)

        assert (await self.async_client.get("/logout/")).status_code == 200
        self.async_client.cookies.clear()
        self.async_client.cookies[settings.SESSION_COOKIE_NAME] = old
        response = await self.async_client.get("/read/")
        assert response.content == b"authenticated=False keys="


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
        for module in ("test_hardening", "test_hardening_cookies", "test_hardening_properties"):
            classes = vars(import_module(f"tests.{module}")).values()
            covered = {
                cls.engine.name
                for cls in classes
                if isinstance(cls, type) and issubclass(cls, TestCase) and hasattr(cls, "engine")
            }
            assert covered == set(SHIPPED), module
