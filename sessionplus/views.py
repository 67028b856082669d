"""
The "Your sessions" views: HTML forms that work without JavaScript, JSON for the same URLs.

A request whose ``Accept`` header prefers ``application/json`` gets JSON (for single-page
apps): the list, ``{"ended": n}`` after a POST, 401 when signed out, 404 for an unknown
session. Ending is POST only, behind Django's CSRF protection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from sessionplus.identifiers import public_id
from sessionplus.sessions import end_other_sessions, end_session, user_sessions

TEMPLATE_NAME = "sessionplus/sessions.html"

View = Callable[..., HttpResponse]


def wants_json(request: HttpRequest) -> bool:
    """Return whether the client prefers JSON to HTML (HTML when it does not say)."""
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def _signed_in(view: View) -> View:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if wants_json(request):
            return JsonResponse({"error": "Sign in to see your sessions."}, status=401)
        return redirect_to_login(request.get_full_path())

    return wrapper


def _list_url(request: HttpRequest) -> str:
    # A view called without URL resolution (a RequestFactory request) has no match.
    match = request.resolver_match
    return reverse("sessionplus:sessions", current_app=match.namespace if match else None)


def _ended(request: HttpRequest, count: int) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"ended": count})
    text = ngettext("%(count)d session ended.", "%(count)d sessions ended.", count)
    messages.info(request, text % {"count": count}, fail_silently=True)
    return redirect(_list_url(request))


@require_GET
@never_cache
@_signed_in
def session_list(request: HttpRequest) -> HttpResponse:
    """List the user's sessions: this device first, then by last use."""
    records = user_sessions(request.user, request)
    if wants_json(request):
        return JsonResponse({"sessions": [asdict(record) for record in records]})
    return render(request, TEMPLATE_NAME, {"sessions": records})


@require_POST
@csrf_protect
@_signed_in
def end_one(request: HttpRequest, identifier: str) -> HttpResponse:
    """End one of the user's sessions; ending this device's own signs it out."""
    current = request.session.session_key
    if current is not None and identifier == public_id(current):
        logout(request)
        return _ended(request, 1)
    if not end_session(request.user, identifier, request):
        # The same answer for another user's session and for none at all: no oracle.
        if wants_json(request):
            return JsonResponse({"error": "No such session."}, status=404)
        raise Http404("No such session.")
    return _ended(request, 1)


@require_POST
@csrf_protect
@_signed_in
def end_others(request: HttpRequest) -> HttpResponse:
    """End every session of the user but this one."""
    return _ended(request, end_other_sessions(request))
