"""A login through the middleware (so sessions carry their metadata), "who am I", the pages,
Django's password change view."""

from __future__ import annotations

from django.contrib.auth import authenticate, login
from django.contrib.auth.views import PasswordChangeView
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def sign_in(request: HttpRequest) -> HttpResponse:
    credentials = {"username": request.POST["username"], "password": request.POST["password"]}
    login(request, authenticate(request, **credentials))
    return HttpResponse("signed in")


def whoami(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.user.get_username() or "anonymous")


urlpatterns = [
    path("login/", sign_in),
    path("whoami/", whoami),
    path("password/", PasswordChangeView.as_view(success_url="/whoami/")),
    path("account/sessions/", include("sessionplus.urls")),
]
