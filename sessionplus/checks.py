"""System checks. Ids are never reused; docs/checks.md lists them."""

from __future__ import annotations

import difflib
import os
from typing import Any, TypeGuard

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.db import DatabaseError, connections, router
from django.db.migrations.loader import MigrationLoader
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from sessionplus.conf import DEFAULTS, conf

SESSIONPLUS_MIDDLEWARE = "sessionplus.middleware.SessionMiddleware"
DJANGO_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
BIND_CHOICES = ("user_agent", "ip_network")


def check_middleware(**kwargs: Any) -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    messages: list[CheckMessage] = []
    if SESSIONPLUS_MIDDLEWARE in middleware and DJANGO_MIDDLEWARE in middleware:
        messages.append(
            Error(
                "Both sessionplus's and Django's SessionMiddleware are installed.",
                hint=f"Remove {DJANGO_MIDDLEWARE!r} from MIDDLEWARE.",
                id="sessionplus.E001",
            )
        )
    engine = getattr(settings, "SESSION_ENGINE", "")
    if (
        engine.startswith("sessionplus.")
        and SESSIONPLUS_MIDDLEWARE not in middleware
        and DJANGO_MIDDLEWARE not in middleware
    ):
        messages.append(
            Warning(
                "SESSION_ENGINE is a sessionplus engine but no session middleware is installed.",
                hint=f"Add {SESSIONPLUS_MIDDLEWARE!r} to MIDDLEWARE.",
                id="sessionplus.W001",
            )
        )
    return messages


def _is_positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []

    def error(name: str, text: str, check_id: str) -> None:
        # The value as the project wrote it, before conf turned a timedelta into seconds.
        value = getattr(settings, name, DEFAULTS[name])
        messages.append(Error(f"{name} should be {text}, not {value!r}.", id=check_id))

    for name, check_id in (
        ("SESSIONPLUS_IDLE_TIMEOUT", "sessionplus.E002"),
        ("SESSIONPLUS_ABSOLUTE_TIMEOUT", "sessionplus.E003"),
        ("SESSIONPLUS_TOUCH_INTERVAL", "sessionplus.E004"),
    ):
        value = getattr(conf, name)
        if value is not None and not _is_positive_int(value):
            error(name, "a positive number of seconds (an int or a timedelta) or None", check_id)

    bind = conf.SESSIONPLUS_BIND
    if not isinstance(bind, tuple) or any(item not in BIND_CHOICES for item in bind):
        error(
            "SESSIONPLUS_BIND",
            f"a tuple of any of {', '.join(map(repr, BIND_CHOICES))}",
            "sessionplus.E005",
        )

    proxies = conf.SESSIONPLUS_TRUSTED_PROXIES
    if not isinstance(proxies, int) or isinstance(proxies, bool) or proxies < 0:
        error("SESSIONPLUS_TRUSTED_PROXIES", "an integer of 0 or more", "sessionplus.E006")

    for name, check_id in (
        ("SESSIONPLUS_REDIS_ALIAS", "sessionplus.E007"),
        ("SESSIONPLUS_REDIS_KEY_PREFIX", "sessionplus.E008"),
        ("SESSIONPLUS_COOKIE_CHECK_NAME", "sessionplus.E009"),
    ):
        value = getattr(conf, name)
        if not isinstance(value, str) or not value:
            error(name, "a non-empty string", check_id)

    if not isinstance(conf.SESSIONPLUS_COOKIE_PARTITIONED, bool):
        error("SESSIONPLUS_COOKIE_PARTITIONED", "True or False", "sessionplus.E010")

    if not _is_positive_int(conf.SESSIONPLUS_MAX_SIZE):
        error("SESSIONPLUS_MAX_SIZE", "a positive integer (bytes)", "sessionplus.E011")
    return messages


FILE_ENGINE = "sessionplus.backends.file"
CACHE_ENGINE = "sessionplus.backends.cache"
CACHED_DB_ENGINE = "sessionplus.backends.cached_db"


