"""The engines tests name, their test-class matrix, and their stored records seen from outside."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from sessionplus.backends.base import SessionPlusBase


@dataclass(frozen=True)
class Engine:
    """One engine configuration under test: its module and the stores it keeps sessions in."""

    name: str
    module: str  # what SESSION_ENGINE names
    stores: tuple[str, ...]  # any of "sql", "cache", "file", "redis", "memory"; none for cookies
    title: str  # what its test classes are named after: DbHardeningTests, DjangoDbSync…

    @property
    def store_class(self) -> type[SessionPlusBase]:
        return import_module(self.module).SessionStore

    @property
    def server_side(self) -> bool:
        return bool(self.stores)

    @property
    def on_redis(self) -> bool:
        return "redis" in self.stores

    @property
    def shipped(self) -> bool:
        """Whether sessionplus ships it (the rest are Django's, or the suite's own)."""
        return self.module.startswith("sessionplus.")


# The one registry of engines the tests name.
ENGINES = {
    engine.name: engine
    for engine in [
        Engine("db", "sessionplus.backends.db", ("sql",), "Db"),
        Engine("cached_db", "sessionplus.backends.cached_db", ("sql", "cache"), "CachedDb"),
        Engine("cache", "sessionplus.backends.cache", ("cache",), "Cache"),
        Engine("file", "sessionplus.backends.file", ("file",), "File"),
        Engine("redis", "sessionplus.backends.redis", ("redis",), "Redis"),
        Engine("signed_cookies", "sessionplus.backends.signed_cookies", (), "SignedCookies"),
        # sessionplus's db engine on a project's own model, as Django documents.
        Engine("project_model", "tests.custom_session.models", ("sql",), "ProjectModel"),
        # A sessionplus engine on a dict of this process that logs its storage calls.
        Engine("memory", "tests.support.memory_engine", ("memory",), "Memory"),
        Engine("django_db", "django.contrib.sessions.backends.db", ("sql",), "DjangoDb"),
        Engine("django_cache", "django.contrib.sessions.backends.cache", ("cache",), "DjangoCache"),
    ]
}
SHIPPED = [name for name, engine in ENGINES.items() if engine.shipped]
SERVER_SIDE = [name for name in SHIPPED if ENGINES[name].server_side]


def engine_matrix(
    namespace: dict[str, Any],
    suffix: str,
    bases: tuple[type, ...],
    engines: Iterable[str],
    modes: Iterable[type] = (),
) -> None:
    """
    Define in ``namespace`` (a test module's ``globals()``) one test class per engine, and
    per request mode when ``modes`` are given: ``<title><Mode><suffix>`` built on
    ``(*bases[:-1], mode, bases[-1])``, e.g. ``DbSyncMiddlewareTests``. Classes of an engine
    on Redis use the suite's Redis (the ``redis_db`` fixture).
    """
    *mixins, test_case = bases
    for engine in map(ENGINES.__getitem__, engines):
        for mode in list(modes) or [None]:
            mode_name = mode.mode.title() if mode else ""
            name = f"{engine.title}{mode_name}{suffix}"
            cls = type(
                name,
                (*mixins, *([mode] if mode else []), test_case),
                {"engine": engine, "__module__": namespace["__name__"], "__qualname__": name},
            )
            if engine.on_redis:
                cls = pytest.mark.usefixtures("redis_db")(cls)
            namespace[name] = cls


def use_engine(case: Any, engine: Engine, urlconf: str, **more: Any) -> None:
    """Configure ``engine`` and route ``urlconf`` (and ``more`` settings) until ``case`` ends."""
    overridden = override_settings(SESSION_ENGINE=engine.module, ROOT_URLCONF=urlconf, **more)
    overridden.enable()
    case.addCleanup(overridden.disable)


# A well-formed key no engine ever issued.
UNKNOWN_KEY = "0123456789abcdefghijklmnopqrstuv"


class EngineTestMixin:
    """Run a Django test case with ``engine`` configured and the hardening views routed."""

    engine: Engine

    def setUp(self) -> None:
        super().setUp()  # type: ignore[misc]
        use_engine(self, self.engine, "tests.hardening_urls")
        caches[settings.SESSION_CACHE_ALIAS].clear()
        # Tests measure the steady state: the first read of a fresh store may write an
        # engine's bookkeeping (cached_db's cache generation), never a session.
        self.store(UNKNOWN_KEY).get("warm-up")

    def store(self, session_key: str | None = None) -> SessionPlusBase:
        return self.engine.store_class(session_key)

    def saved(self, **data: Any) -> SessionPlusBase:
        session = self.store()
        session.update(data)
        session.save()
        return session

    async def asaved(self, **data: Any) -> SessionPlusBase:
        session = self.store()
        await session.aupdate(data)
        await session.asave()
        return session

    def stored(self, session: SessionPlusBase) -> dict[str, Any]:
        """Return what a fresh store loads for ``session``'s key."""
        return dict(self.store(session.session_key).items())


# Stored payloads, for tampering --------------------------------------------------------


def _text_record_payload(text: str) -> tuple[str, str]:
    # Cache and file records are a JSON header line, then the signed data.
    header, _, payload = text.partition("\n")
    return header, payload


def _cache_entry(session_key: str) -> tuple[Any, str]:
    from sessionplus.backends.cache import KEY_PREFIX

    return caches[settings.SESSION_CACHE_ALIAS], KEY_PREFIX + session_key


def _file_path(session_key: str) -> str:
    return os.path.join(settings.SESSION_FILE_PATH, settings.SESSION_COOKIE_NAME + session_key)


def _redis_field(session_key: str) -> tuple[Any, str, str]:
    from django_redis import get_redis_connection

    from sessionplus.backends.redis import DATA, SessionStore
    from tests.support.redis_layout import stored_fields

    client = get_redis_connection(settings.SESSIONPLUS_REDIS_ALIAS)
    key = SessionStore.redis_key(session_key)
    fields = sorted(name for name in stored_fields(client, key) if name.startswith(DATA))
    return client, key, fields[0]


def _session_rows(engine: Engine, session_key: str) -> Any:
    return engine.store_class.get_model_class().objects.filter(session_key=session_key)


def read_payload(engine: Engine, session_key: str) -> str:
    """Return the signed session data as ``engine`` stored it (on Redis: one data field's)."""
    if engine.name in ("db", "cached_db"):
        return _session_rows(engine, session_key).get().session_data
    if engine.name == "cache":
        cache, key = _cache_entry(session_key)
        return _text_record_payload(cache.get(key))[1]
    if engine.name == "file":
        with open(_file_path(session_key), encoding="ascii") as session_file:
            return _text_record_payload(session_file.read())[1]
    if engine.name == "redis":
        client, key, name = _redis_field(session_key)
        from tests.support.redis_layout import stored_fields

        return stored_fields(client, key)[name].decode()
    if engine.name == "signed_cookies":
        return session_key
    raise NotImplementedError(engine.name)


def tamper(engine: Engine, session_key: str, change: Callable[[str], str]) -> str:
    """
    Apply ``change`` to a session's signed data, outside the app; return the key to send.

    Server-side engines keep the key and get the changed data in their record, the rest
    of the record left alone; for signed cookies the changed data is the new cookie.
    """
    payload = change(read_payload(engine, session_key))
    if engine.name in ("db", "cached_db"):
        _session_rows(engine, session_key).update(session_data=payload)
        if engine.name == "cached_db":
            # The cache holds a copy ([generation, record text]): change it alike.
            cache, key = caches[settings.SESSION_CACHE_ALIAS], engine.store_class.cache_key_prefix
            generation, text = cache.get(key + session_key)
            header = _text_record_payload(text)[0]
            cache.set(key + session_key, [generation, f"{header}\n{payload}"], 3600)
    elif engine.name == "cache":
        cache, key = _cache_entry(session_key)
        header = _text_record_payload(cache.get(key))[0]
        cache.set(key, f"{header}\n{payload}", 3600)
    elif engine.name == "file":
        with open(_file_path(session_key), "r+", encoding="ascii") as session_file:
            header = _text_record_payload(session_file.read())[0]
            session_file.seek(0)
            session_file.truncate()
            session_file.write(f"{header}\n{payload}")
    elif engine.name == "redis":
        client, key, name = _redis_field(session_key)
        from tests.support.redis_layout import set_field

        set_field(client, key, name, payload)
    elif engine.name == "signed_cookies":
        return payload
    else:
        raise NotImplementedError(engine.name)
    return session_key


def flip_byte(position: int) -> Callable[[str], str]:
    """
    Return a change of the character at ``position`` to another one of its kind.

    Letters change case, digits and ``-``/``_`` turn into their neighbours: base64 stays
    base64, so the change is caught by the signature, not by the shape of the value.
    """

    def changed(char: str) -> str:
        if char.isalpha():
            return char.swapcase()
        if char.isdigit():
            return str((int(char) + 1) % 10)
        return {"-": "_", "_": "-"}.get(char) or chr(ord(char) ^ 0x01)

    def change(text: str) -> str:
        return text[:position] + changed(text[position]) + text[position + 1 :] if text else text

    return change


def planted_session(engine: Engine, data: dict[str, Any]) -> str:
    """
    Store ``data`` as a session exactly as given and return its key (its cookie value).

    The data rule keeps the app from writing a corrupt ``_session_expiry``; planting one
    stands for a record written by an older version or altered by someone with the
    signing key. The expiry the engine stores is the default one.
    """
    engine_class = engine.store_class

    class Planter(engine_class):  # type: ignore[misc, valid-type]
        def get_expiry_date(self, **kwargs: Any) -> Any:
            return super().get_expiry_date(**{**kwargs, "expiry": None})

        def get_expiry_age(self, **kwargs: Any) -> Any:
            return super().get_expiry_age(**{**kwargs, "expiry": None})

    # key_salt names the class: the planted data must verify as the engine's own.
    Planter.__qualname__ = engine_class.__qualname__
    planter = Planter()
    planter._session_cache = dict(data)
    planter.save()
    return planter.session_key
