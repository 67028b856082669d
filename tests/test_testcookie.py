from __future__ import annotations

import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.test import (
    AsyncClient,
    Client,
    RequestFactory,
    SimpleTestCase,
    TestCase,
    override_settings,
)
from django.urls import path, resolve
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from sessionplus.models import Session
from sessionplus.testcookie import (
    RequireCookiesMixin,
    cookies_enabled,
    delete_test_cookie,
    require_cookies,
    set_test_cookie,
)
from tests.backends.contract import Calls, with_twins

NAME = "sessionplus_cookiecheck"
MARKER = f"{NAME}=1"
CSRF_FAILURE_VIEW = "sessionplus.testcookie.csrf_failure"
CUSTOM_TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            "loaders": [
                (
                    "django.template.loaders.locmem.Loader",
                    {"custom.html": "custom page, retry at {{ retry_url }}"},
                ),
                "django.template.loaders.app_directories.Loader",
            ]
        },
    }
]


# A project engine that finds no package template: no APP_DIRS, no loaders of its own.
NO_APP_DIRS_TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates"}]


@require_cookies
def sync_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"view ran for {request.method}")


@require_cookies
async def async_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"async view ran for {request.method}")


@require_cookies(template_name="custom.html", status=200)
def custom_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("custom view ran")


class SyncPage(RequireCookiesMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"class view ran for {request.method}")

    post = get


class AsyncPage(RequireCookiesMixin, View):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse(f"async class view ran for {request.method}")

    post = get


class CustomPage(RequireCookiesMixin, View):
    cookies_required_template_name = "custom.html"
    cookies_required_status = 200

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("custom class view ran")


def django_set_test_cookie(request: HttpRequest) -> HttpResponse:
    request.session.set_test_cookie()
    return HttpResponse("set")


def django_test_cookie_worked(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.session.test_cookie_worked()))


def django_delete_test_cookie(request: HttpRequest) -> HttpResponse:
    request.session.delete_test_cookie()
    return HttpResponse("deleted")


async def django_aset_test_cookie(request: HttpRequest) -> HttpResponse:
    await request.session.aset_test_cookie()
    return HttpResponse("set")


async def django_atest_cookie_worked(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(await request.session.atest_cookie_worked()))


async def django_adelete_test_cookie(request: HttpRequest) -> HttpResponse:
    await request.session.adelete_test_cookie()
    return HttpResponse("deleted")


@require_cookies
def form_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return HttpResponse(f"posted {request.POST['a']}")
    return HttpResponse(get_token(request))


urlpatterns = [
    path("form/", form_view),
    path("django/set/", django_set_test_cookie),
    path("django/worked/", django_test_cookie_worked),
    path("django/delete/", django_delete_test_cookie),
    path("django/aset/", django_aset_test_cookie),
    path("django/aworked/", django_atest_cookie_worked),
    path("django/adelete/", django_adelete_test_cookie),
    path("sync/", sync_view),
    path("async/", async_view),
    path("custom/", custom_view),
    path("class/", SyncPage.as_view()),
    path("async-class/", AsyncPage.as_view()),
    path("custom-class/", CustomPage.as_view()),
]


def signed_check_cookie(name: str = NAME) -> str:
    response = HttpResponse()
    set_test_cookie(response)
    return response.cookies[name].value


