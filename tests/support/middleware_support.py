"""
What the middleware tests share: driving requests in sync or async mode, and engines.

Every behaviour mixin runs twice per engine: once through Django's ``Client`` (the WSGI
handler, the middleware's ``__call__``) and once through ``AsyncClient`` (the ASGI
handler, ``__acall__``), so each test has its async twin without being written twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session as DjangoSession
from django.core.cache import caches
from django.dispatch import Signal
from django.http import HttpResponse
from django.test import AsyncClient, Client

from sessionplus.models import Session as SessionPlusSession
from tests.support import memory_engine
from tests.support.engines import Engine, use_engine

URLCONF = "tests.urls_middleware"
COOKIE = "sessionid"


class SyncRequests:
    """Send requests through Django's test ``Client``: the middleware runs sync."""

    mode = "sync"

    def make_client(self, **kwargs: Any) -> Client:
        return Client(**kwargs)

    def send(
        self, client: Any, method: str, path: str, data: Any, ip: str | None, headers: dict
    ) -> HttpResponse:
        extra = {"REMOTE_ADDR": ip} if ip else {}
        return getattr(client, method)(path, data, headers=headers, **extra)


class AddressedAsyncClient(AsyncClient):
    """An AsyncClient whose requests come from ``address`` (the ASGI scope's client)."""

    address = "127.0.0.1"

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        # AsyncClient turns extra keyword arguments into headers; the peer address
        # lives in the scope.
        scope = super()._base_scope(**request)
        scope["client"] = [self.address, 0]
        return scope


class AsyncRequests:
    """Send requests through Django's ``AsyncClient``: the middleware runs async."""

    mode = "async"

    def make_client(self, **kwargs: Any) -> AddressedAsyncClient:
        return AddressedAsyncClient(**kwargs)

    def send(
        self, client: Any, method: str, path: str, data: Any, ip: str | None, headers: dict
    ) -> HttpResponse:
        client.address = ip or AddressedAsyncClient.address
        return async_to_sync(getattr(client, method))(path, data, headers=headers)


class MiddlewareTestMixin:
    """Set the engine and URLconf up around each test and give tests a browser."""

    engine: Engine
    mode: str
    extra_settings: dict[str, Any] = {}
    make_client: Callable[..., Any]
    send: Callable[..., HttpResponse]

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        use_engine(self, self.engine, URLCONF, **self.extra_settings)
        memory_engine.reset()
        caches["default"].clear()
        for name in self.session_files():
            os.remove(os.path.join(settings.SESSION_FILE_PATH, name))
        self.browser = self.make_client()

    def get(self, path: str, data: Any = None, **kwargs: Any) -> HttpResponse:
        return self.request("get", path, data, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> HttpResponse:
        return self.request("post", path, data, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        data: Any = None,
        *,
        ip: str | None = None,
        headers: dict | None = None,
        client: Any = None,
    ) -> HttpResponse:
        return self.send(client or self.browser, method, path, data, ip, headers or {})

    # The session, seen from outside the request ------------------------------------

    @property
    def store_class(self) -> Any:
        return self.engine.store_class

    def stored(self, session_key: str) -> bool:
        return bool(session_key) and self.store_class().exists(session_key)

    def stored_session(self, session_key: str) -> Any:
        return self.store_class(session_key)

    def record_count(self) -> int:
        """Count every stored session, whatever its key."""
        if self.engine.name == "django_db":
            return DjangoSession.objects.count()
        if self.engine.name in ("db", "cached_db"):
            return SessionPlusSession.objects.count()
        if self.engine.name == "memory":
            return len(memory_engine.RECORDS)
        if self.engine.name == "file":
            return len(self.session_files())
        if self.engine.name == "redis":
            from django_redis import get_redis_connection

            return get_redis_connection(settings.SESSIONPLUS_REDIS_ALIAS).dbsize()
        # Cache engines in the test settings use LocMemCache.
        return len(caches["default"]._cache)

    @staticmethod
    def session_files() -> list[str]:
        return [
            name
            for name in os.listdir(settings.SESSION_FILE_PATH)
            if name.startswith(settings.SESSION_COOKIE_NAME)
        ]

    def session_key(self) -> str:
        return self.browser.cookies[COOKIE].value

    def set_cookie(self, value: str) -> None:
        self.browser.cookies[COOKIE] = value

    def create_user(self, username: str = "ada") -> Any:
        return get_user_model().objects.create_user(username, password="secret")


@contextmanager
def received(signal: Signal) -> Iterator[list[dict[str, Any]]]:
    """Collect the keyword arguments of every send of ``signal``."""
    sent: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        sent.append(kwargs)

    signal.connect(receiver, weak=False)
    try:
        yield sent
    finally:
        signal.disconnect(receiver)


def vary(response: HttpResponse) -> list[str]:
    return [value.strip() for value in response.headers.get("Vary", "").split(",") if value]


def cache_control(response: HttpResponse) -> set[str]:
    return {
        value.strip() for value in response.headers.get("Cache-Control", "").split(",") if value
    }
