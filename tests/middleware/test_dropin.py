"""
sessionplus's SessionMiddleware as a drop-in: Django's documented behaviour, on sessionplus's
engines and on Django's own, through the sync and the async request path.
"""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.conf import settings
from django.contrib.admin.checks import check_dependencies
from django.contrib.sessions.backends.cache import SessionStore as DjangoCacheStore
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.http.response import ResponseHeaders
from django.test import RequestFactory, SimpleTestCase, TestCase, override_settings
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import http_date
from freezegun import freeze_time

from sessionplus.middleware import SessionMiddleware, _set_or_patch
from sessionplus.signals import session_created, session_ended
from tests import views_middleware
from tests.support import memory_engine
from tests.support.engines import ENGINES, engine_matrix
from tests.support.middleware_support import (
    COOKIE,
    AsyncRequests,
    MiddlewareTestMixin,
    SyncRequests,
    cache_control,
    received,
    vary,
)

SESSION_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
UNKNOWN_KEY = "a" * 32


class DropInContract(MiddlewareTestMixin):
    """
    Django's SessionMiddleware behaviour, for every engine (signed cookies included).

    Mix into a TestCase with an engine and a request mode.
    """

    # Requests that leave the session alone ------------------------------------------

    def test_a_request_that_never_touches_the_session_costs_nothing_and_sends_nothing(self):
        self.get("/write/")
        with self.assertNumQueries(0):
            response = self.get("/nothing/")
        assert COOKIE not in response.cookies
        assert "Vary" not in response.headers
        assert "Cache-Control" not in response.headers

    def test_reading_varies_on_cookie_without_sending_one(self):
        self.get("/write/", {"value": "kept"})
        response = self.get("/read/")
        assert response.content == b"kept"
        assert COOKIE not in response.cookies
        assert vary(response) == ["Cookie"]

    # Writing ---------------------------------------------------------------------------

    def test_writing_sends_the_cookie_with_djangos_default_attributes(self):
        response = self.get("/write/")
        cookie = response.cookies[COOKIE]
        assert cookie.value
        assert cookie["max-age"] == settings.SESSION_COOKIE_AGE
        assert cookie["expires"]
        assert cookie["path"] == "/"
        assert cookie["domain"] == ""
        assert cookie["httponly"] is True
        assert cookie["secure"] == ""
        assert cookie["samesite"] == "Lax"
        assert vary(response) == ["Cookie"]

    def test_the_cookie_expires_a_cookie_age_after_each_response(self):
        for moment in ("2026-03-01 12:00:00", "2026-03-01 12:00:01", "2026-07-09 08:30:59"):
            with freeze_time(moment):
                cookie = self.get("/write/").cookies[COOKIE]
                assert cookie["expires"] == http_date(time.time() + settings.SESSION_COOKIE_AGE)

    @override_settings(
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_AGE=600,
        SESSION_COOKIE_DOMAIN=".example.com",
        SESSION_COOKIE_PATH="/app/",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    def test_cookie_attributes_follow_djangos_settings(self):
        cookie = self.get("/write/").cookies["sid"]
        assert cookie["max-age"] == 600
        assert cookie["domain"] == ".example.com"
        assert cookie["path"] == "/app/"
        assert cookie["secure"] is True
        assert cookie["httponly"] == ""
        assert cookie["samesite"] == "Strict"
        assert COOKIE not in self.get("/write/").cookies

    def test_the_session_is_read_back_on_the_next_request(self):
        self.get("/write/", {"value": "hello"})
        assert self.get("/read/").content == b"hello"
        self.get("/write/", {"value": "again"})
        assert self.get("/read/").content == b"again"

    @override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True)
    def test_expire_at_browser_close_sends_a_browser_session_cookie(self):
        cookie = self.get("/write/").cookies[COOKIE]
        assert cookie["max-age"] == ""
        assert cookie["expires"] == ""

    def test_set_expiry_zero_sends_a_browser_session_cookie(self):
        cookie = self.get("/expire-at-browser-close/").cookies[COOKIE]
        assert cookie["max-age"] == ""
        assert cookie["expires"] == ""

    # Ending ------------------------------------------------------------------------------

    def test_flush_deletes_the_cookie(self):
        self.get("/write/", {"value": "gone"})
        response = self.get("/flush/")
        cookie = response.cookies[COOKIE]
        assert cookie.value == ""
        assert cookie["max-age"] == 0
        assert cookie["path"] == "/"
        assert vary(response) == ["Cookie"]
        assert self.get("/read/").content == b"-"

    @override_settings(SESSION_COOKIE_DOMAIN=".example.com", SESSION_COOKIE_PATH="/app/")
    def test_the_deleted_cookie_has_the_configured_domain_and_path(self):
        self.get("/write/")
        cookie = self.get("/flush/").cookies[COOKIE]
        assert (cookie["domain"], cookie["path"], cookie["max-age"]) == (".example.com", "/app/", 0)

    def test_flushing_no_session_sends_no_cookie(self):
        response = self.get("/flush/")
        assert COOKIE not in response.cookies
        assert vary(response) == ["Cookie"]

    # Failures ----------------------------------------------------------------------------

    def test_a_5xx_response_saves_nothing(self):
        self.get("/write/", {"value": "before"})
        for status in (500, 503):
            response = self.get("/write-then-fail/", {"status": status})
            assert response.status_code == status
            assert COOKIE not in response.cookies
        assert self.get("/read/").content == b"before"

    def test_an_error_unrelated_to_the_store_stays_a_500(self):
        self.get("/write/")
        self.browser = self.make_client(raise_request_exception=False)
        self.set_cookie(self.get("/write/").cookies[COOKIE].value)
        response = self.get("/unrelated-error/")
        assert response.status_code == 500
        assert COOKIE not in response.cookies

    # SESSION_SAVE_EVERY_REQUEST ------------------------------------------------------

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_save_every_request_refreshes_an_untouched_session(self):
        self.get("/write/", {"value": "kept"})
        response = self.get("/nothing/")
        assert response.cookies[COOKIE]["max-age"] == settings.SESSION_COOKIE_AGE
        assert vary(response) == ["Cookie"]
        assert "private" in cache_control(response)
        assert self.get("/read/").content == b"kept"

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_save_every_request_sends_no_cookie_for_a_bogus_or_unknown_key(self):
        for cookie in ("bogus", UNKNOWN_KEY):
            self.set_cookie(cookie)
            for path in ("/nothing/", "/read/"):
                response = self.get(path)
                assert response.status_code == 200
                assert COOKIE not in response.cookies, (cookie, path)

    def test_an_unknown_key_that_is_only_read_gets_no_set_cookie(self):
        self.set_cookie(UNKNOWN_KEY)
        response = self.get("/read/")
        assert response.content == b"-"
        assert COOKIE not in response.cookies

    def test_an_unknown_key_is_replaced_when_the_view_writes(self):
        self.set_cookie(UNKNOWN_KEY)
        key = self.get("/write/", {"value": "new"}).cookies[COOKIE].value
        assert key not in ("", UNKNOWN_KEY)
        assert self.get("/read/").content == b"new"

    # Cache safety ------------------------------------------------------------------------

    def test_every_response_that_sets_or_deletes_the_cookie_is_private(self):
        assert "private" in cache_control(self.get("/write/"))
        assert "private" in cache_control(self.get("/flush/"))

    def test_a_view_marked_public_becomes_private_when_it_sets_the_cookie(self):
        response = self.get("/public-write/")
        assert COOKIE in response.cookies
        assert "private" in cache_control(response)
        assert "public" not in cache_control(response)
        assert vary(response) == ["Cookie"]

    def test_the_views_own_vary_and_cache_control_are_kept(self):
        response = self.get("/localized-write/")
        assert COOKIE in response.cookies
        assert vary(response) == ["Accept-Language", "Cookie"]
        assert cache_control(response) == {"max-age=60", "private"}
        self.set_cookie(response.cookies[COOKIE].value)
        assert vary(self.get("/read/")) == ["Cookie"]

    @override_settings(SESSIONPLUS_COOKIE_PARTITIONED=True, SESSION_COOKIE_SECURE=True)
    def test_partitioned_cookies_carry_the_chips_attribute_when_set_and_deleted(self):
        set_header = self.get("/write/").cookies[COOKIE].output()
        assert set_header.endswith("; Partitioned")
        assert "; Secure" in set_header
        deleted = self.get("/flush/").cookies[COOKIE]
        assert deleted["max-age"] == 0
        assert deleted.output().endswith("; Partitioned")
        assert "; Secure" in deleted.output()

    def test_cookies_are_not_partitioned_by_default(self):
        assert "Partitioned" not in self.get("/write/").cookies[COOKIE].output()

    # django.contrib.auth, messages and CSRF ----------------------------------------------

    def test_login_rotates_the_key_and_logout_ends_the_session(self):
        self.create_user("ada")
        anonymous_key = self.get("/write/").cookies[COOKIE].value
        logged_in_key = self.get("/login/", {"username": "ada"}).cookies[COOKIE].value
        assert logged_in_key != anonymous_key
        assert self.get("/whoami/").content == b"ada"
        response = self.get("/logout/")
        assert response.cookies[COOKIE]["max-age"] == 0
        assert self.get("/whoami/").content == b"anonymous"

    def test_async_login_and_logout(self):
        self.create_user("ada")
        self.get("/async/login/", {"username": "ada"})
        assert self.get("/async/whoami/").content == b"ada"
        assert self.get("/async/logout/").cookies[COOKIE]["max-age"] == 0
        assert self.get("/async/whoami/").content == b"anonymous"

    @override_settings(MESSAGE_STORAGE=SESSION_STORAGE)
    def test_messages_kept_in_the_session_reach_the_next_request_once(self):
        self.get("/messages/add/", {"text": "saved"})
        assert self.get("/messages/").content == b"saved"
        assert self.get("/messages/").content == b""

    @override_settings(CSRF_USE_SESSIONS=True)
    def test_csrf_secret_kept_in_the_session(self):
        self.browser = self.make_client(enforce_csrf_checks=True)
        token = self.get("/csrf-token/").content.decode()
        assert COOKIE in self.browser.cookies
        assert "csrftoken" not in self.browser.cookies
        accepted = self.post("/csrf-protected/", {"csrfmiddlewaretoken": token})
        assert accepted.status_code == 200
        rejected = self.post("/csrf-protected/", {"csrfmiddlewaretoken": "x" * 64})
        assert rejected.status_code == 403

    # Signals -----------------------------------------------------------------------------

    def test_session_created_is_sent_once_for_a_new_session(self):
        with received(session_created) as created:
            key = self.get("/write/").cookies[COOKIE].value
            self.get("/write/", {"value": "again"})
            self.get("/read/")
        assert [signal["session_key"] for signal in created] == [key]
        assert created[0]["sender"] is self.store_class
        assert created[0]["request"].path == "/write/"

    def test_logout_sends_session_ended_and_the_next_session_is_created(self):
        self.create_user("ada")
        self.get("/login/", {"username": "ada"})
        key = self.session_key()
        with received(session_ended) as ended, received(session_created) as created:
            self.get("/logout/")
            new_key = self.get("/write/").cookies[COOKIE].value
        assert [(signal["session_key"], signal["reason"]) for signal in ended] == [(key, "logout")]
        assert ended[0]["request"].path == "/logout/"
        assert [signal["session_key"] for signal in created] == [new_key]

    def test_login_over_a_live_session_is_no_new_session(self):
        self.create_user("ada")
        self.get("/write/")
        with received(session_created) as created, received(session_ended) as ended:
            self.get("/login/", {"username": "ada"})
        assert created == []
        assert ended == []

    def test_login_without_a_session_creates_one(self):
        self.create_user("ada")
        with received(session_created) as created:
            self.get("/login/", {"username": "ada"})
        assert [signal["session_key"] for signal in created] == [self.session_key()]


