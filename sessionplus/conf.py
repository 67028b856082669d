"""
Every sessionplus setting with its type and default, and the Django session settings read
on every request, each resolved once and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    "SESSIONPLUS_IDLE_TIMEOUT": None,
    "SESSIONPLUS_ABSOLUTE_TIMEOUT": None,
    "SESSIONPLUS_TOUCH_INTERVAL": None,
    "SESSIONPLUS_BIND": (),
    "SESSIONPLUS_TRUSTED_PROXIES": 0,
    "SESSIONPLUS_REDIS_ALIAS": "default",
    "SESSIONPLUS_REDIS_KEY_PREFIX": "sessionplus:",
    "SESSIONPLUS_COOKIE_CHECK_NAME": "sessionplus_cookiecheck",
    "SESSIONPLUS_COOKIE_PARTITIONED": False,
    "SESSIONPLUS_MAX_SIZE": 256 * 1024,
    "SESSIONPLUS_PREVIOUS_ENGINE": None,
    "SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE": False,
    "SESSIONPLUS_MAX_SESSIONS_PER_USER": None,
    "SESSIONPLUS_MAX_SESSIONS_POLICY": "end_oldest",
    "SESSIONPLUS_PREVIOUS_COOKIE_NAME": None,
}


# Django's own settings that sessionplus reads on the request path, served from the same
# cache: each read through Django's settings object runs its Python __getattribute__
# (about 3,400 CPU instructions), and a request read them eight times or more.
DJANGO_SETTINGS = frozenset(
    {
        "SESSION_CACHE_ALIAS",
        "SESSION_COOKIE_AGE",
        "SESSION_COOKIE_DOMAIN",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_PATH",
        "SESSION_COOKIE_SAMESITE",
        "SESSION_COOKIE_SECURE",
        "SESSION_SAVE_EVERY_REQUEST",
        "SESSION_SERIALIZER",
        "USE_TZ",
    }
)


def seconds(value: Any) -> Any:
    """Return a ``timedelta`` as whole seconds, as ``set_expiry`` accepts; anything else as is."""
    return int(value.total_seconds()) if isinstance(value, timedelta) else value


def _as_tuple(value: Any) -> Any:
    # A wrong type is left as is for the system check to report.
    return tuple(value) if isinstance(value, (list, tuple)) else value


NORMALISE: dict[str, Callable[[Any], Any]] = {
    "SESSIONPLUS_IDLE_TIMEOUT": seconds,
    "SESSIONPLUS_ABSOLUTE_TIMEOUT": seconds,
    "SESSIONPLUS_TOUCH_INTERVAL": seconds,
    "SESSIONPLUS_BIND": _as_tuple,
}


class Settings:
    """
    Expose sessionplus settings (and ``DJANGO_SETTINGS``) as attributes, each read from
    Django's settings once.

    Reading a setting the project does not define costs microseconds in Django's
    ``LazySettings``, and one it defines a few thousand instructions, so the first read
    caches the value on the instance and later reads are plain attribute lookups.
    ``setting_changed`` (sent by ``override_settings``) drops the cached value.
    """

    SESSIONPLUS_IDLE_TIMEOUT: int | None
    SESSIONPLUS_ABSOLUTE_TIMEOUT: int | None
    SESSIONPLUS_TOUCH_INTERVAL: int | None
    SESSIONPLUS_BIND: tuple[str, ...]
    SESSIONPLUS_TRUSTED_PROXIES: int
    SESSIONPLUS_REDIS_ALIAS: str
    SESSIONPLUS_REDIS_KEY_PREFIX: str
    SESSIONPLUS_COOKIE_CHECK_NAME: str
    SESSIONPLUS_COOKIE_PARTITIONED: bool
    SESSIONPLUS_MAX_SIZE: int
    SESSIONPLUS_PREVIOUS_ENGINE: str | None
    SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE: bool
    SESSIONPLUS_MAX_SESSIONS_PER_USER: int | None
    SESSIONPLUS_MAX_SESSIONS_POLICY: str  # "end_oldest" or "refuse"
    SESSIONPLUS_PREVIOUS_COOKIE_NAME: str | None

    # Django's, as django.conf.global_settings defines them.
    SESSION_CACHE_ALIAS: str
    SESSION_COOKIE_AGE: int
    SESSION_COOKIE_DOMAIN: str | None
    SESSION_COOKIE_HTTPONLY: bool
    SESSION_COOKIE_NAME: str
    SESSION_COOKIE_PATH: str
    SESSION_COOKIE_SAMESITE: Literal["Lax", "Strict", "None", False] | None
    SESSION_COOKIE_SECURE: bool
    SESSION_SAVE_EVERY_REQUEST: bool
    SESSION_SERIALIZER: str
    USE_TZ: bool

    def __getattr__(self, name: str) -> Any:
        if name in DJANGO_SETTINGS:
            value = getattr(settings, name)
        elif name in DEFAULTS:
            value = getattr(settings, name, DEFAULTS[name])
            if name in NORMALISE:
                value = NORMALISE[name](value)
        else:
            raise AttributeError(f"{name!r} is not a setting sessionplus reads.")
        setattr(self, name, value)
        return value


conf = Settings()


# Connected where the cache lives, so no value can be cached before the receiver exists.
@receiver(setting_changed)
def reset(*, setting: str, **kwargs: Any) -> None:
    """Drop the cached value of a setting ``override_settings`` changed."""
    conf.__dict__.pop(setting, None)
