"""A live site switching to sessionplus and back, with 1,000 signed-in users, none signed out."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from typing import Any

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session as DjangoSession
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.test import Client, TransactionTestCase, override_settings
from django.urls import path
from django.utils import timezone

from sessionplus.backends.adoption import live_sessions
from tests.support.threads import close_thread_connections

USERS = 1000
# Signed in through the test client and checked through it; the rest through the store API.
SAMPLE = range(0, USERS, 25)
BACKEND = "django.contrib.auth.backends.ModelBackend"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.user.pk, "cart": request.session.get("cart")})


def add_to_cart(request: HttpRequest) -> JsonResponse:
    request.session["cart"] = [*request.session.get("cart", []), request.POST["item"]]
    return JsonResponse({"cart": request.session["cart"]})


urlpatterns = [path("whoami/", whoami), path("cart/", add_to_cart)]


def stock(engine: str) -> override_settings:
    """Django's own middleware and engine: the site before the switch (and after rollback)."""
    return override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware", AUTH],
        SESSION_ENGINE=engine,
    )


def switched(engine: str, previous: str) -> override_settings:
    return override_settings(
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["sessionplus.middleware.SessionMiddleware", AUTH],
        SESSION_ENGINE=engine,
        SESSIONPLUS_PREVIOUS_ENGINE=previous,
    )


class LiveSwitchContract:
    """1,000 users signed in on Django's engine stay signed in through the switch and back."""

    previous: str
    current: str

    def setUp(self) -> None:
        super().setUp()
        password = make_password("secret")  # hashed once: the same for every user
        User.objects.bulk_create(User(username=f"user{n}", password=password) for n in range(USERS))
        self.users = list(User.objects.order_by("pk"))
        self.old = import_module(self.previous).SessionStore
        self.new = import_module(self.current).SessionStore
        self.keys: dict[int, str] = {}
        self.carts: dict[int, list[Any]] = {}

    # The site before the switch -------------------------------------------------------------

    def sign_in_everyone(self) -> None:
        with stock(self.previous):
            for n in SAMPLE:  # a real login, through Django's middleware and engine
                client = Client()
                client.force_login(self.users[n], backend=BACKEND)
                self.keys[n] = client.cookies["sessionid"].value
                client.post("/cart/", {"item": n})
                self.carts[n] = [str(n)]
            sessions = {}
            for n, user in enumerate(self.users):
                if n not in self.keys:
                    self.keys[n] = self.old._get_new_session_key(self.old())
                    self.carts[n] = [str(n)]
                    sessions[self.keys[n]] = {
                        SESSION_KEY: str(user.pk),
                        BACKEND_SESSION_KEY: BACKEND,
                        HASH_SESSION_KEY: user.get_session_auth_hash(),
                        "cart": self.carts[n],
                    }
            self.bulk_store(sessions)
            self.assert_signed_in(SAMPLE[:3])

    def bulk_store(self, sessions: dict[str, dict[str, Any]]) -> None:
        """Store sessions as Django's engine does, in one go."""
        raise NotImplementedError

    # Checks -----------------------------------------------------------------------------------

    def assert_signed_in(self, numbers: Any) -> None:
        for n in numbers:
            client = Client()
            client.cookies["sessionid"] = self.keys[n]
            body = client.get("/whoami/").json()
            assert body == {"user": self.users[n].pk, "cart": self.carts[n]}, n

    def assert_all_in(self, store_class: Any, gone_from: Any) -> None:
        found = {
            session.session_key: session
            for batch in live_sessions(store_class, USERS)
            for session in batch
        }
        assert len(found) == USERS
        for n, user in enumerate(self.users):
            session = found[self.keys[n]]
            assert session.data[SESSION_KEY] == str(user.pk)
            assert session.data["cart"] == self.carts[n]
            assert session.expires_at > timezone.now().timestamp() + 3600
        assert list(live_sessions(gone_from, USERS)) == []

    def in_threads(self, *jobs: Any) -> None:
        def run(job: Any) -> None:
            try:
                job()
            finally:
                close_thread_connections()

        with ThreadPoolExecutor(len(jobs)) as pool:
            for future in [pool.submit(run, job) for job in jobs]:
                future.result()

    def move_while_shopping(self, source: str, target: str, busy: list[int], item: str) -> None:
        """Move every session from ``source`` to ``target`` while ``busy`` users add ``item``."""
        start = threading.Barrier(3)

        def move() -> None:
            start.wait()
            out = io.StringIO()
            call_command(
                "migratesessions_plus",
                "--from",
                source,
                "--to",
                target,
                "--batch-size",
                "50",
                stdout=out,
            )
            assert out.getvalue().startswith("Moved ")

        def shop(numbers: list[int]) -> Any:
            def requests() -> None:
                start.wait()
                for n in numbers:
                    client = Client()
                    client.cookies["sessionid"] = self.keys[n]
                    body = client.post("/cart/", {"item": item}).json()
                    assert body == {"cart": [*self.carts[n], item]}, n

            return requests

        self.in_threads(move, shop(busy[::2]), shop(busy[1::2]))
        for n in busy:
            self.carts[n] = [*self.carts[n], item]

    # The switch and the rollback ----------------------------------------------------------------

    def test_every_user_stays_signed_in_through_the_switch_and_the_rollback(self):
        self.sign_in_everyone()
        busy = [n for n in range(USERS) if n % 7 == 3][:60]
        with switched(self.current, self.previous):
            # Read-through: the sample's first requests on sessionplus adopt their sessions.
            self.assert_signed_in(SAMPLE)
            # The bulk move, while signed-in users keep adding to their carts.
            self.move_while_shopping(self.previous, self.current, busy, "x")
            # Anything the move met after a request adopted it was kept, not overwritten.
            self.assert_all_in(self.new, gone_from=self.old)
            self.assert_signed_in([*SAMPLE, *busy[:5]])

        # Rollback: Django's engine behind sessionplus's middleware, reading through to
        # sessionplus's engine; the same command moves the rest back under traffic.
        with switched(self.previous, self.current):
            self.assert_signed_in(SAMPLE[::2])
            self.move_while_shopping(self.current, self.previous, busy, "y")
            self.assert_all_in(self.old, gone_from=self.new)
        with stock(self.previous):
            self.assert_signed_in([*SAMPLE, *busy[:5]])


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="concurrent writers need a real database server (DATABASE_URL=postgres://…)",
)
class DjangoDBToSessionplusDBTests(LiveSwitchContract, TransactionTestCase):
    previous = "django.contrib.sessions.backends.db"
    current = "sessionplus.backends.db"

    def bulk_store(self, sessions: dict[str, dict[str, Any]]) -> None:
        store = self.old()
        expire_date = store.get_expiry_date()
        DjangoSession.objects.bulk_create(
            DjangoSession(session_key=key, session_data=store.encode(data), expire_date=expire_date)
            for key, data in sessions.items()
        )


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis")
class DjangoCacheToSessionplusRedisTests(LiveSwitchContract, TransactionTestCase):
    previous = "django.contrib.sessions.backends.cache"
    current = "sessionplus.backends.redis"

    def bulk_store(self, sessions: dict[str, dict[str, Any]]) -> None:
        store = self.old()
        caches["redis"].set_many(
            {store.cache_key_prefix + key: data for key, data in sessions.items()},
            store.get_expiry_age(),
        )
