"""The demo's pages: the current session, a small cart, and logging in and out."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from sessionplus.testcookie import RequireCookiesMixin, cookies_enabled, set_test_cookie

CATALOG = {
    "tea": "Green tea",
    "coffee": "Coffee",
    "croissant": "Croissant",
    "cookie": "Cookie",
}
VALUE_PREVIEW = 80


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    session = request.session
    cart = session.get("cart", {})  # the one storage read of this request
    has_session = session.session_key is not None
    context = {
        "engine": settings.SESSION_ENGINE,
        "key_prefix": session.session_key[:8] if has_session else None,
        "expiry": session.get_expiry_date() if has_session else None,
        "expires_at_browser_close": session.get_expire_at_browser_close(),
        # Django's own engines (the adoption demo's first stage) record no metadata.
        "metadata": getattr(session, "metadata", None) if has_session else None,
        "data": [(key, repr(value)[:VALUE_PREVIEW]) for key, value in sorted(session.items())],
        "catalog": CATALOG,
        "cart": [(item, CATALOG[item], count) for item, count in cart.items() if item in CATALOG],
        "cart_total": sum(cart.values()),
    }
    response = render(request, "demo/home.html", context)
    # The login form on this page posts straight to the login view, which requires the
    # check cookie on a POST: hand it out here so that a one-click login works.
    if not cookies_enabled(request):
        set_test_cookie(response)
    return response


def _item(request: HttpRequest) -> str | None:
    item = request.POST.get("item", "")
    return item if item in CATALOG else None


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    item = _item(request)
    if item is None:
        return HttpResponseBadRequest("Unknown item.")
    cart = request.session.get("cart", {})
    cart[item] = cart.get(item, 0) + 1
    request.session["cart"] = cart
    messages.success(request, f"Added {CATALOG[item]} to the cart.")
    return redirect("home")


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    item = _item(request)
    if item is None:
        return HttpResponseBadRequest("Unknown item.")
    cart = request.session.get("cart", {})
    if cart.get(item, 0) > 1:
        cart[item] -= 1
    else:
        cart.pop(item, None)
    request.session["cart"] = cart
    messages.success(request, f"Removed {CATALOG[item]} from the cart.")
    return redirect("home")


class LoginView(RequireCookiesMixin, auth_views.LoginView):
    """Django's login view, checking first that the browser keeps cookies."""

    template_name = "demo/login.html"
    redirect_authenticated_user = True
    next_page = "home"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "engine": settings.SESSION_ENGINE}