class ServerSideDropInContract(DropInContract):
    """What Django's middleware does with engines that keep a record on the server."""

    def test_writing_stores_the_session_under_the_cookies_key(self):
        key = self.get("/write/", {"value": "x"}).cookies[COOKIE].value
        assert len(key) == 32
        assert self.stored(key)
        assert self.get("/write/", {"value": "y"}).cookies[COOKIE].value == key
        assert self.stored_session(key)["value"] == "y"

    def test_an_emptied_session_keeps_its_key_and_cookie(self):
        key = self.get("/write/").cookies[COOKIE].value
        response = self.get("/remove/")
        assert response.cookies[COOKIE].value == key
        assert self.stored(key)
        assert self.get("/read/").content == b"-"

    def test_flush_deletes_the_stored_session(self):
        key = self.get("/write/").cookies[COOKIE].value
        self.get("/flush/")
        assert not self.stored(key)

    def test_a_5xx_response_for_a_new_session_creates_no_record(self):
        response = self.get("/write-then-fail/")
        assert COOKIE not in response.cookies
        assert self.record_count() == 0

    def test_a_session_deleted_during_the_request_is_interrupted_not_resurrected(self):
        key = self.get("/write/").cookies[COOKIE].value
        response = self.get("/write-after-concurrent-logout/")
        assert response.status_code == 400
        assert COOKIE not in response.cookies
        assert not self.stored(key)

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_save_every_request_never_stores_a_bogus_or_unknown_key(self):
        for cookie in ("bogus", UNKNOWN_KEY):
            self.set_cookie(cookie)
            self.get("/nothing/")
            self.get("/read/")
        assert self.record_count() == 0

    def test_an_unknown_key_is_never_adopted(self):
        self.set_cookie(UNKNOWN_KEY)
        self.get("/read/")
        assert self.record_count() == 0
        self.get("/write/")
        assert self.record_count() == 1
        assert not self.stored(UNKNOWN_KEY)

    def test_login_and_logout_remove_the_records_they_replace(self):
        self.create_user("ada")
        anonymous_key = self.get("/write/").cookies[COOKIE].value
        logged_in_key = self.get("/login/", {"username": "ada"}).cookies[COOKIE].value
        assert not self.stored(anonymous_key)
        assert self.stored(logged_in_key)
        self.get("/logout/")
        assert not self.stored(logged_in_key)
        assert self.record_count() == 0


