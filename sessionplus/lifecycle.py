"""
A session as one request sees it: ended as it loads when it timed out or changed hands.

The middleware builds ``request.session`` from a subclass of the engine's ``SessionStore``
(``request_store_class``) that talks to storage only through the engine's own methods and
adds three things: a just-loaded session past a timeout or binding is ended before the
view reads it; store outages are recorded for the middleware's 503; and ``session_created``
and ``session_ended`` are sent from here and nowhere else. For one of Django's own engines
it also reads through to ``SESSIONPLUS_PREVIOUS_ENGINE`` (a rollback; sessionplus's engines
do that themselves).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from sessionplus.backends.base import SessionPlusBase
from sessionplus.client import client_ip, ip_network, user_agent
from sessionplus.conf import conf
from sessionplus.exceptions import SessionStoreUnavailable
from sessionplus.identifiers import log_id
from sessionplus.outage import is_store_outage
from sessionplus.signals import session_created, session_ended

security_logger = logging.getLogger("django.security.SuspiciousSession")


@dataclass
class RequestState:
    """What the middleware learns about a request's session while the request runs."""

    request: HttpRequest
    sender: type[SessionBase]
    outage: BaseException | None = None
    # A stored session was found when the session was first loaded.
    started_live: bool = False
    # A stored session was ended (logout, timeout, binding) during this request.
    ended: bool = False
    # The session cookie came under SESSIONPLUS_PREVIOUS_COOKIE_NAME, this name.
    previous_cookie: str | None = None

    def record_outage(self, exc: BaseException) -> None:
        if self.outage is None:
            self.outage = exc

    def session_ended(self, session_key: str, reason: str) -> None:
        self.ended = True
        session_ended.send(
            sender=self.sender, session_key=session_key, reason=reason, request=self.request
        )

    def session_created(self, session_key: str) -> None:
        session_created.send(sender=self.sender, session_key=session_key, request=self.request)


def _past(session: SessionPlusBase, name: str, seconds: int | None) -> bool:
    if not seconds:
        return False
    elapsed = session.seconds_since(name)
    return elapsed is not None and elapsed >= seconds


def binding_changes(
    session: SessionPlusBase, request: HttpRequest, bind: tuple[str, ...]
) -> list[str]:
    """Return what ``bind`` (``SESSIONPLUS_BIND``) ties the session to that the request changed."""
    if not bind:
        return []
    metadata = session.metadata
    changes = []
    # Nothing recorded yet (a session written outside the middleware) binds nothing.
    if (
        "user_agent" in bind
        and metadata.user_agent is not None
        and metadata.user_agent != user_agent(request)
    ):
        changes.append("user agent")
    if (
        "ip_network" in bind
        and metadata.ip is not None
        and ip_network(metadata.ip) != ip_network(client_ip(request))
    ):
        changes.append("IP network")
    return changes


def end_reason(session: SessionPlusBase, request: HttpRequest) -> str | None:
    """Return why a just-loaded session must end now, or None to keep it."""
    # Each setting read once, and timestamps compared as numbers: this runs on every
    # request that reads a stored session.
    absolute, idle = conf.SESSIONPLUS_ABSOLUTE_TIMEOUT, conf.SESSIONPLUS_IDLE_TIMEOUT
    if _past(session, "created_at", absolute):
        return "absolute"
    if _past(session, "last_activity", idle):
        return "idle"
    changes = binding_changes(session, request, conf.SESSIONPLUS_BIND)
    if changes:
        security_logger.warning(
            "Session %s ended: its %s changed.",
            log_id(session.session_key),
            " and ".join(changes),
        )
        return "hijack"
    return None


def _adoption() -> Any:
    # Imported on first use: adoption needs the engines and the app registry.
    from sessionplus.backends import adoption

    return adoption