def check_file_and_cache_engines(**kwargs: Any) -> list[CheckMessage]:
    engine = getattr(settings, "SESSION_ENGINE", "")
    messages: list[CheckMessage] = []
    if engine == FILE_ENGINE:
        from sessionplus.backends.file import storage_path

        path = storage_path()
        if not os.path.isdir(path):
            messages.append(
                Error(
                    f"The session file directory {path!r} does not exist.",
                    hint="Create it, or point SESSION_FILE_PATH at an existing directory.",
                    id="sessionplus.E020",
                )
            )
        elif not os.access(path, os.W_OK | os.X_OK):
            messages.append(
                Error(
                    f"The session file directory {path!r} is not writable.",
                    hint="Let the user the site runs as write there, or change SESSION_FILE_PATH.",
                    id="sessionplus.E021",
                )
            )
    if engine in (CACHE_ENGINE, CACHED_DB_ENGINE):
        alias = settings.SESSION_CACHE_ALIAS
        backend = settings.CACHES.get(alias, {}).get("BACKEND")
        if backend is None:
            messages.append(
                Error(
                    f"SESSION_CACHE_ALIAS {alias!r} is not an alias in CACHES.",
                    id="sessionplus.E022",
                )
            )
        elif engine == CACHE_ENGINE and backend == "django.core.cache.backends.dummy.DummyCache":
            messages.append(
                Error(
                    f"SESSION_CACHE_ALIAS {alias!r} is a DummyCache, which stores no session.",
                    id="sessionplus.E023",
                )
            )
        elif engine == CACHE_ENGINE and backend == "django.core.cache.backends.locmem.LocMemCache":
            messages.append(
                Warning(
                    f"SESSION_CACHE_ALIAS {alias!r} is a LocMemCache: each process keeps its "
                    "own sessions, and a restart ends them all.",
                    hint="Use a shared cache (Redis, memcached) or another engine in production.",
                    id="sessionplus.W020",
                )
            )
    return messages


REDIS_ENGINE = "sessionplus.backends.redis"
DJANGO_REDIS_BACKEND = "django_redis.cache.RedisCache"
REDIS_TIMEOUT_OPTIONS = ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT")


def check_redis_engine(**kwargs: Any) -> list[CheckMessage]:
    if getattr(settings, "SESSION_ENGINE", "") != REDIS_ENGINE:
        return []
    alias = conf.SESSIONPLUS_REDIS_ALIAS
    config = settings.CACHES.get(alias) if isinstance(alias, str) else None
    if config is None:
        return [
            Error(
                f"SESSIONPLUS_REDIS_ALIAS {alias!r} is not an alias in CACHES.",
                hint=f"Add a {DJANGO_REDIS_BACKEND!r} alias to CACHES and name it here.",
                id="sessionplus.E030",
            )
        ]
    if not _is_django_redis(config.get("BACKEND", "")):
        return [
            Error(
                f"SESSIONPLUS_REDIS_ALIAS {alias!r} is not a django-redis cache.",
                hint=f"The redis engine needs BACKEND {DJANGO_REDIS_BACKEND!r} "
                "(pip install 'sessionplus[redis]').",
                id="sessionplus.E031",
            )
        ]
    options = config.get("OPTIONS") or {}
    missing = [name for name in REDIS_TIMEOUT_OPTIONS if not options.get(name)]
    if missing:
        return [
            Warning(
                f"The {alias!r} cache sets no {' or '.join(missing)}: the session engine's "
                "connections to it get sessionplus's default of 1 second, which may not suit "
                "your network.",
                hint='Set OPTIONS {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1} on it.',
                id="sessionplus.W030",
            )
        ]
    return []


def _is_django_redis(backend: str) -> bool:
    try:
        from django_redis.cache import RedisCache

        backend_class = import_string(backend)
    except ImportError:
        return False
    return isinstance(backend_class, type) and issubclass(backend_class, RedisCache)


