"""Views the hardening tests drive: ignoring, reading and writing the session, logging out."""

from __future__ import annotations

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.urls import path


def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse("untouched")


def read(request: HttpRequest) -> HttpResponse:
    keys = ",".join(sorted(request.session.keys()))
    return HttpResponse(f"authenticated={request.user.is_authenticated} keys={keys}")


def write(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(f"visits={request.session['visits']}")


def read_all_then_write(request: HttpRequest) -> HttpResponse:
    # The redis engine verifies each value when read: this view reads every one first.
    dict(request.session.items())
    return write(request)


def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("logged out")


urlpatterns = [
    path("untouched/", untouched),
    path("read/", read),
    path("write/", write),
    path("read-all-then-write/", read_all_then_write),
    path("logout/", log_out),
]