class HelperTests(SimpleTestCase):
    def test_set_test_cookie_sets_a_signed_http_only_lax_cookie(self):
        response = HttpResponse()
        set_test_cookie(response)
        morsel = response.cookies[NAME]
        assert morsel.value != "1"
        assert morsel.value.startswith("1:")
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
        assert morsel["secure"] == ""
        assert morsel["max-age"] == ""

    @override_settings(
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/app/",
        SESSION_COOKIE_SAMESITE="Strict",
    )
    def test_set_test_cookie_follows_the_session_cookie_attributes(self):
        response = HttpResponse()
        set_test_cookie(response)
        morsel = response.cookies[NAME]
        assert morsel["secure"] is True
        assert morsel["domain"] == "example.com"
        assert morsel["path"] == "/app/"
        assert morsel["samesite"] == "Strict"

    @override_settings(SESSIONPLUS_COOKIE_CHECK_NAME="check")
    def test_set_test_cookie_uses_the_configured_name(self):
        response = HttpResponse()
        set_test_cookie(response)
        assert list(response.cookies) == ["check"]

    def test_cookies_enabled_when_the_signed_cookie_came_back(self):
        request = RequestFactory().get("/", HTTP_COOKIE=f"{NAME}={signed_check_cookie()}")
        assert cookies_enabled(request) is True

    def test_cookies_not_enabled_without_the_cookie(self):
        assert cookies_enabled(RequestFactory().get("/")) is False

    def test_cookies_not_enabled_for_an_unsigned_cookie(self):
        request = RequestFactory().get("/", HTTP_COOKIE=f"{NAME}=1")
        assert cookies_enabled(request) is False

    def test_cookies_not_enabled_for_a_cookie_signed_with_another_key(self):
        with override_settings(SECRET_KEY="another-secret"):
            forged = signed_check_cookie()
        request = RequestFactory().get("/", HTTP_COOKIE=f"{NAME}={forged}")
        assert cookies_enabled(request) is False

    @override_settings(SESSIONPLUS_COOKIE_CHECK_NAME="check")
    def test_cookies_enabled_reads_the_configured_name(self):
        value = signed_check_cookie("check")
        assert cookies_enabled(RequestFactory().get("/", HTTP_COOKIE=f"check={value}"))
        assert not cookies_enabled(RequestFactory().get("/", HTTP_COOKIE=f"{NAME}={value}"))

    @override_settings(SESSION_COOKIE_DOMAIN="example.com", SESSION_COOKIE_PATH="/app/")
    def test_delete_test_cookie_expires_it_where_it_was_set(self):
        response = HttpResponse()
        delete_test_cookie(response)
        morsel = response.cookies[NAME]
        assert morsel.value == ""
        assert morsel["max-age"] == 0
        assert morsel["domain"] == "example.com"
        assert morsel["path"] == "/app/"