MODES = (SyncRequests, AsyncRequests)
SERVER_SIDE = ["django_db", "django_cache", "memory", "cache", "db", "cached_db", "redis", "file"]
engine_matrix(
    globals(), "MiddlewareTests", (ServerSideDropInContract, TestCase), SERVER_SIDE, MODES
)
engine_matrix(globals(), "MiddlewareTests", (DropInContract, TestCase), ["signed_cookies"], MODES)


class DjangosMiddlewareComparisonTests(MiddlewareTestMixin, SyncRequests, TestCase):
    """What Django's own middleware does where sessionplus's differs (the tests above)."""

    engine = ENGINES["django_db"]

    @override_settings(
        SESSION_SAVE_EVERY_REQUEST=True,
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    )
    def test_djangos_middleware_stores_an_empty_record_for_an_unknown_key(self):
        self.set_cookie(UNKNOWN_KEY)
        response = self.get("/nothing/")
        assert response.cookies[COOKIE].value not in ("", UNKNOWN_KEY)
        assert self.record_count() == 1
        assert "private" not in cache_control(response)


class MiddlewareAsAnObjectTests(SimpleTestCase):
    """The middleware called directly, as Django's own tests and third-party code do."""

    factory = RequestFactory()

    def setUp(self):
        memory_engine.reset()

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_process_request_and_process_response_work_on_their_own(self):
        middleware = SessionMiddleware(lambda request: HttpResponse())
        request = self.factory.get("/")
        middleware.process_request(request)
        request.session["value"] = "x"
        response = middleware.process_response(request, HttpResponse())
        key = response.cookies[COOKIE].value
        assert request.session.session_key == key
        assert middleware.SessionStore(key)["value"] == "x"

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_cookies_whose_names_contain_the_session_cookies_name_leave_it_trusted(self):
        middleware = SessionMiddleware(lambda request: HttpResponse())
        stored = middleware.SessionStore()
        stored["value"] = "x"
        stored.save()
        request = self.factory.get(
            "/", HTTP_COOKIE=f"x{COOKIE}=1; {COOKIE}={stored.session_key}; {COOKIE}_old=2"
        )
        middleware.process_request(request)
        assert request.session["value"] == "x"

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_a_request_without_a_session_is_passed_through(self):
        middleware = SessionMiddleware(lambda request: HttpResponse())
        response = HttpResponse("as it was")
        request = self.factory.get("/")
        assert middleware.process_response(request, response) is response
        assert async_to_sync(middleware.aprocess_response)(request, response) is response
        request.session = {}  # what some tests put there
        assert middleware.process_response(request, response) is response
        assert "Vary" not in response.headers

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_a_session_set_without_process_request_is_still_handled(self):
        middleware = SessionMiddleware(lambda request: HttpResponse())
        request = self.factory.get("/")
        request.session = middleware.SessionStore()
        request.session["value"] = "x"
        response = middleware.process_response(request, HttpResponse())
        assert middleware.SessionStore(response.cookies[COOKIE].value)["value"] == "x"

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_an_error_while_saving_that_is_no_outage_is_raised(self):
        middleware = SessionMiddleware(views_middleware.unsaveable)
        with pytest.raises(TypeError, match="value"):
            middleware(self.factory.get("/"))
        assert memory_engine.RECORDS == {}

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_a_session_the_view_replaced_is_saved(self):
        def view(request: HttpRequest) -> HttpResponse:
            request.session = memory_engine.SessionStore()
            request.session["value"] = "replaced"
            return HttpResponse()

        response = SessionMiddleware(view)(self.factory.get("/"))
        key = response.cookies[COOKIE].value
        assert memory_engine.SessionStore(key)["value"] == "replaced"

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_a_view_error_without_a_session_store_is_left_to_django(self):
        middleware = SessionMiddleware(lambda request: HttpResponse())
        request = self.factory.get("/")
        request.session = {}  # what some tests put there
        assert middleware.process_exception(request, ConnectionError("down")) is None

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_a_store_of_djangos_engine_put_there_directly_gets_djangos_handling(self):
        def view(request: HttpRequest) -> HttpResponse:
            request.session = DjangoCacheStore()
            request.session["value"] = "plain"
            return HttpResponse()

        with received(session_created) as created:
            response = SessionMiddleware(view)(self.factory.get("/"))
        key = response.cookies[COOKIE].value
        assert DjangoCacheStore(key)["value"] == "plain"
        assert created == []  # no hooks, no signals

    def test_checks_looking_for_djangos_middleware_find_it(self):
        assert issubclass(SessionMiddleware, DjangoSessionMiddleware)
        assert "django.contrib.admin" in settings.INSTALLED_APPS
        assert "admin.E410" not in [error.id for error in check_dependencies()]
        with self.settings(MIDDLEWARE=[]):
            assert "admin.E410" in [error.id for error in check_dependencies()]

    def test_it_is_sync_and_async_capable(self):
        assert SessionMiddleware.sync_capable is True
        assert SessionMiddleware.async_capable is True

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_it_is_a_coroutine_function_only_around_an_async_handler(self):
        async def async_view(request: HttpRequest) -> HttpResponse:
            return HttpResponse()

        assert iscoroutinefunction(SessionMiddleware(async_view)) is True
        assert iscoroutinefunction(SessionMiddleware(lambda request: HttpResponse())) is False

    @override_settings(SESSION_ENGINE=ENGINES["memory"].module)
    def test_called_around_an_async_handler_it_returns_the_response(self):
        async def async_view(request: HttpRequest) -> HttpResponse:
            await request.session.aset("value", "x")
            return HttpResponse()

        response = async_to_sync(SessionMiddleware(async_view))(self.factory.get("/"))
        assert len(response.cookies[COOKIE].value) == 32


