"""
Tests of ``sessionplus/backends/adoption.py``: switching engines without signing anyone out.

``test_pairs``: read-through and ``migratesessions_plus`` for each pair of engines;
``test_rollback``: back to Django's engine; ``test_races``: a logout racing an adoption;
``test_live``: a live site with many users; ``test_browser``: a real browser through it.
"""

from __future__ import annotations

import io
from importlib import import_module
from typing import Any

import pytest

from tests.support.commands import run_command

DJANGO = "django.contrib.sessions.backends."
PLUS = "sessionplus.backends."
_TITLES = {"db": "DB", "cached_db": "CachedDB", "cache": "Cache", "redis": "Redis", "file": "File"}


def migrate(*args: str, stdout: io.StringIO | None = None) -> tuple[str, str, int]:
    """Run migratesessions_plus; return its output, error message and exit status."""
    return run_command("migratesessions_plus", *args, stdout=stdout)


def store_class(engine: str) -> Any:
    return import_module(engine).SessionStore


def _title(engine: str) -> str:
    package, _, kind = engine.rpartition(".")
    return ("Django" if package.startswith("django.") else "Sessionplus") + _TITLES[kind]


def pair_matrix(
    namespace: dict[str, Any],
    bases: tuple[type, ...],
    pairs: list[tuple[str, str]],
    on_redis: bool = False,
    **attributes: Any,
) -> None:
    """
    Define in ``namespace`` (a test module's ``globals()``) one test class per pair of
    engines, ``<Previous>To<Current>Tests`` built on ``bases`` with ``previous`` and
    ``current`` set; ``on_redis`` classes use the suite's Redis (the ``redis_db`` fixture).
    """
    for previous, current in pairs:
        name = f"{_title(previous)}To{_title(current)}Tests"
        cls = type(
            name,
            bases,
            {
                "previous": previous,
                "current": current,
                "__module__": namespace["__name__"],
                "__qualname__": name,
                **attributes,
            },
        )
        if on_redis:
            cls = pytest.mark.usefixtures("redis_db")(cls)
        namespace[name] = cls