def check_session_cookie(**kwargs: Any) -> list[CheckMessage]:
    """Cookie settings browsers reject, and settings the configured engine cannot honour."""
    messages: list[CheckMessage] = []
    name = str(settings.SESSION_COOKIE_NAME).lower()  # browsers match prefixes in any case
    secure = settings.SESSION_COOKIE_SECURE
    if name.startswith("__host-") and (
        not secure or settings.SESSION_COOKIE_PATH != "/" or settings.SESSION_COOKIE_DOMAIN
    ):
        messages.append(
            Error(
                "A __Host- SESSION_COOKIE_NAME needs SESSION_COOKIE_SECURE = True, "
                "SESSION_COOKIE_PATH = '/' and SESSION_COOKIE_DOMAIN = None.",
                hint="Browsers drop a __Host- cookie without them, so no session would stick.",
                id="sessionplus.E040",
            )
        )
    elif name.startswith("__secure-") and not secure:
        messages.append(
            Error(
                "A __Secure- SESSION_COOKIE_NAME needs SESSION_COOKIE_SECURE = True.",
                hint="Browsers drop a __Secure- cookie without it, so no session would stick.",
                id="sessionplus.E041",
            )
        )
    if conf.SESSIONPLUS_COOKIE_PARTITIONED is True and not secure:
        messages.append(
            Error(
                "SESSIONPLUS_COOKIE_PARTITIONED needs SESSION_COOKIE_SECURE = True.",
                hint="Browsers drop a Partitioned cookie that is not Secure.",
                id="sessionplus.E042",
            )
        )
    idle, touch = conf.SESSIONPLUS_IDLE_TIMEOUT, conf.SESSIONPLUS_TOUCH_INTERVAL
    if _is_positive_int(idle) and _is_positive_int(touch) and touch >= idle:
        messages.append(
            Warning(
                "SESSIONPLUS_TOUCH_INTERVAL is not shorter than SESSIONPLUS_IDLE_TIMEOUT: "
                "activity is recorded too seldom, so active sessions end as idle.",
                hint="Use a touch interval of a fraction of the idle timeout (a tenth, say).",
                id="sessionplus.W042",
            )
        )
    messages.extend(_check_engine_features())
    return messages


SIGNED_COOKIES_ENGINE = "sessionplus.backends.signed_cookies"
ENGINE_FEATURES = (
    "SESSIONPLUS_IDLE_TIMEOUT",
    "SESSIONPLUS_ABSOLUTE_TIMEOUT",
    "SESSIONPLUS_TOUCH_INTERVAL",
    "SESSIONPLUS_BIND",
)


def _check_engine_features() -> list[CheckMessage]:
    from sessionplus.backends.base import SessionPlusBase

    used = [name for name in ENGINE_FEATURES if getattr(conf, name)]
    if not used:
        return []
    try:
        store_class = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    except ImportError:  # Django reports a broken SESSION_ENGINE on the first request
        return []
    if not issubclass(store_class, SessionPlusBase):
        return [
            Warning(
                f"{', '.join(used)} {'has' if len(used) == 1 else 'have'} no effect with "
                f"SESSION_ENGINE {settings.SESSION_ENGINE!r}: they need the metadata only "
                "sessionplus's engines record.",
                hint="Use a sessionplus engine, such as 'sessionplus.backends.db'.",
                id="sessionplus.W043",
            )
        ]
    if conf.SESSIONPLUS_BIND and settings.SESSION_ENGINE == SIGNED_COOKIES_ENGINE:
        return [
            Warning(
                "SESSIONPLUS_BIND has no effect with the signed_cookies engine: the cookie "
                "records no IP address or user agent to compare with.",
                hint="Use a server-side sessionplus engine to bind sessions.",
                id="sessionplus.W044",
            )
        ]
    return []


