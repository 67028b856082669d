"""
Check that the browser keeps cookies, without a session record.

Django's ``request.session.set_test_cookie()`` needs two requests and stores its marker in
the session, so every visitor who is merely checked (bots included) costs a stored session.
Here the marker is a small signed cookie of its own; nothing is stored server-side.

A view wrapped by ``require_cookies`` (or a class-based view using ``RequireCookiesMixin``)
answers a GET or HEAD without the cookie by setting it and redirecting once to the same URL
with a marker parameter. If the cookie comes back, a second redirect drops the marker and
the view runs; if not, the "cookies required" page is rendered. A request that carries the
marker without the cookie is never redirected again, so there is no loop. Other methods (a
POST from a form) without the cookie get the page at once: the GET that rendered the form
did the check. Django's CSRF middleware rejects such a POST before the view runs, so
``csrf_failure`` below gives a browser without cookies the same page. The page is JSON for a
client that prefers it, and renders with or without a project template engine
(``sessionplus.pages``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.utils.cache import add_never_cache_headers
from django.utils.encoding import escape_uri_path
from django.views.csrf import csrf_failure as django_csrf_failure

from sessionplus.conf import conf
from sessionplus.pages import page_response

__all__ = [
    "COOKIES_REQUIRED_TEMPLATE",
    "RequireCookiesMixin",
    "cookie_check_response",
    "cookies_enabled",
    "cookies_required_response",
    "csrf_failure",
    "delete_test_cookie",
    "require_cookies",
    "set_test_cookie",
]

COOKIES_REQUIRED_TEMPLATE = "sessionplus/cookies_required.html"
COOKIES_REQUIRED_STATUS = 403
SALT = "sessionplus.testcookie"
VALUE = "1"
CHECKED_METHODS = ("GET", "HEAD")

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., Any])


def set_test_cookie(response: HttpResponseBase) -> None:
    """Add the signed check cookie to ``response``, with the session cookie's attributes."""
    response.set_signed_cookie(
        conf.SESSIONPLUS_COOKIE_CHECK_NAME,
        VALUE,
        salt=SALT,
        domain=settings.SESSION_COOKIE_DOMAIN,
        path=settings.SESSION_COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )


def cookies_enabled(request: HttpRequest) -> bool:
    """Return whether ``request`` carries a check cookie that ``set_test_cookie`` signed."""
    value = request.get_signed_cookie(conf.SESSIONPLUS_COOKIE_CHECK_NAME, default=None, salt=SALT)
    return value == VALUE


def delete_test_cookie(response: HttpResponseBase) -> None:
    """Tell the browser to drop the check cookie."""
    response.delete_cookie(
        conf.SESSIONPLUS_COOKIE_CHECK_NAME,
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )


def _query_string(request: HttpRequest, *, marker: bool) -> str:
    query = request.GET.copy()
    query.pop(conf.SESSIONPLUS_COOKIE_CHECK_NAME, None)
    if marker:
        query[conf.SESSIONPLUS_COOKIE_CHECK_NAME] = VALUE
    return query.urlencode()


def _redirect(location: str, *, set_cookie: bool) -> HttpResponseRedirect:
    response = HttpResponseRedirect(location)
    if set_cookie:
        set_test_cookie(response)
    add_never_cache_headers(response)
    return response


def _without_marker(request: HttpRequest) -> str:
    """
    Return a reference to the requested URL without the marker, relative to it.

    A relative reference (``?…`` or the path's last segment after ``./``, which keeps a
    segment holding ``:`` from reading as a scheme) is resolved by the browser against the
    URL it requested, so it can never leave the site whatever the path looks like.
    """
    query = _query_string(request, marker=False)
    if query:
        return "?" + query
    return "./" + escape_uri_path(request.path.rpartition("/")[2])


def cookies_required_response(
    request: HttpRequest,
    template_name: str = COOKIES_REQUIRED_TEMPLATE,
    status: int = COOKIES_REQUIRED_STATUS,
) -> HttpResponseBase:
    """Return the "cookies required" page, with a link that checks again."""
    retry_url = "?" + _query_string(request, marker=False)
    data = {"error": "cookies_required", "retry_url": retry_url}
    return page_response(request, template_name, {"retry_url": retry_url}, data, status)


def cookie_check_response(
    request: HttpRequest,
    template_name: str = COOKIES_REQUIRED_TEMPLATE,
    status: int = COOKIES_REQUIRED_STATUS,
) -> HttpResponseBase | None:
    """
    Return the response that checks cookies, or None when the view may run.

    The redirects are query-only references ("?…") or the path's last segment: the browser
    resolves them against the URL it just requested, so they never leave the site.
    """
    name = conf.SESSIONPLUS_COOKIE_CHECK_NAME
    checked = request.method in CHECKED_METHODS
    if cookies_enabled(request):
        # The check passed: the marker goes, so that a form on the page never posts to it
        # and the address bar shows the URL as it was asked for.
        if checked and name in request.GET:
            return _redirect(_without_marker(request), set_cookie=False)
        return None
    if checked and name not in request.GET:
        return _redirect("?" + _query_string(request, marker=True), set_cookie=True)
    return cookies_required_response(request, template_name, status)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponseBase:
    """
    Answer a CSRF failure as Django does, except for a browser that sent no cookies at all.

    ``CsrfViewMiddleware`` rejects a POST without its cookie before any view runs, so a
    browser that refuses cookies would get Django's CSRF page instead of the "cookies
    required" one. With ``CSRF_FAILURE_VIEW = "sessionplus.testcookie.csrf_failure"`` it
    gets the "cookies required" page; every other CSRF failure gets Django's page.
    """
    if reason == REASON_NO_CSRF_COOKIE and not request.COOKIES:
        return cookies_required_response(request)
    return django_csrf_failure(request, reason)


@overload
def require_cookies(view_func: ViewFunc) -> ViewFunc: ...


@overload
def require_cookies(
    *, template_name: str = ..., status: int = ...
) -> Callable[[ViewFunc], ViewFunc]: ...


def require_cookies(
    view_func: Callable[..., Any] | None = None,
    *,
    template_name: str = COOKIES_REQUIRED_TEMPLATE,
    status: int = COOKIES_REQUIRED_STATUS,
) -> Any:
    """
    Run the view only for browsers that keep cookies; works on sync and async views.

    Use bare (``@require_cookies``) or with options
    (``@require_cookies(template_name="my/page.html", status=200)``).
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(view):

            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                response = cookie_check_response(request, template_name, status)
                if response is not None:
                    return response
                return await view(request, *args, **kwargs)

            return wraps(view)(async_view)

        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            response = cookie_check_response(request, template_name, status)
            if response is not None:
                return response
            return view(request, *args, **kwargs)

        return wraps(view)(sync_view)

    return decorator if view_func is None else decorator(view_func)


class RequireCookiesMixin:
    """``require_cookies`` for class-based views; put it before the view class."""

    cookies_required_template_name: str = COOKIES_REQUIRED_TEMPLATE
    cookies_required_status: int = COOKIES_REQUIRED_STATUS

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = cookie_check_response(
            request, self.cookies_required_template_name, self.cookies_required_status
        )
        if response is None:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        if self.view_is_async:  # type: ignore[attr-defined]
            # An async view's dispatch must return an awaitable, as Django's View.options does.
            async def immediate() -> HttpResponseBase:
                return response

            return immediate()
        return response