class RedirectSafetyTests(SimpleTestCase):
    def test_redirect_stays_on_the_site_whatever_the_path(self):
        for evil in ("//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example/"):
            request = RequestFactory().get(evil, {"next": "https://evil.example/"})
            response = sync_view(request)
            location = response["Location"]
            assert location.startswith("?")
            assert url_has_allowed_host_and_scheme(location, allowed_hosts={"testserver"})

    def test_the_redirect_dropping_the_marker_stays_on_the_site_whatever_the_path(self):
        cookie = f"{NAME}={signed_check_cookie()}"
        for evil, expected in (
            ("//evil.example/", "./"),
            ("/\\evil.example", "./%5Cevil.example"),
            ("/https:evil.example", "./https:evil.example"),
        ):
            request = RequestFactory().get(f"{evil}?{MARKER}", HTTP_COOKIE=cookie)
            location = sync_view(request)["Location"]
            assert location == expected
            assert url_has_allowed_host_and_scheme(location, allowed_hosts={"testserver"})


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[])
@with_twins
class RequireCookiesTests(SimpleTestCase):
    """The decorator's branches, through the test client (which keeps cookies like a browser)."""

    url = "/sync/"
    ran = "view ran for GET"
    custom_url = "/custom/"
    coroutine = False

    def assert_check_redirect(self, response, location):
        assert response.status_code == 302
        assert response["Location"] == location
        cookie = f"{NAME}={response.cookies[NAME].value}"
        assert cookies_enabled(RequestFactory().get("/", HTTP_COOKIE=cookie))
        assert "no-store" in response["Cache-Control"]

    def assert_cookies_required_page(self, response, retry_url):
        assert response.status_code == 403
        assert b"Cookies required" in response.content
        assert f'href="{retry_url}"'.encode() in response.content
        assert "no-store" in response["Cache-Control"]

    def both_get_without_cookie_sets_it_and_redirects_to_the_marked_url_then_is_served(
        self, call: Calls
    ) -> None:
        client = call.client(self)
        response = call.get(client, self.url)
        self.assert_check_redirect(response, f"?{MARKER}")
        client.cookies[NAME] = response.cookies[NAME].value
        response = call.get(client, f"{self.url}?{MARKER}")
        assert response["Location"] == "./"
        response = call.get(client, self.url)
        assert response.content.decode() == self.ran

    def test_redirect_keeps_the_original_query_string(self):
        response = self.client.get(self.url + "?b=2&a=1&a=3&q=caf%C3%A9")
        self.assert_check_redirect(response, f"?b=2&a=1&a=3&q=caf%C3%A9&{MARKER}")

    def test_return_hop_with_cookie_drops_the_marker_and_runs_the_view(self):
        response = self.client.get(self.url, follow=True)
        assert response.content.decode() == self.ran
        assert response.redirect_chain == [(f"?{MARKER}", 302), ("./", 302)]
        assert response.request["QUERY_STRING"] == ""

    def test_get_with_cookie_runs_the_view_without_a_hop(self):
        self.client.cookies[NAME] = signed_check_cookie()
        response = self.client.get(self.url)
        assert response.status_code == 200
        assert response.content.decode() == self.ran

    def test_get_with_cookie_and_marker_is_redirected_to_the_url_without_it(self):
        self.client.cookies[NAME] = signed_check_cookie()
        response = self.client.get(f"{self.url}?{MARKER}")
        assert response.status_code == 302
        assert response["Location"] == "./"
        assert NAME not in response.cookies
        assert "no-store" in response["Cache-Control"]

    def test_dropping_the_marker_keeps_the_rest_of_the_query_string(self):
        self.client.cookies[NAME] = signed_check_cookie()
        response = self.client.get(f"{self.url}?b=2&{MARKER}&a=1")
        assert response["Location"] == "?b=2&a=1"

    def both_return_hop_without_cookie_renders_the_page_and_does_not_redirect_again(
        self, call: Calls
    ) -> None:
        response = call.get(call.client(self), f"{self.url}?x=1&{MARKER}&y=2")
        self.assert_cookies_required_page(response, "?x=1&amp;y=2")
        assert NAME not in response.cookies

    def test_retry_link_without_other_parameters_is_the_bare_query(self):
        response = self.client.get(f"{self.url}?{MARKER}")
        self.assert_cookies_required_page(response, "?")

    def test_browser_that_drops_cookies_sees_the_page_after_exactly_one_hop(self):
        first = self.client.get(self.url + "?a=1")
        self.client.cookies.clear()  # the browser refused the cookie
        second = self.client.get(self.url + first["Location"])
        assert first.status_code == 302
        assert second.status_code == 403
        assert second.request["QUERY_STRING"] == f"a=1&{MARKER}"

    def test_tampered_cookie_counts_as_missing(self):
        self.client.cookies[NAME] = "1"
        response = self.client.get(self.url)
        self.assert_check_redirect(response, f"?{MARKER}")

    def both_post_without_cookie_gets_the_page_not_a_redirect(self, call: Calls) -> None:
        response = call.post(call.client(self), self.url + "?next=/x/", {"a": "1"})
        self.assert_cookies_required_page(response, "?next=%2Fx%2F")
        assert NAME not in response.cookies

    @override_settings(TEMPLATES=[])
    def test_a_project_without_template_engines_gets_the_page(self):
        response = self.client.get(f"{self.url}?{MARKER}")
        self.assert_cookies_required_page(response, "?")

    @override_settings(TEMPLATES=NO_APP_DIRS_TEMPLATES)
    def test_a_template_engine_without_app_directories_gets_the_page(self):
        response = self.client.get(f"{self.url}?{MARKER}")
        self.assert_cookies_required_page(response, "?")

    def test_a_client_preferring_json_gets_json(self):
        headers = {"Accept": "application/json, text/html;q=0.5"}
        response = self.client.get(f"{self.url}?a=1&{MARKER}", headers=headers)
        assert response.status_code == 403
        assert response.json() == {"error": "cookies_required", "retry_url": "?a=1"}
        assert "Accept" in response["Vary"]
        assert "no-store" in response["Cache-Control"]

    def test_post_with_cookie_runs_the_view(self):
        self.client.cookies[NAME] = signed_check_cookie()
        response = self.client.post(self.url, {"a": "1"})
        assert response.content.decode() == self.ran.replace("GET", "POST")

    def test_head_without_cookie_sets_it_and_redirects(self):
        response = self.client.head(self.url)
        self.assert_check_redirect(response, f"?{MARKER}")
        assert response.content == b""

    def test_head_on_the_return_hop_without_cookie_gets_the_status_without_a_body(self):
        response = self.client.head(f"{self.url}?{MARKER}")
        assert response.status_code == 403
        assert response.content == b""

    def test_head_with_cookie_runs_the_view(self):
        self.client.cookies[NAME] = signed_check_cookie()
        response = self.client.head(self.url)
        assert response.status_code == 200
        assert response.content == b""

    def test_marker_value_from_the_visitor_is_not_echoed(self):
        response = self.client.get(self.url + f"?{NAME}=https://evil.example/")
        self.assert_cookies_required_page(response, "?")
        assert b"evil.example" not in response.content

    @override_settings(SESSIONPLUS_COOKIE_CHECK_NAME="check")
    def test_marker_and_cookie_use_the_configured_name(self):
        response = self.client.get(self.url, follow=True)
        assert response.redirect_chain == [("?check=1", 302), ("./", 302)]
        assert response.content.decode() == self.ran

    @override_settings(TEMPLATES=CUSTOM_TEMPLATES)
    def test_template_and_status_can_be_overridden(self):
        response = self.client.get(f"{self.custom_url}?a=1&{MARKER}")
        assert response.status_code == 200
        assert response.content == b"custom page, retry at ?a=1"
        self.client.cookies[NAME] = signed_check_cookie()
        assert self.client.get(self.custom_url).content.endswith(b"view ran")

    def test_wrapped_view_keeps_its_sync_or_async_nature(self):
        assert iscoroutinefunction(resolve(self.url).func) is self.coroutine

    def test_decorator_keeps_the_view_name(self):
        assert sync_view.__name__ == "sync_view"
        assert async_view.__name__ == "async_view"


