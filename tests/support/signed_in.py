"""Real logins through the middleware, for the "Your sessions" API, pages and receivers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseBase
from django.test import Client

from sessionplus.signals import session_ended
from tests.support.engines import ENGINES, Engine, use_engine

if TYPE_CHECKING:
    from tests.backends.contract import Calls

FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
PASSWORD = "correct horse battery staple"


class SignedInMixin:
    """Users and real logins through the middleware on the engine under test."""

    engine: Engine = ENGINES["db"]

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        use_engine(self, self.engine, "tests.urls_sessions")
        self.alice = User.objects.create_user("alice", password=PASSWORD)
        self.bob = User.objects.create_user("bob", password=PASSWORD)
        self.ended: list[dict[str, Any]] = []
        receiver = lambda **kwargs: self.ended.append(kwargs)  # noqa: E731
        session_ended.connect(receiver, weak=False)
        self.addCleanup(session_ended.disconnect, receiver)  # type: ignore[attr-defined]

    def signed_in(self, user: User, user_agent: str = FIREFOX, **extra: Any) -> Client:
        client = Client(HTTP_USER_AGENT=user_agent, **extra)
        response = client.post("/login/", {"username": user.username, "password": PASSWORD})
        assert response.status_code == 200, response.content
        return client

    @staticmethod
    def key_of(client: Client) -> str:
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    @staticmethod
    def who(client: Client) -> str:
        return client.get("/whoami/").content.decode()

    def request_of(self, client: Client, user: User) -> HttpRequest:
        """A request as that browser's next one looks to a view: its session and user."""
        request = HttpRequest()
        request.session = self.engine.store_class(self.key_of(client))
        request.user = user

        async def auser() -> User:  # what AuthenticationMiddleware attaches
            return user

        request.auser = auser
        return request


def replayed_after_logout(call: Calls, client: Any, old: str) -> HttpResponseBase:
    """Log out, send the old session cookie again, and return the response to a read."""
    assert call.get(client, "/logout/").status_code == 200
    client.cookies.clear()
    client.cookies[settings.SESSION_COOKIE_NAME] = old
    return call.get(client, "/read/")
