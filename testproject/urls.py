from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from sessionplus.exceptions import SessionsNotEnumerable
from sessionplus.sessions import enumerable_engine
from testproject import views

urlpatterns = [
    path("", views.home, name="home"),
    path("cart/add/", views.cart_add, name="cart_add"),
    path("cart/remove/", views.cart_remove, name="cart_remove"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="home"), name="logout"),
    path("admin/", admin.site.urls),
]

# "Your sessions" needs an engine that can list a user's sessions (check sessionplus.W070).
try:
    enumerable_engine()
except SessionsNotEnumerable:
    pass
else:
    urlpatterns.append(path("account/sessions/", include("sessionplus.urls")))