class AsyncRequireCookiesTests(RequireCookiesTests):
    url = "/async/"
    ran = "async view ran for GET"
    coroutine = True


class MixinTests(RequireCookiesTests):
    url = "/class/"
    ran = "class view ran for GET"
    custom_url = "/custom-class/"


class AsyncMixinTests(RequireCookiesTests):
    url = "/async-class/"
    ran = "async class view ran for GET"
    coroutine = True


@override_settings(ROOT_URLCONF=__name__)
@with_twins
class CsrfTests(SimpleTestCase):
    """
    A form behind ``require_cookies``, with the test settings' ``CsrfViewMiddleware``
    enforcing its checks as for a browser.
    """

    def setUp(self) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.async_client = AsyncClient(enforce_csrf_checks=True)

    def assert_cookies_required_page(self, response, retry_url):
        assert response.status_code == 403
        assert b"Cookies required" in response.content
        assert f'href="{retry_url}"'.encode() in response.content

    def test_a_post_without_cookies_gets_djangos_csrf_page_by_default(self):
        response = self.client.post("/form/", {"a": "1"})
        assert response.status_code == 403
        assert b"CSRF verification failed" in response.content

    @override_settings(CSRF_FAILURE_VIEW=CSRF_FAILURE_VIEW)
    def both_with_the_failure_view_a_post_without_cookies_gets_the_cookies_required_page(
        self, call: Calls
    ) -> None:
        client = call.client(self)
        response = call.post(client, "/form/?next=/x/", {"a": "1"})
        self.assert_cookies_required_page(response, "?next=%2Fx%2F")
        response = call.post(client, "/form/", {"a": "1"})
        self.assert_cookies_required_page(response, "?")

    @override_settings(CSRF_FAILURE_VIEW=CSRF_FAILURE_VIEW)
    def test_with_the_failure_view_a_post_without_its_token_still_gets_djangos_page(self):
        self.client.get("/form/", follow=True)  # cookies kept, the CSRF one included
        response = self.client.post("/form/", {"a": "1"})
        assert response.status_code == 403
        assert b"CSRF verification failed" in response.content

    @override_settings(CSRF_FAILURE_VIEW=CSRF_FAILURE_VIEW)
    def test_a_checked_form_posts_to_its_url_without_the_marker_and_runs(self):
        page = self.client.get("/form/?next=/x/", follow=True)
        assert page.request["QUERY_STRING"] == "next=%2Fx%2F"
        token = page.content.decode()
        response = self.client.post("/form/?next=/x/", {"a": "1", "csrfmiddlewaretoken": token})
        assert response.content == b"posted 1"


