"""The URLconf of the middleware tests (``@override_settings(ROOT_URLCONF=...)``)."""

from __future__ import annotations

from django.urls import path

from tests import views_middleware as views

urlpatterns = [
    path("nothing/", views.nothing),
    path("read/", views.read),
    path("write/", views.write),
    path("add/", views.add_item),
    path("public-write/", views.public_write),
    path("localized-write/", views.localized_write),
    path("remove/", views.remove),
    path("flush/", views.flush),
    path("expire-at-browser-close/", views.expire_at_browser_close),
    path("write-then-fail/", views.write_then_fail),
    path("write-after-concurrent-logout/", views.write_after_concurrent_logout),
    path("read-during-concurrent-write/", views.read_during_concurrent_write),
    path("unrelated-error/", views.unrelated_error),
    path("unsaveable/", views.unsaveable),
    path("whoami/", views.whoami),
    path("login/", views.log_in),
    path("login-then-fail/", views.log_in_then_fail),
    path("logout/", views.log_out),
    path("messages/add/", views.add_message),
    path("messages/", views.show_messages),
    path("csrf-token/", views.csrf_token),
    path("csrf-protected/", views.csrf_protected),
    path("async/read/", views.aread),
    path("async/write/", views.awrite),
    path("async/whoami/", views.awhoami),
    path("async/login/", views.alog_in),
    path("async/logout/", views.alog_out),
]
