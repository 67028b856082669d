"""
A session's life within a request: kept or ended as it loads, touched, and its signals.

The store serving a request reports here through its hooks (``LifecycleHooks``, which
every sessionplus engine has): a just-loaded session past a timeout or whose binding
changed is ended before the view reads it, and ``session_created`` and ``session_ended``
are sent from here and nowhere else. The middleware asks here which write a response
makes: a save, a touch, or none.
"""

from __future__ import annotations

import logging
from functools import cache

from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from sessionplus.backends.base import Lifecycle, LifecycleHooks, SessionPlusBase
from sessionplus.client import client_ip, ip_network, user_agent
from sessionplus.conf import conf
from sessionplus.identifiers import log_id
from sessionplus.signals import session_created, session_ended

security_logger = logging.getLogger("django.security.SuspiciousSession")


@cache
def hooked(store_class: type[SessionBase]) -> type[LifecycleHooks]:
    """
    Return ``store_class`` with lifecycle hooks: itself for a sessionplus engine, else
    (Django's own engines) a subclass with the hooks in front of its storage methods.

    The subclass keeps the engine's names, because Django derives its signing salt from
    the class name: sessions written by the plain engine load through it.
    """
    if issubclass(store_class, LifecycleHooks):
        return store_class
    namespace = {
        "__module__": store_class.__module__,
        "__qualname__": store_class.__qualname__,
        "signal_sender": store_class,
    }
    return type(store_class.__name__, (LifecycleHooks, store_class), namespace)


# Loading ------------------------------------------------------------------------------


def loaded(store: LifecycleHooks, request: HttpRequest) -> str | None:
    """Note that the store's session loaded live; return why it must end now, or None."""
    store.started_live = True
    if not isinstance(store, SessionPlusBase):  # Django's engines record no metadata
        return None
    return end_reason(store, request)


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
    bind = conf.SESSIONPLUS_BIND
    if not (absolute or idle or bind):  # the defaults: nothing can end it here
        return None
    if _past(session, "created_at", absolute):
        return "absolute"
    if _past(session, "last_activity", idle):
        return "idle"
    changes = binding_changes(session, request, bind)
    if changes:
        security_logger.warning(
            "Session %s ended: its %s changed.",
            log_id(session.session_key),
            " and ".join(changes),
        )
        return "hijack"
    return None


# Writing ------------------------------------------------------------------------------


def write_to_make(session: SessionBase) -> str | None:
    """
    Return the store method a successful response calls, "save" or "touch", or None to
    write nothing.

    A modified session is saved; an unmodified one that was read is touched (expiry and
    last activity only) at most once per ``SESSIONPLUS_TOUCH_INTERVAL``, and on every
    request under ``SESSION_SAVE_EVERY_REQUEST`` (saved there on Django's engines, which
    cannot touch).
    """
    if session.is_empty():
        return None
    if session.modified:
        return "save"
    if not session.accessed:
        return None
    if not isinstance(session, SessionPlusBase):  # Django's engines cannot touch
        return "save" if conf.SESSION_SAVE_EVERY_REQUEST else None
    if conf.SESSION_SAVE_EVERY_REQUEST:
        return "touch"
    return "touch" if touch_due(session) else None


def touch_due(session: SessionPlusBase) -> bool:
    """Return whether an unmodified, read session should refresh its expiry now."""
    interval = conf.SESSIONPLUS_TOUCH_INTERVAL
    if interval is None:
        if conf.SESSIONPLUS_IDLE_TIMEOUT is None:
            return False
        interval = 0  # the idle timeout needs last activity recorded on every request
    idle = session.seconds_since("last_activity")
    return idle is None or idle >= interval


# Signals ------------------------------------------------------------------------------


def ended(store: LifecycleHooks, session_key: str, reason: str) -> None:
    """Record that the request ended the store's session and send ``session_ended``."""
    store.ended = True
    send_ended(store.signal_sender or type(store), session_key, reason, store.request)


def send_ended(
    sender: type[SessionBase], session_key: str, reason: str, request: HttpRequest | None
) -> None:
    """Send ``session_ended`` for one session (``reason``: see ``sessionplus.signals``)."""
    session_ended.send(sender=sender, session_key=session_key, reason=reason, request=request)


def written(store: LifecycleHooks, cookie_key: str | None) -> None:
    """Send ``session_created`` when the response's write stored a new session."""
    if store.session_key != cookie_key and (store.ended or not store.started_live):
        session_created.send(
            sender=store.signal_sender or type(store),
            session_key=store.session_key,
            request=store.request,
        )


# The frame (backends/base.py) reports here; it cannot import this module, which imports it.
LifecycleHooks.lifecycle = Lifecycle(loaded=loaded, ended=ended)
