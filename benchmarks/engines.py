"""The engines and scenarios the per-operation benchmark compares."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

STOCK_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
PLUS_MIDDLEWARE = "sessionplus.middleware.SessionMiddleware"
OTHER_MIDDLEWARE = [
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
VARIANTS = ("stock", "sessionplus")
# Rolling expiry in S6 and in the writes count: sessionplus refreshes at most once per this
# many seconds; Django's only way to roll the expiry is a save on every request.
TOUCH_INTERVAL = 300


@dataclass(frozen=True)
class Engine:
    """One row of the comparison: Django's engine against sessionplus's."""

    name: str
    label: str
    stock: str
    plus: str
    database: str  # where auth (and the db engines' sessions) live: "sqlite", "postgres", "mariadb"
    uses_redis: bool
    floor: str  # the bare-client floor: "sql", "redis_blob", "sql+redis_blob", …

    @property
    def sessions_in_sql(self) -> bool:
        return self.floor in ("sql", "sql+redis_blob")

    def module(self, variant: str) -> str:
        return self.stock if variant == "stock" else self.plus


DJANGO = "django.contrib.sessions.backends"
PLUS = "sessionplus.backends"
ENGINES = {
    engine.name: engine
    for engine in (
        Engine("db_sqlite", "db on SQLite", f"{DJANGO}.db", f"{PLUS}.db", "sqlite", False, "sql"),
        Engine(
            "db_postgres",
            "db on PostgreSQL",
            f"{DJANGO}.db",
            f"{PLUS}.db",
            "postgres",
            False,
            "sql",
        ),
        Engine(
            "db_mariadb",
            "db on MariaDB",
            f"{DJANGO}.db",
            f"{PLUS}.db",
            "mariadb",
            False,
            "sql",
        ),
        Engine(
            "cache_redis",
            "cache on django-redis",
            f"{DJANGO}.cache",
            f"{PLUS}.cache",
            "sqlite",
            True,
            "redis_blob",
        ),
        Engine(
            "cached_db",
            "cached_db (PostgreSQL + django-redis)",
            f"{DJANGO}.cached_db",
            f"{PLUS}.cached_db",
            "postgres",
            True,
            "sql+redis_blob",
        ),
        Engine("file", "file", f"{DJANGO}.file", f"{PLUS}.file", "sqlite", False, "file"),
        Engine(
            "signed_cookies",
            "signed_cookies",
            f"{DJANGO}.signed_cookies",
            f"{PLUS}.signed_cookies",
            "sqlite",
            False,
            "signing",
        ),
        # Django has no Redis engine: its nearest equivalent is the cache engine on django-redis.
        Engine(
            "redis",
            "redis (Django: cache on django-redis)",
            f"{DJANGO}.cache",
            f"{PLUS}.redis",
            "sqlite",
            True,
            "redis_blob",
        ),
    )
}


@dataclass(frozen=True)
class Scenario:
    """One kind of request, and the bare storage work it needs at the least."""

    name: str
    title: str
    path: str
    cookie: str  # "shared": one existing session; "fresh": a new one per request; "none"
    floor: tuple[str, ...]
    rolling: bool = False


SCENARIOS = (
    Scenario("S1", "request that never touches the session", "/untouched/", "shared", ()),
    Scenario("S2", "read one key (20 keys, ~1 KB)", "/read/", "shared", ("read",)),
    Scenario("S3", "modify one key", "/modify/", "shared", ("read", "write")),
    Scenario("S4", "create a new session", "/create/", "none", ("create",)),
    Scenario("S5", "log in over an anonymous session", "/login/", "fresh", ("read", "rekey")),
    Scenario(
        "S6", "unmodified read inside the touch interval", "/read/", "shared", ("read",), True
    ),
)


def rolling_settings(variant: str) -> dict[str, object]:
    if variant == "stock":
        return {"SESSION_SAVE_EVERY_REQUEST": True}
    return {"SESSION_SAVE_EVERY_REQUEST": False, "SESSIONPLUS_TOUCH_INTERVAL": TOUCH_INTERVAL}


def variant_settings(engine: Engine, variant: str, file_dir: str) -> dict[str, object]:
    middleware = STOCK_MIDDLEWARE if variant == "stock" else PLUS_MIDDLEWARE
    return {
        "SESSION_ENGINE": engine.module(variant),
        "MIDDLEWARE": [middleware, *OTHER_MIDDLEWARE],
        "SESSION_FILE_PATH": file_dir,
    }


def engine_landed(module: str) -> bool:
    try:
        return hasattr(import_module(module), "SessionStore")
    except ImportError:
        return False


def middleware_landed() -> bool:
    """Tell sessionplus's own middleware from the placeholder that only subclasses Django's."""
    from sessionplus.middleware import SessionMiddleware

    own = vars(SessionMiddleware)
    return any(name in own for name in ("__call__", "process_request", "process_response"))