class HeaderWriteTests(SimpleTestCase):
    """The middleware writes Vary and Cache-Control into Django's header store directly."""

    def test_a_header_written_directly_is_read_and_sent_as_if_set(self):
        response = HttpResponse("ok")
        _set_or_patch(response, "Vary", "Cookie", patch_vary_headers, ("Cookie",))
        assert response.has_header("vary")
        assert response["VARY"] == "Cookie"
        assert b"Vary: Cookie" in response.serialize_headers()

    def test_a_header_the_response_has_is_patched(self):
        response = HttpResponse("ok", headers={"Vary": "Accept"})
        _set_or_patch(response, "Vary", "Cookie", patch_vary_headers, ("Cookie",))
        assert response["Vary"] == "Accept, Cookie"

    def test_headers_of_another_kind_are_set_through_their_own_api(self):
        class CountingHeaders(ResponseHeaders):
            writes = 0

            def __setitem__(self, key: str, value: str) -> None:
                CountingHeaders.writes += 1
                super().__setitem__(key, value)

        response = HttpResponse("ok")
        response.headers = CountingHeaders(dict(response.headers))
        CountingHeaders.writes = 0  # the copied Content-Type
        _set_or_patch(response, "Cache-Control", "private", patch_cache_control, private=True)
        assert CountingHeaders.writes == 1
        assert response["Cache-Control"] == "private"
