"""
What sessionplus's SessionMiddleware does beyond Django's, on sessionplus engines: timeouts,
rolling expiry by touch, metadata capture, binding, and the async path's store calls.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import TestCase, TransactionTestCase, override_settings
from django.utils import timezone
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from sessionplus.signals import session_created, session_ended
from tests.support import memory_engine
from tests.support.counting import count_storage
from tests.support.engines import ENGINES, engine_matrix
from tests.support.middleware_support import (
    COOKIE,
    AsyncRequests,
    MiddlewareTestMixin,
    SyncRequests,
    received,
)

NEW_COOKIE = "__Host-sessionid"
# The recommended cookie name, deployed with the transition setting.
RENAMED = {
    "SESSION_COOKIE_NAME": NEW_COOKIE,
    "SESSION_COOKIE_SECURE": True,
    "SESSIONPLUS_PREVIOUS_COOKIE_NAME": COOKIE,
}
UA_A = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
UA_B = "Mozilla/5.0 (Macintosh) Safari/17.0"


@contextmanager
def clock() -> Iterator[FrozenDateTimeFactory]:
    """Freeze Python's clock at a whole second of the present; tests move it with tick()."""
    start = timezone.now().replace(microsecond=0)
    with freeze_time(start, real_asyncio=True) as frozen:
        yield frozen