@cache
def request_store_class(store_class: type[SessionBase]) -> type[SessionBase]:
    """
    Return the request-bound subclass of an engine's ``SessionStore``.

    It keeps the engine's name so that everything derived from it (the signing salt above
    all) stays the same: sessions written with the plain engine class load through it.
    """
    checks_on_load = issubclass(store_class, SessionPlusBase)

    class RequestSessionStore(store_class):  # type: ignore[valid-type,misc]
        def __init__(self, session_key: str | None = None, state: RequestState | None = None):
            self._request_state = state
            self._admitted = False
            super().__init__(session_key)

        @contextmanager
        def _reporting_outage(self) -> Iterator[None]:
            try:
                yield
            except Exception as exc:
                if not is_store_outage(exc):
                    raise
                unavailable = (
                    exc
                    if isinstance(exc, SessionStoreUnavailable)
                    else SessionStoreUnavailable(f"Session store unavailable: {exc}")
                )
                # Whatever reads the session later in this request (other middleware,
                # an error page) sees it empty instead of waiting on the store again;
                # the middleware answers 503 and writes nothing.
                self._session_cache = {}
                if self._request_state is not None:
                    self._request_state.record_outage(unavailable)
                if unavailable is exc:
                    raise
                raise unavailable from exc

        # Loading: ended before the view sees it when it timed out or changed hands.

        def _end_reason(self, data: dict[str, Any]) -> str | None:
            self._admitted = True
            state = self._request_state
            if state is None or self.session_key is None:
                return None
            state.started_live = True
            if not checks_on_load:
                return None
            self._session_cache = data  # metadata reads the session, loaded by now
            return end_reason(self, state.request)

        def _ended(self, session_key: str | None, reason: str) -> None:
            if session_key is not None and self._request_state is not None:
                self._request_state.session_ended(session_key, reason)

        def load(self) -> dict[str, Any]:
            key = self.session_key
            with self._reporting_outage():
                data = super().load()
                if not checks_on_load and self.session_key is None and key is not None:
                    data = _adoption().adopt(self, key, super().load)
            reason = self._end_reason(data)
            if reason is None:
                return data
            session_key = self.session_key
            super().flush()
            self._ended(session_key, reason)
            return {}

        async def aload(self) -> dict[str, Any]:
            # Engines without a native aload run load() in a thread, which ends the
            # session there already.
            self._admitted = False
            key = self.session_key
            with self._reporting_outage():
                data = await super().aload()
                if self._admitted:
                    return data
                if not checks_on_load and self.session_key is None and key is not None:
                    data = await _adoption().aadopt(self, key, super().load)
            reason = self._end_reason(data)
            if reason is None:
                return data
            session_key = self.session_key
            await super().aflush()
            self._ended(session_key, reason)
            return {}

        # Ending on request: logout, or login as somebody else.

        def flush(self) -> None:
            session_key = self.session_key
            if not checks_on_load:  # sessionplus's engines do this in their own flush()
                _adoption().end_in_previous(self)
            super().flush()
            self._ended(session_key, "logout")

        async def aflush(self) -> None:
            session_key = self.session_key
            if not checks_on_load:
                await _adoption().aend_in_previous(self)
            await super().aflush()
            self._ended(session_key, "logout")

        # Every other storage call, for outages a view runs into.

        def exists(self, session_key: str) -> bool:
            with self._reporting_outage():
                return super().exists(session_key)

        async def aexists(self, session_key: str) -> bool:
            with self._reporting_outage():
                return await super().aexists(session_key)

        def create(self) -> None:
            with self._reporting_outage():
                super().create()

        async def acreate(self) -> None:
            with self._reporting_outage():
                await super().acreate()

        def save(self, must_create: bool = False) -> None:
            with self._reporting_outage():
                super().save(must_create)

        async def asave(self, must_create: bool = False) -> None:
            with self._reporting_outage():
                await super().asave(must_create)

        def delete(self, session_key: str | None = None) -> None:
            with self._reporting_outage():
                super().delete(session_key)

        async def adelete(self, session_key: str | None = None) -> None:
            with self._reporting_outage():
                await super().adelete(session_key)

        # A login's new key: the db engines move the row with a statement of their own.

        def cycle_key(self) -> None:
            with self._reporting_outage():
                super().cycle_key()

        async def acycle_key(self) -> None:
            with self._reporting_outage():
                await super().acycle_key()

    RequestSessionStore.__name__ = store_class.__name__
    RequestSessionStore.__qualname__ = store_class.__qualname__
    RequestSessionStore.__module__ = store_class.__module__
    return RequestSessionStore
