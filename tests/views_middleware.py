"""Views the middleware tests drive through Django's test clients."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import alogin, alogout, get_user_model, login, logout
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.views.decorators.cache import cache_control
from django.views.decorators.vary import vary_on_headers


def nothing(request: HttpRequest) -> HttpResponse:
    return HttpResponse("nothing")


def read(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.session.get("value", "-"))


def write(request: HttpRequest) -> HttpResponse:
    request.session["value"] = request.GET.get("value", "x")
    return HttpResponse("written")


def add_item(request: HttpRequest) -> HttpResponse:
    request.session[request.GET["key"]] = request.GET["value"]
    return HttpResponse("added")


@cache_control(public=True, max_age=3600)
def public_write(request: HttpRequest) -> HttpResponse:
    request.session["value"] = "x"
    return HttpResponse("written, and cacheable as far as the view knows")


@vary_on_headers("Accept-Language")
@cache_control(max_age=60)
def localized_write(request: HttpRequest) -> HttpResponse:
    request.session["value"] = "x"
    return HttpResponse("written, in the visitor's language")


def remove(request: HttpRequest) -> HttpResponse:
    del request.session["value"]
    return HttpResponse("removed")


def flush(request: HttpRequest) -> HttpResponse:
    request.session.flush()
    return HttpResponse("flushed")


def expire_at_browser_close(request: HttpRequest) -> HttpResponse:
    request.session.set_expiry(0)
    request.session["value"] = "x"
    return HttpResponse("until the browser closes")


def write_then_fail(request: HttpRequest) -> HttpResponse:
    request.session["value"] = "lost"
    return HttpResponse("failed", status=int(request.GET.get("status", 500)))


def write_after_concurrent_logout(request: HttpRequest) -> HttpResponse:
    request.session.get("value")
    # Another request (a logout in another tab) deletes the record meanwhile.
    import_module(settings.SESSION_ENGINE).SessionStore().delete(request.session.session_key)
    request.session["value"] = "too late"
    return HttpResponse("written")


def read_during_concurrent_write(request: HttpRequest) -> HttpResponse:
    value = request.session.get("value", "-")
    # Another request changes the session meanwhile (a step-up flag popped, say).
    concurrent = import_module(settings.SESSION_ENGINE).SessionStore(request.session.session_key)
    concurrent["value"] = "changed meanwhile"
    concurrent.save()
    return HttpResponse(value)


def unrelated_error(request: HttpRequest) -> HttpResponse:
    request.session.get("value")
    raise ValueError("a bug in the view, nothing to do with sessions")


def unsaveable(request: HttpRequest) -> HttpResponse:
    request.session["value"] = []
    request.session["value"].append(object())  # mutated in place: found at save time
    return HttpResponse("mutated")


def whoami(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.user.get_username() or "anonymous")


def log_in(request: HttpRequest) -> HttpResponse:
    login(request, get_user_model().objects.get(username=request.GET["username"]))
    return HttpResponse("logged in")


def log_in_then_fail(request: HttpRequest) -> HttpResponse:
    login(request, get_user_model().objects.get(username=request.GET["username"]))
    return HttpResponse("failed after login", status=500)


def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("logged out")


def add_message(request: HttpRequest) -> HttpResponse:
    messages.info(request, request.GET.get("text", "hello"))
    return HttpResponse("added")


def show_messages(request: HttpRequest) -> HttpResponse:
    return HttpResponse(",".join(str(message) for message in messages.get_messages(request)))


def csrf_token(request: HttpRequest) -> HttpResponse:
    return HttpResponse(get_token(request))


def csrf_protected(request: HttpRequest) -> HttpResponse:
    return HttpResponse("accepted")


async def aread(request: HttpRequest) -> HttpResponse:
    return HttpResponse(await request.session.aget("value", "-"))


async def awrite(request: HttpRequest) -> HttpResponse:
    await request.session.aset("value", request.GET.get("value", "x"))
    return HttpResponse("written")


async def awhoami(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    return HttpResponse(user.get_username() or "anonymous")


async def alog_in(request: HttpRequest) -> HttpResponse:
    user = await get_user_model().objects.aget(username=request.GET["username"])
    await alogin(request, user)
    return HttpResponse("logged in")


async def alog_out(request: HttpRequest) -> HttpResponse:
    await alogout(request)
    return HttpResponse("logged out")