@with_twins
class StorageFreeCheckMixin:
    """A visitor who is only checked costs no session record, with or without cookies."""

    def both_checked_visitor_with_cookies_stores_nothing(self, call: Calls) -> None:
        client = call.client(self)
        for url in ("/sync/", "/async/", "/class/", "/async-class/"):
            client.cookies.clear()
            first = call.get(client, url + "?a=1")
            assert first.status_code == 302
            second = call.get(client, url + first["Location"])
            assert second["Location"] == "?a=1"
            assert call.get(client, url + second["Location"]).status_code == 200
        assert self.stored_sessions() == 0
        assert settings.SESSION_COOKIE_NAME not in client.cookies

    def both_checked_visitor_without_cookies_stores_nothing(self, call: Calls) -> None:
        client = call.client(self)
        for url in ("/sync/", "/async/", "/class/", "/async-class/"):
            first = call.get(client, url)
            client.cookies.clear()
            assert call.get(client, url + first["Location"]).status_code == 403
            assert call.post(client, url, {"a": "1"}).status_code == 403
        assert self.stored_sessions() == 0
        assert settings.SESSION_COOKIE_NAME not in client.cookies

    # Django's test-cookie methods, through views of each mode: request.session's
    # set_test_cookie() and the rest, or their a* twins.
    DJANGO_VIEWS = {
        "sync": ("/django/set/", "/django/worked/", "/django/delete/"),
        "async": ("/django/aset/", "/django/aworked/", "/django/adelete/"),
    }

    def both_djangos_session_test_cookie_methods_keep_working(self, call: Calls) -> None:
        client = call.client(self)
        set_cookie, worked, delete = self.DJANGO_VIEWS[call.mode]
        assert call.get(client, worked).content == b"False"
        call.get(client, set_cookie)
        assert call.get(client, worked).content == b"True"
        call.get(client, delete)
        assert call.get(client, worked).content == b"False"


@override_settings(ROOT_URLCONF=__name__, SESSION_ENGINE="sessionplus.backends.db")
class DbStorageFreeCheckTests(StorageFreeCheckMixin, TestCase):
    def stored_sessions(self) -> int:
        return Session.objects.count()

    def test_checking_cookies_runs_no_query(self):
        with self.assertNumQueries(0):
            self.client.get("/sync/", follow=True)
            self.client.cookies.clear()
            self.client.get(f"/sync/?{MARKER}")
            self.client.post("/sync/")


@pytest.mark.usefixtures("redis_db")
@override_settings(ROOT_URLCONF=__name__, SESSION_ENGINE="sessionplus.backends.redis")
class RedisStorageFreeCheckTests(StorageFreeCheckMixin, SimpleTestCase):
    def stored_sessions(self) -> int:
        from django_redis import get_redis_connection

        return get_redis_connection(settings.SESSIONPLUS_REDIS_ALIAS).dbsize()