def check_session_cookie_security(**kwargs: Any) -> list[CheckMessage]:
    """The deploy checks Django runs for its own session app and middleware, for ours."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    # Django's own checks (security.W010-W015) already cover these settings there.
    if (
        SESSIONPLUS_MIDDLEWARE not in middleware
        or DJANGO_MIDDLEWARE in middleware
        or "django.contrib.sessions" in settings.INSTALLED_APPS
    ):
        return []
    messages: list[CheckMessage] = []
    if not settings.SESSION_COOKIE_SECURE:
        messages.append(
            Warning(
                "SESSION_COOKIE_SECURE is not True: the session cookie can be sent over plain "
                "HTTP, where anyone on the network can read it and take over the session.",
                hint="Set SESSION_COOKIE_SECURE = True when the site is served over HTTPS.",
                id="sessionplus.W040",
            )
        )
    if not settings.SESSION_COOKIE_HTTPONLY:
        messages.append(
            Warning(
                "SESSION_COOKIE_HTTPONLY is not True: scripts on the page can read the "
                "session cookie, so one cross-site scripting flaw leaks every session.",
                hint="Set SESSION_COOKIE_HTTPONLY = True.",
                id="sessionplus.W041",
            )
        )
    return messages


# The first hour: mistakes that pass Django's own checks and fail (or silently do nothing)
# once requests arrive. Ids sessionplus.E050-E059 and W050-W059.

PREFIX = "SESSIONPLUS_"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
LOCMEM_CACHE = "django.core.cache.backends.locmem.LocMemCache"
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"
SHARED_CACHE_HINT = (
    "Point SESSION_CACHE_ALIAS at a cache all processes share, such as "
    'CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", '
    '"LOCATION": "redis://127.0.0.1:6379"}}.'
)


def check_setup(**kwargs: Any) -> list[CheckMessage]:
    """Middleware order, settings nothing reads, a cached_db engine on a useless cache."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    messages: list[CheckMessage] = []
    if (
        SESSIONPLUS_MIDDLEWARE in middleware
        and AUTH_MIDDLEWARE in middleware
        and middleware.index(SESSIONPLUS_MIDDLEWARE) > middleware.index(AUTH_MIDDLEWARE)
    ):
        messages.append(
            Error(
                f"{SESSIONPLUS_MIDDLEWARE!r} comes after {AUTH_MIDDLEWARE!r}, which needs "
                "request.session: every request would fail.",
                hint=f"Move {SESSIONPLUS_MIDDLEWARE!r} above it in MIDDLEWARE.",
                id="sessionplus.E052",
            )
        )
    used = [name for name in ENGINE_FEATURES if getattr(conf, name)]
    if used and DJANGO_MIDDLEWARE in middleware and SESSIONPLUS_MIDDLEWARE not in middleware:
        messages.append(
            Warning(
                f"{', '.join(used)} {'has' if len(used) == 1 else 'have'} no effect with "
                "Django's SessionMiddleware: only sessionplus's middleware enforces them.",
                hint=f"Put {SESSIONPLUS_MIDDLEWARE!r} where {DJANGO_MIDDLEWARE!r} is.",
                id="sessionplus.W052",
            )
        )
    engine = getattr(settings, "SESSION_ENGINE", "")
    backend = settings.CACHES.get(settings.SESSION_CACHE_ALIAS, {}).get("BACKEND")
    if engine == CACHED_DB_ENGINE and backend == LOCMEM_CACHE:
        messages.append(
            Warning(
                f"SESSION_CACHE_ALIAS {settings.SESSION_CACHE_ALIAS!r} is a LocMemCache, which "
                "each server process keeps for itself: after a logout or a change made "
                "through one process, the others keep serving their cached copy.",
                hint=SHARED_CACHE_HINT,
                id="sessionplus.W050",
            )
        )
    elif engine == CACHED_DB_ENGINE and backend == DUMMY_CACHE:
        messages.append(
            Warning(
                f"SESSION_CACHE_ALIAS {settings.SESSION_CACHE_ALIAS!r} is a DummyCache, which "
                "keeps nothing: every session load goes to the database.",
                hint="Use the db engine, or point SESSION_CACHE_ALIAS at a shared cache.",
                id="sessionplus.W051",
            )
        )
    messages.extend(_unknown_settings())
    return messages


def _unknown_settings() -> list[CheckMessage]:
    # Compared without the shared prefix, which would make every name look close.
    known = {name.removeprefix(PREFIX): name for name in DEFAULTS}
    messages: list[CheckMessage] = []
    for name in sorted(dir(settings)):
        if name.startswith(PREFIX) and name not in DEFAULTS:
            close = difflib.get_close_matches(name.removeprefix(PREFIX), known, n=1)
            messages.append(
                Warning(
                    f"{name} is not a sessionplus setting, so nothing reads it.",
                    hint=f"Did you mean {known[close[0]]}?"
                    if close
                    else "See docs/settings.md for the names sessionplus reads.",
                    id="sessionplus.W053",
                )
            )
    return messages


def check_shared_cache(**kwargs: Any) -> list[CheckMessage]:
    """A per-process session cache."""
    engine = getattr(settings, "SESSION_ENGINE", "")
    alias = settings.SESSION_CACHE_ALIAS
    backend = settings.CACHES.get(alias, {}).get("BACKEND")
    # The cache engine on a DummyCache is already an error (E023) everywhere.
    if (engine == CACHED_DB_ENGINE and backend in (LOCMEM_CACHE, DUMMY_CACHE)) or (
        engine == CACHE_ENGINE and backend == LOCMEM_CACHE
    ):
        return [
            Error(
                f"SESSION_CACHE_ALIAS {alias!r} is a {backend.rsplit('.', 1)[1]}, which is not "
                f"shared between server processes: with {engine!r} a logout in one process "
                "does not end the session in the others.",
                hint=SHARED_CACHE_HINT,
                id="sessionplus.E050",
            )
        ]
    return []


