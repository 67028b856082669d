"""
A user's sessions on every device: list them, end one, end the others, end them all.

Works on the engines that keep a per-user index (db, cached_db, redis); the others raise
``SessionsNotEnumerable``. Sessions are named by ``identifiers.public_id()``, never by
their key. Each function has an async twin (``a`` prefix) awaiting the engine's own async
methods; what they decide is shared, only the storage calls differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from sessionplus import lifecycle
from sessionplus.backends.metadata import SessionMetadata
from sessionplus.exceptions import SessionsNotEnumerable
from sessionplus.identifiers import public_id

Pick = Callable[[list[str]], list[str]]

__all__ = [
    "UserSession",
    "aend_all_sessions",
    "aend_other_sessions",
    "aend_session",
    "auser_sessions",
    "describe_device",
    "end_all_sessions",
    "end_other_sessions",
    "end_session",
    "user_sessions",
]


@dataclass(frozen=True)
class UserSession:
    """One live session of a user, as the "Your sessions" page shows it."""

    id: str  # identifiers.public_id() of the key: safe to show, link and log
    created_at: datetime | None
    last_activity: datetime | None
    ip: str | None
    user_agent: str | None
    device: str  # browser and OS parsed from user_agent, or user_agent itself
    is_current: bool  # the session of the request the list was made for


def describe_device(user_agent: str | None) -> str:
    """
    Return "Browser version on OS" for a user agent, parsed with ``ua-parser``.

    Without the optional ``sessionplus[ua]`` extra, or for a user agent it does not
    recognise, return the user agent as recorded ("" when none was).
    """
    if not user_agent:
        return ""
    try:
        import ua_parser
    except ImportError:
        return user_agent
    result = ua_parser.parse(user_agent)
    if result.user_agent is None:
        return user_agent
    browser = _named(result.user_agent.family, result.user_agent.major)
    return f"{browser} on {_named(result.os.family, result.os.major)}" if result.os else browser


def _named(family: str, major: str | None) -> str:
    return f"{family} {major}" if major else family


def enumerable_engine() -> Any:
    """Return the ``SessionStore`` of ``SESSION_ENGINE``; raise unless it can list by user."""
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store_class, "user_session_metadata"):
        raise SessionsNotEnumerable(
            f"The session engine {settings.SESSION_ENGINE!r} cannot list the sessions of a "
            "user; use sessionplus.backends.db, cached_db or redis."
        )
    return store_class


def _user_id(user: Any) -> str | None:
    # As django.contrib.auth.login() stores it in the session, and so in the index.
    return user._meta.pk.value_to_string(user) if user.is_authenticated else None


def _current_key(request: HttpRequest | None) -> str | None:
    session = getattr(request, "session", None)
    return getattr(session, "session_key", None)


def newest_first(found: dict[str, SessionMetadata], by: str = "last_activity") -> list[str]:
    """Return the keys of ``found`` by timestamp ``by``, most recent first (ties broken by key)."""
    return sorted(found, key=lambda key: (_seconds(getattr(found[key], by)), key), reverse=True)


def _seconds(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


def _records(found: dict[str, SessionMetadata], current: str | None) -> list[UserSession]:
    # This device first, then the most recently used.
    keys = newest_first(found)
    keys.sort(key=lambda key: key != current)
    return [
        UserSession(
            id=public_id(key),
            created_at=found[key].created_at,
            last_activity=found[key].last_activity,
            ip=found[key].ip,
            user_agent=found[key].user_agent,
            device=describe_device(found[key].user_agent),
            is_current=key == current,
        )
        for key in keys
    ]


def _matching(keys: list[str], identifier: str) -> list[str]:
    return [key for key in keys if public_id(key) == identifier]


def _others(keys: list[str], keep: str | None) -> list[str]:
    return [key for key in keys if key != keep]


def _ended(store_class: Any, keys: list[str], reason: str, request: HttpRequest | None) -> int:
    for key in keys:
        lifecycle.send_ended(store_class, key, reason, request)
    return len(keys)


# Sync -------------------------------------------------------------------------------


def user_sessions(user: Any, request: HttpRequest | None = None) -> list[UserSession]:
    """
    Return the live sessions of ``user``, the current request's first, then by last use.

    Costs one query (db, cached_db) or two round trips (redis), whatever the count.
    """
    store_class = enumerable_engine()
    user_id = _user_id(user)
    found = {} if user_id is None else store_class.user_session_metadata(user_id)
    return _records(found, _current_key(request))


def end_keys(store_class: Any, keys: list[str], reason: str, request: HttpRequest | None) -> int:
    """End the sessions stored under ``keys``, sending ``session_ended``; return how many."""
    for key in keys:
        store_class().delete(key)
    return _ended(store_class, keys, reason, request)


def _end_picked(user: Any, pick: Pick, request: HttpRequest | None) -> int:
    store_class = enumerable_engine()
    user_id = _user_id(user)
    keys = pick(store_class.sessions_for_user(user_id)) if user_id is not None else []
    return end_keys(store_class, keys, "revoked", request)


def end_session(user: Any, identifier: str, request: HttpRequest | None = None) -> bool:
    """End the session of ``user`` named ``identifier``; False when there is none."""
    return bool(_end_picked(user, lambda keys: _matching(keys, identifier), request))


def end_other_sessions(request: HttpRequest) -> int:
    """End every session of the request's user but the request's own; return how many."""
    keep = _current_key(request)
    return _end_picked(request.user, lambda keys: _others(keys, keep), request)


def end_all_sessions(user: Any, request: HttpRequest | None = None) -> int:
    """End every session of ``user``; return how many."""
    return _end_picked(user, list, request)


# Async ------------------------------------------------------------------------------


async def auser_sessions(user: Any, request: HttpRequest | None = None) -> list[UserSession]:
    store_class = enumerable_engine()
    user_id = _user_id(user)
    found = {} if user_id is None else await store_class.auser_session_metadata(user_id)
    return _records(found, _current_key(request))


async def aend_keys(
    store_class: Any, keys: list[str], reason: str, request: HttpRequest | None
) -> int:
    for key in keys:
        await store_class().adelete(key)
    return _ended(store_class, keys, reason, request)


async def _aend_picked(user: Any, pick: Pick, request: HttpRequest | None) -> int:
    store_class = enumerable_engine()
    user_id = _user_id(user)
    keys = pick(await store_class.asessions_for_user(user_id)) if user_id is not None else []
    return await aend_keys(store_class, keys, "revoked", request)


async def aend_session(user: Any, identifier: str, request: HttpRequest | None = None) -> bool:
    return bool(await _aend_picked(user, lambda keys: _matching(keys, identifier), request))


async def aend_other_sessions(request: HttpRequest) -> int:
    keep = _current_key(request)
    user = await request.auser()
    return await _aend_picked(user, lambda keys: _others(keys, keep), request)


async def aend_all_sessions(user: Any, request: HttpRequest | None = None) -> int:
    return await _aend_picked(user, list, request)
