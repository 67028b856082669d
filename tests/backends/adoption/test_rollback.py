"""
Rolling back: Django's engine behind sessionplus's middleware reads through to sessionplus's.

With ``SESSION_ENGINE`` set back to Django's engine and ``SESSIONPLUS_PREVIOUS_ENGINE`` to
the sessionplus engine it replaces, the middleware's store adopts a session Django's engine
does not have yet, so the move back (``migratesessions_plus``) runs while nobody is signed out.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import SimpleTestCase, TestCase, override_settings

from sessionplus.backends.adoption import read_session
from sessionplus.lifecycle import hooked
from tests.backends.adoption import DJANGO, PLUS, pair_matrix
from tests.backends.contract import Calls, with_twins


@with_twins
class RollbackContract:
    """A sessionplus engine before, Django's engine of the same kind now."""

    previous: str
    current: str
    settings: dict[str, Any] = {}

    def setUp(self) -> None:
        super().setUp()
        rolled_back = override_settings(
            ROOT_URLCONF="tests.urls",
            MIDDLEWARE=["sessionplus.middleware.SessionMiddleware"],
            SESSION_ENGINE=self.current,
            SESSIONPLUS_PREVIOUS_ENGINE=self.previous,
            **self.settings,
        )
        rolled_back.enable()
        self.addCleanup(rolled_back.disable)
        self.plus = import_module(self.previous).SessionStore
        self.django = import_module(self.current).SessionStore
        # What the middleware builds request.session from.
        self.request_store = hooked(self.django)

    def plus_session(self) -> str:
        session = self.plus()
        session.update({SESSION_KEY: "7", "cart": [1, 2]})
        session.save()
        return session.session_key

    def test_a_request_adopts_a_session_of_sessionplus_into_djangos_engine(self):
        key = self.plus_session()
        expires_at = read_session(self.plus, key).expires_at
        self.client.cookies[settings.SESSION_COOKIE_NAME] = key
        assert self.client.get("/session-keys/").content == f"{SESSION_KEY},cart".encode()
        assert read_session(self.plus, key) is None
        found = read_session(self.django, key)
        assert found.data == {SESSION_KEY: "7", "cart": [1, 2]}
        assert abs(found.expires_at - expires_at) <= 1
        assert self.django(key)["cart"] == [1, 2]  # Django's engine alone serves it now

    def both_a_load_adopts(self, call: Calls) -> None:
        key = self.plus_session()
        assert call(self.request_store(key), "get", "cart") == [1, 2]
        assert read_session(self.plus, key) is None
        assert self.django(key)["cart"] == [1, 2]

    def both_a_logout_ends_the_session_in_both_engines(self, call: Calls) -> None:
        key = self.plus_session()
        call(self.request_store(key), "flush")
        assert read_session(self.plus, key) is None
        assert dict(self.request_store(key).items()) == {}

    def test_a_key_in_neither_engine_is_no_session(self):
        session = self.request_store("n" * 32)
        assert dict(session.items()) == {}
        assert session.session_key is None


pair_matrix(
    globals(),
    (RollbackContract, TestCase),
    [(PLUS + "db", DJANGO + "db"), (PLUS + "cached_db", DJANGO + "cached_db")],
)
pair_matrix(
    globals(),
    (RollbackContract, SimpleTestCase),
    [(PLUS + "redis", DJANGO + "cache"), (PLUS + "cache", DJANGO + "cache")],
    on_redis=True,
    settings={"SESSION_CACHE_ALIAS": "redis"},
)