def check_migrations_applied(**kwargs: Any) -> list[CheckMessage]:
    """Session tables not migrated yet."""
    from sessionplus.backends.db import SessionStore as DBStore

    engine = getattr(settings, "SESSION_ENGINE", "")
    try:
        store_class = import_string(f"{engine}.SessionStore")
    except ImportError:  # Django reports a broken SESSION_ENGINE on the first request
        return []
    if not (isinstance(store_class, type) and issubclass(store_class, DBStore)):
        return []
    model = store_class.get_model_class()
    alias = router.db_for_write(model)
    try:
        loader = MigrationLoader(connections[alias], ignore_no_migrations=True)
    except DatabaseError:
        # check --deploy often runs in a build step with no database; migrate reports then.
        return []
    label, applied = model._meta.app_label, loader.applied_migrations or {}
    pending = sorted(
        name for app, name in loader.graph.nodes if app == label and (app, name) not in applied
    )
    if not pending:
        return []
    return [
        Error(
            f"The {label!r} migrations are not all applied on database {alias!r} "
            f"(missing {', '.join(pending)}): every session would fail with a missing table.",
            hint=f"Run 'python manage.py migrate {label} --database {alias}'.",
            id="sessionplus.E051",
        )
    ]


def check_previous_engine(**kwargs: Any) -> list[CheckMessage]:
    """SESSIONPLUS_PREVIOUS_ENGINE names another engine that can be imported."""
    previous = conf.SESSIONPLUS_PREVIOUS_ENGINE
    if not previous:
        return []
    if previous == getattr(settings, "SESSION_ENGINE", ""):
        return [
            Warning(
                "SESSIONPLUS_PREVIOUS_ENGINE is SESSION_ENGINE itself: no session is adopted.",
                hint="Set it to the engine the site used before sessionplus, or remove it.",
                id="sessionplus.W060",
            )
        ]
    from sessionplus.backends.adoption import engine_class

    try:
        engine_class(previous)
    except (ImportError, AttributeError) as exc:
        return [
            Warning(
                f"SESSIONPLUS_PREVIOUS_ENGINE {previous!r} cannot be imported ({exc}): "
                "sessions of the previous engine are not adopted.",
                hint="Name a module with a SessionStore class, such as "
                "'django.contrib.sessions.backends.db'.",
                id="sessionplus.W061",
            )
        ]
    return []


USER_SESSIONS_SETTINGS = (
    "SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE",
    "SESSIONPLUS_MAX_SESSIONS_PER_USER",
)
MAX_SESSIONS_POLICIES = ("end_oldest", "refuse")


def _pages_installed() -> bool:
    try:
        reverse("sessionplus:sessions")
    except NoReverseMatch:
        return False
    return True


def _user_sessions_settings() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    end_on_change = conf.SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE
    if not isinstance(end_on_change, bool):
        messages.append(
            Error(
                "SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE should be a bool, "
                f"not {end_on_change!r}.",
                id="sessionplus.E070",
            )
        )
    cap = conf.SESSIONPLUS_MAX_SESSIONS_PER_USER
    if cap is not None and not _is_positive_int(cap):
        messages.append(
            Error(
                "SESSIONPLUS_MAX_SESSIONS_PER_USER should be a positive integer or None, "
                f"not {cap!r}.",
                id="sessionplus.E071",
            )
        )
    policy = conf.SESSIONPLUS_MAX_SESSIONS_POLICY
    if policy not in MAX_SESSIONS_POLICIES:
        messages.append(
            Error(
                "SESSIONPLUS_MAX_SESSIONS_POLICY should be 'end_oldest' or 'refuse', "
                f"not {policy!r}.",
                id="sessionplus.E072",
            )
        )
    return messages


def check_user_sessions(**kwargs: Any) -> list[CheckMessage]:
    """Check the settings of "Your sessions", and that the engine can list sessions by user."""
    messages = _user_sessions_settings()
    used = [name for name in USER_SESSIONS_SETTINGS if getattr(conf, name)]
    if _pages_installed():
        used.append("sessionplus.urls")
    try:
        store_class = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    except ImportError:  # Django reports a broken SESSION_ENGINE on the first request
        return messages
    if used and not hasattr(store_class, "user_session_metadata"):
        messages.append(
            Warning(
                f"{', '.join(used)} cannot work with SESSION_ENGINE "
                f"{settings.SESSION_ENGINE!r}: it cannot list the sessions of a user.",
                hint="Use 'sessionplus.backends.db', 'cached_db' or 'redis'.",
                id="sessionplus.W070",
            )
        )
    return messages