class PlusContract(MiddlewareTestMixin):
    """
    sessionplus-only behaviour every sessionplus engine supports, signed cookies included.

    Mix into a TestCase with a sessionplus engine and a request mode. Keys are read from
    the browser where an engine (signed cookies) re-signs the cookie on every write.
    """

    def log_in(self, **kwargs) -> str:
        self.create_user("ada")
        self.get("/login/", {"username": "ada"}, **kwargs)
        return self.session_key()

    def whoami(self, **kwargs) -> str:
        return self.get("/whoami/", **kwargs).content.decode()

    def last_activity(self) -> datetime | None:
        return self.stored_session(self.session_key()).metadata.last_activity

    # A session growing past its limit --------------------------------------------------

    # Random text does not compress: two items pass both SESSIONPLUS_MAX_SIZE below and
    # the signed_cookies engine's cookie limit (4093 bytes), one does not.
    @override_settings(SESSIONPLUS_MAX_SIZE=3000)
    def test_a_session_growing_past_its_limit_gets_413_and_keeps_what_was_stored(self):
        first = secrets.token_urlsafe(1500)
        assert self.get("/add/", {"key": "a", "value": first}).status_code == 200
        key = self.session_key()
        with self.assertLogs("sessionplus.middleware", "WARNING") as logs:
            response = self.get("/add/", {"key": "b", "value": secrets.token_urlsafe(1500)})
        assert response.status_code == 413
        assert b"Too much to keep" in response.content
        assert COOKIE not in response.cookies
        assert [record.levelname for record in logs.records] == ["WARNING"]
        assert logs.records[0].getMessage().startswith("Session not saved: /add/ (")
        assert dict(self.stored_session(key).items()) == {"a": first}
        # The session goes on from what was stored.
        assert self.get("/add/", {"key": "c", "value": "small"}).status_code == 200
        assert dict(self.stored_session(self.session_key()).items()) == {
            "a": first,
            "c": "small",
        }

    @override_settings(SESSIONPLUS_MAX_SIZE=3000)
    def test_a_client_preferring_json_gets_the_413_as_json(self):
        self.get("/add/", {"key": "a", "value": secrets.token_urlsafe(1500)})
        with self.assertLogs("sessionplus.middleware", "WARNING"):
            response = self.get(
                "/add/",
                {"key": "b", "value": secrets.token_urlsafe(1500)},
                headers={"Accept": "application/json"},
            )
        assert response.status_code == 413
        assert response.json() == {"error": "session_too_large"}

    # Idle and absolute timeouts ------------------------------------------------------

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_an_idle_session_ends_on_the_next_request_which_goes_on_anonymous(self):
        with clock() as frozen:
            self.log_in()
            frozen.tick(599)
            assert self.whoami() == "ada"
            frozen.tick(599)
            assert self.whoami() == "ada"  # each request counted as activity
            frozen.tick(600)
            key = self.session_key()
            with received(session_ended) as ended:
                response = self.get("/whoami/")
        assert response.content == b"anonymous"
        assert response.cookies[COOKIE]["max-age"] == 0
        assert not self.stored(key)
        assert [(signal["session_key"], signal["reason"]) for signal in ended] == [(key, "idle")]
        assert ended[0]["request"].path == "/whoami/"

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_the_view_never_sees_the_data_of_an_idle_session(self):
        with clock() as frozen:
            self.get("/write/", {"value": "secret"})
            frozen.tick(600)
            assert self.get("/read/").content == b"-"

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_an_async_view_never_sees_the_data_of_an_idle_session(self):
        with clock() as frozen:
            self.get("/async/write/", {"value": "secret"})
            frozen.tick(599)
            assert self.get("/async/read/").content == b"secret"
            frozen.tick(600)
            key = self.session_key()
            with received(session_ended) as ended:
                response = self.get("/async/read/")
        assert response.content == b"-"
        assert response.cookies[COOKIE]["max-age"] == 0
        assert [(signal["session_key"], signal["reason"]) for signal in ended] == [(key, "idle")]

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600, SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_with_a_touch_interval_activity_is_recorded_once_per_interval(self):
        with clock() as frozen:
            self.log_in()
            frozen.tick(200)
            assert self.whoami() == "ada"  # not touched: 200 s < 300 s
            frozen.tick(200)
            assert self.whoami() == "ada"  # touched: last activity now
            frozen.tick(599)
            assert self.whoami() == "ada"
            frozen.tick(600)
            key = self.session_key()
            assert self.whoami() == "anonymous"
        assert not self.stored(key)

    @override_settings(SESSIONPLUS_ABSOLUTE_TIMEOUT=3600)
    def test_the_absolute_timeout_ends_even_an_active_session(self):
        with clock() as frozen:
            self.log_in()
            for _ in range(3):
                frozen.tick(1199)
                self.get("/write/", {"value": "busy"})
                assert self.whoami() == "ada"
            frozen.tick(3)
            key = self.session_key()
            with received(session_ended) as ended:
                assert self.whoami() == "anonymous"
        assert [signal["reason"] for signal in ended] == ["absolute"]
        assert not self.stored(key)

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_a_new_session_follows_an_ended_one(self):
        with clock() as frozen:
            old_key = self.get("/write/").cookies[COOKIE].value
            frozen.tick(601)
            with received(session_created) as created:
                new_key = self.get("/write/", {"value": "fresh"}).cookies[COOKIE].value
            assert self.get("/read/").content == b"fresh"
        assert new_key != old_key
        assert [signal["session_key"] for signal in created] == [new_key]

    # Rolling expiry by touch ----------------------------------------------------------

    @override_settings(SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_an_unmodified_session_is_touched_once_per_interval_with_its_cookie(self):
        with clock() as frozen:
            self.get("/write/", {"value": "kept"})
            written = self.last_activity()
            frozen.tick(299)
            assert COOKIE not in self.get("/read/").cookies
            assert self.last_activity() == written
            frozen.tick(1)
            response = self.get("/read/")
            assert response.content == b"kept"
            assert response.cookies[COOKIE]["max-age"] == settings.SESSION_COOKIE_AGE
            assert self.last_activity() == timezone.now()
            frozen.tick(1)
            assert COOKIE not in self.get("/read/").cookies

    @override_settings(SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_a_request_that_never_touches_the_session_is_never_touched(self):
        with clock() as frozen:
            self.get("/write/")
            written = self.last_activity()
            frozen.tick(3600)
            assert COOKIE not in self.get("/nothing/").cookies
            assert self.last_activity() == written


class PythonClockExpiryContract:
    """Expiry an engine judges by Python's clock (all but Redis, which uses its own)."""

    @override_settings(SESSION_COOKIE_AGE=1000, SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_touch_keeps_a_session_alive_past_its_first_expiry(self):
        with clock() as frozen:
            self.get("/write/", {"value": "rolling"})
            frozen.tick(900)
            assert self.get("/read/").content == b"rolling"
            frozen.tick(900)  # 1800 s after the write, 900 s after the touch
            assert self.get("/read/").content == b"rolling"

    @override_settings(SESSION_COOKIE_AGE=1000)
    def test_without_a_touch_interval_reading_does_not_extend_the_session(self):
        with clock() as frozen:
            self.get("/write/", {"value": "fixed"})
            written = self.last_activity()
            frozen.tick(900)
            assert self.get("/read/").content == b"fixed"
            assert self.last_activity() == written
            frozen.tick(900)
            assert self.get("/read/").content == b"-"


class ClientMetadataContract:
    """Metadata capture and binding, on engines that record IP and user agent."""

    def test_metadata_records_ip_user_agent_user_and_activity(self):
        with clock():
            key = self.log_in(ip="192.0.2.10", headers={"User-Agent": UA_A})
            now = timezone.now()
        metadata = self.stored_session(key).metadata
        assert metadata.ip == "192.0.2.10"
        assert metadata.user_agent == UA_A
        assert metadata.user_id == str(get_user_model().objects.get(username="ada").pk)
        assert metadata.created_at == now
        assert metadata.last_activity == now

    @override_settings(SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_metadata_is_written_only_with_a_save_or_touch(self):
        with clock() as frozen:
            self.get("/write/", ip="192.0.2.10", headers={"User-Agent": UA_A})
            key = self.session_key()
            frozen.tick(10)
            self.get("/read/", ip="198.51.100.20", headers={"User-Agent": UA_B})
            metadata = self.stored_session(key).metadata
            assert (metadata.ip, metadata.user_agent) == ("192.0.2.10", UA_A)
            frozen.tick(300)
            self.get("/read/", ip="198.51.100.20", headers={"User-Agent": UA_B})
            metadata = self.stored_session(key).metadata
            assert (metadata.ip, metadata.user_agent) == ("198.51.100.20", UA_B)

    @override_settings(SESSIONPLUS_TRUSTED_PROXIES=1)
    def test_behind_a_trusted_proxy_the_forwarded_address_is_recorded(self):
        headers = {"X-Forwarded-For": "203.0.113.66, 198.51.100.7"}
        key = self.get("/write/", ip="10.0.0.1", headers=headers).cookies[COOKIE].value
        assert self.stored_session(key).metadata.ip == "198.51.100.7"

    def test_without_trusted_proxies_forwarded_for_is_ignored(self):
        headers = {"X-Forwarded-For": "203.0.113.66"}
        key = self.get("/write/", ip="10.0.0.1", headers=headers).cookies[COOKIE].value
        assert self.stored_session(key).metadata.ip == "10.0.0.1"

    @override_settings(SESSIONPLUS_BIND=("user_agent",))
    def test_a_session_bound_to_its_user_agent_ends_when_it_changes(self):
        key = self.log_in(headers={"User-Agent": UA_A})
        assert self.whoami(headers={"User-Agent": UA_A}) == "ada"
        with (
            received(session_ended) as ended,
            self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs,
        ):
            response = self.get("/whoami/", headers={"User-Agent": UA_B})
        assert response.content == b"anonymous"
        assert response.cookies[COOKIE]["max-age"] == 0
        assert [(signal["session_key"], signal["reason"]) for signal in ended] == [(key, "hijack")]
        assert "user agent changed" in logs.output[0]
        assert key not in logs.output[0]
        assert not self.stored(key)

    def test_without_binding_a_changed_user_agent_keeps_the_session(self):
        self.log_in(headers={"User-Agent": UA_A})
        assert self.whoami(headers={"User-Agent": UA_B}) == "ada"

    @override_settings(SESSIONPLUS_BIND=("ip_network",))
    def test_a_session_bound_to_its_ipv4_network_survives_moves_inside_the_24(self):
        key = self.log_in(ip="192.0.2.10")
        assert self.whoami(ip="192.0.2.200") == "ada"
        with received(session_ended) as ended:
            assert self.whoami(ip="192.0.3.10") == "anonymous"
        assert [signal["reason"] for signal in ended] == ["hijack"]
        assert not self.stored(key)

    @override_settings(SESSIONPLUS_BIND=("ip_network",))
    def test_a_session_bound_to_its_ipv6_network_survives_moves_inside_the_64(self):
        self.log_in(ip="2001:db8:1:2::10")
        assert self.whoami(ip="2001:db8:1:2:ffff::1") == "ada"
        assert self.whoami(ip="2001:db8:1:3::10") == "anonymous"

    @override_settings(SESSIONPLUS_BIND=("ip_network",))
    def test_a_session_bound_from_an_ipv4_mapped_address_ends_in_another_ipv4_network(self):
        # A dual-stack server sees IPv4 clients as ::ffff:a.b.c.d.
        key = self.log_in(ip="::ffff:10.0.0.1")
        assert self.whoami(ip="::ffff:10.0.0.200") == "ada"
        assert self.whoami(ip="10.0.0.7") == "ada"
        with received(session_ended) as ended:
            assert self.whoami(ip="::ffff:192.0.2.9") == "anonymous"
        assert [signal["reason"] for signal in ended] == ["hijack"]
        assert not self.stored(key)

    @override_settings(SESSIONPLUS_BIND=("user_agent",))
    def test_a_session_opened_without_a_user_agent_ends_when_one_appears(self):
        key = self.log_in()
        assert self.stored_session(key).metadata.user_agent == ""
        assert self.whoami() == "ada"
        with received(session_ended) as ended:
            assert self.whoami(headers={"User-Agent": UA_A}) == "anonymous"
        assert [signal["reason"] for signal in ended] == ["hijack"]
        assert not self.stored(key)

    @override_settings(SESSIONPLUS_BIND=("user_agent",))
    def test_a_user_agent_is_stored_without_control_characters_and_cut(self):
        agent = "Browser/1.0\x00\x1b[31m\x7f" + "x" * 600
        key = self.log_in(headers={"User-Agent": agent})
        stored = self.stored_session(key).metadata.user_agent
        assert stored == ("Browser/1.0[31m" + "x" * 600)[:512]
        assert self.whoami(headers={"User-Agent": agent}) == "ada"
        assert self.whoami(headers={"User-Agent": UA_A}) == "anonymous"

    @override_settings(SESSIONPLUS_BIND=("user_agent", "ip_network"))
    def test_both_bindings_are_logged_together(self):
        self.log_in(ip="192.0.2.10", headers={"User-Agent": UA_A})
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            assert self.whoami(ip="203.0.113.1", headers={"User-Agent": UA_B}) == "anonymous"
        assert "user agent and IP network changed" in logs.output[0]


class ConcurrentWriteContract:
    """A touch on the response of a slow read never undoes a concurrent request's write."""

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600, SESSIONPLUS_TOUCH_INTERVAL=0)
    def test_a_touch_keeps_what_a_concurrent_request_wrote(self):
        self.get("/write/", {"value": "before"})
        key = self.session_key()
        assert self.get("/read-during-concurrent-write/").content == b"before"
        assert self.session_key() == key
        assert self.get("/read/").content == b"changed meanwhile"


class ServerSidePlusContract(
    ConcurrentWriteContract, ClientMetadataContract, PythonClockExpiryContract, PlusContract
):
    pass


class RedisPlusContract(ConcurrentWriteContract, ClientMetadataContract, PlusContract):
    """Redis expires keys by its own clock: the touch is seen in the key's TTL."""

    @override_settings(SESSION_COOKIE_AGE=1000, SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_touch_renews_the_keys_ttl(self):
        from django_redis import get_redis_connection

        redis = get_redis_connection(settings.SESSIONPLUS_REDIS_ALIAS)
        with clock() as frozen:
            key = self.get("/write/").cookies[COOKIE].value
            redis_key = self.store_class.redis_key(key)
            redis.pexpire(redis_key, 100_000)  # as if 900 s had passed on the server
            frozen.tick(900)
            self.get("/read/")
        assert 990_000 < redis.pttl(redis_key) <= 1_000_000


MODES = (SyncRequests, AsyncRequests)
SERVER_SIDE = ["memory", "cache", "db", "cached_db", "file", "project_model"]
engine_matrix(globals(), "PlusTests", (ServerSidePlusContract, TestCase), SERVER_SIDE, MODES)
engine_matrix(globals(), "PlusTests", (RedisPlusContract, TestCase), ["redis"], MODES)


class SignedCookiesPlusContract(PythonClockExpiryContract, PlusContract):
    """The cookie keeps creation and signing time only: no IP or user agent to bind to."""

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_a_replayed_idle_cookie_stays_ended(self):
        with clock() as frozen:
            self.get("/write/", {"value": "secret"})
            stolen = self.session_key()
            frozen.tick(600)
            assert self.get("/read/").content == b"-"
            self.set_cookie(stolen)
            assert self.get("/read/").content == b"-"


engine_matrix(
    globals(), "PlusTests", (SignedCookiesPlusContract, TestCase), ["signed_cookies"], MODES
)


class CookieRenameContract(MiddlewareTestMixin):
    """
    ``SESSION_COOKIE_NAME`` changed to the recommended ``__Host-`` name with
    ``SESSIONPLUS_PREVIOUS_COOKIE_NAME`` naming the old one: nobody is signed out.
    """

    def secure_get(self, path: str, data: dict | None = None) -> HttpResponse:
        # The __Host- prefix needs a Secure cookie, so the requests are HTTPS.
        if self.mode == "async":
            return async_to_sync(self.browser.get)(path, data, secure=True)
        return self.browser.get(path, data, secure=True)

    def secure_whoami(self) -> HttpResponse:
        return self.secure_get("/whoami/")

    def test_a_user_signed_in_under_the_previous_cookie_name_stays_signed_in(self):
        self.create_user("ada")
        self.get("/login/", {"username": "ada"})
        with override_settings(**RENAMED):
            with received(session_created) as created:
                response = self.secure_whoami()
            assert response.content == b"ada"
            reissued = response.cookies[NEW_COOKIE]
            assert (reissued["secure"], reissued["path"], reissued["httponly"]) == (True, "/", True)
            assert reissued["max-age"] == settings.SESSION_COOKIE_AGE
            assert response.cookies[COOKIE]["max-age"] == 0  # the old cookie is deleted
            assert response.cookies[COOKIE]["path"] == "/"
            assert created == []  # the same session, under another name

            self.browser.cookies.pop(COOKIE)  # as the browser drops the deleted cookie
            response = self.secure_whoami()  # signed in by the re-issued cookie alone
            assert response.content == b"ada"
            assert response.cookies == {}

    def test_a_dead_session_under_the_previous_cookie_name_loses_that_cookie_only(self):
        self.set_cookie("k" * 32)
        with override_settings(**RENAMED):
            response = self.secure_whoami()
        assert response.content == b"anonymous"
        assert NEW_COOKIE not in response.cookies
        assert response.cookies[COOKIE]["max-age"] == 0

    def test_a_visitor_without_either_cookie_gets_the_new_one_only(self):
        with override_settings(**RENAMED):
            self.create_user("ada")
            response = self.secure_get("/login/", {"username": "ada"})
        assert response.content == b"logged in"
        assert NEW_COOKIE in response.cookies
        assert COOKIE not in response.cookies

    def test_renaming_the_cookie_without_the_setting_signs_everyone_out(self):
        self.create_user("ada")
        self.get("/login/", {"username": "ada"})
        with override_settings(SESSION_COOKIE_NAME=NEW_COOKIE, SESSION_COOKIE_SECURE=True):
            response = self.secure_whoami()
        assert response.content == b"anonymous"
        assert response.cookies == {}


engine_matrix(globals(), "CookieRenameTests", (CookieRenameContract, TestCase), ["db"], MODES)
# Django's own engine behind sessionplus's middleware too: the rename works the same.
engine_matrix(
    globals(),
    "CookieRenameTests",
    (CookieRenameContract, TestCase),
    ["cached_db", "redis", "signed_cookies", "django_db"],
    [SyncRequests],
)


class PlusFileCookieRenameTests(MiddlewareTestMixin, SyncRequests, TestCase):
    engine = ENGINES["file"]

    def test_file_sessions_are_named_after_the_cookie_so_a_rename_signs_everyone_out(self):
        # As in Django, each file's name starts with SESSION_COOKIE_NAME (README says so).
        self.create_user("ada")
        self.get("/login/", {"username": "ada"})
        with override_settings(**RENAMED):
            response = self.browser.get("/whoami/", secure=True)
        assert response.content == b"anonymous"
        assert NEW_COOKIE not in response.cookies


class StoreCallsTests(MiddlewareTestMixin, SyncRequests, TestCase):
    """Which store methods each path runs, counted by the in-process engine."""

    engine = ENGINES["memory"]

    def calls_for(self, requests: SyncRequests | AsyncRequests, path: str) -> list[str]:
        client = requests.make_client()
        requests.send(client, "get", "/write/", None, None, {})
        memory_engine.CALLS.clear()
        requests.send(client, "get", path, None, None, {})
        return list(memory_engine.CALLS)

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_the_async_path_awaits_the_stores_async_methods(self):
        # A touch reads the record again and rewrites its header.
        assert self.calls_for(AsyncRequests(), "/async/read/") == [
            "aread",
            "atouch",
            "aread",
            "awrite",
        ]
        assert self.calls_for(AsyncRequests(), "/async/write/") == ["aread", "awrite"]

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_the_sync_path_calls_the_stores_sync_methods(self):
        assert self.calls_for(SyncRequests(), "/read/") == ["read", "touch", "read", "write"]
        assert self.calls_for(SyncRequests(), "/write/") == ["read", "write"]

    def test_a_sync_view_under_asgi_loads_in_its_thread_and_saves_async(self):
        assert self.calls_for(AsyncRequests(), "/write/") == ["read", "awrite"]

    def test_an_unmodified_session_costs_one_read_and_no_write(self):
        assert self.calls_for(SyncRequests(), "/read/") == ["read"]
        assert self.calls_for(AsyncRequests(), "/async/read/") == ["aread"]

    def test_a_request_that_never_touches_the_session_costs_nothing(self):
        assert self.calls_for(SyncRequests(), "/nothing/") == []
        assert self.calls_for(AsyncRequests(), "/nothing/") == []


class TouchBudgetTests(MiddlewareTestMixin, SyncRequests, TestCase):
    """100 requests inside one touch interval, against Django's SESSION_SAVE_EVERY_REQUEST."""

    engine = ENGINES["memory"]
    requests = 100

    def read_for_one_interval(self, frozen: FrozenDateTimeFactory) -> int:
        """Make the requests 2 s apart inside one interval; return the cookies sent."""
        cookies_sent = 0
        for _ in range(self.requests):
            cookies_sent += COOKIE in self.get("/read/").cookies
            frozen.tick(2)
        return cookies_sent

    @override_settings(SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_100_requests_in_one_interval_cost_one_touch(self):
        with clock() as frozen:
            self.get("/write/", {"value": "x"})
            frozen.tick(300)
            memory_engine.CALLS.clear()
            cookies_sent = self.read_for_one_interval(frozen)
        # One read per request, and the touch's own read of the record it rewrites.
        assert memory_engine.CALLS.count("read") == self.requests + 1
        assert memory_engine.CALLS.count("touch") == 1
        assert memory_engine.CALLS.count("write") == 1  # the touch's header rewrite
        assert cookies_sent == 1

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_djangos_db_engine_with_save_every_request_writes_100_times(self):
        with self.settings(SESSION_ENGINE=ENGINES["django_db"].module):
            self.browser = self.make_client()
            self.get("/write/", {"value": "x"})
            with count_storage() as count:
                for _ in range(self.requests):
                    self.get("/read/")
        assert count.sql.count("UPDATE") == self.requests


@pytest.mark.usefixtures("redis_db")
class EngineTouchBudgetTests(MiddlewareTestMixin, SyncRequests, TestCase):
    """The same 100 requests on sessionplus's engines, every storage operation counted."""

    engine = ENGINES["memory"]
    requests = TouchBudgetTests.requests

    @override_settings(SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_on_every_server_side_engine_one_request_in_100_writes(self):
        for name in ("db", "cached_db", "cache", "file", "redis"):
            engine = ENGINES[name]
            with self.subTest(engine=name), self.settings(SESSION_ENGINE=engine.module):
                self.browser = self.make_client()
                writes = []
                with clock() as frozen:
                    self.get("/write/", {"value": "x"})
                    frozen.tick(300)
                    for _ in range(self.requests):
                        with count_storage(redis=engine.on_redis) as count:
                            assert self.get("/read/").content == b"x"
                        writes.append(count.total_writes)
                        frozen.tick(2)
                # The first request is due a touch (one engine operation, whatever
                # storage calls it takes); the other 99 only read.
                assert writes[0] > 0
                assert writes[1:] == [0] * (self.requests - 1)


class SqlTouchBudgetTests(MiddlewareTestMixin, SyncRequests, TransactionTestCase):
    """
    The 100 requests in SQL statements, on a connection in autocommit mode (where
    transaction control counts): sessionplus's db engine against Django's.
    """

    engine = ENGINES["db"]
    requests = TouchBudgetTests.requests

    def statements(self, frozen: FrozenDateTimeFactory) -> Counter[str]:
        with count_storage() as count:
            for _ in range(self.requests):
                assert self.get("/read/").content == b"x"
                frozen.tick(2)
        return Counter(count.sql)

    @override_settings(SESSIONPLUS_TOUCH_INTERVAL=300)
    def test_sessionplus_db_engine_with_a_touch_interval_runs_101_statements(self):
        with clock() as frozen:
            self.get("/write/", {"value": "x"})
            frozen.tick(300)
            statements = self.statements(frozen)
        assert statements == {"SELECT": self.requests, "UPDATE": 1}

    @override_settings(SESSION_ENGINE=ENGINES["django_db"].module, SESSION_SAVE_EVERY_REQUEST=True)
    def test_djangos_db_engine_with_save_every_request_runs_400(self):
        with clock() as frozen:
            self.get("/write/", {"value": "x"})
            statements = self.statements(frozen)
        n = self.requests
        # Django's db engine saves inside transaction.atomic(): BEGIN, UPDATE, COMMIT.
        assert statements == {"SELECT": n, "BEGIN": n, "UPDATE": n, "COMMIT": n}
