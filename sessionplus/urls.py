"""
The "Your sessions" pages: ``path("account/sessions/", include("sessionplus.urls"))``.

Names, in the ``sessionplus`` namespace: ``sessions`` (the list), ``end`` (one session, by
its public identifier) and ``end_others`` ("Sign out everywhere else").
"""

from __future__ import annotations

from django.urls import path

from sessionplus import views

app_name = "sessionplus"

urlpatterns = [
    path("", views.session_list, name="sessions"),
    path("end-others/", views.end_others, name="end_others"),
    path("<str:identifier>/end/", views.end_one, name="end"),
]
