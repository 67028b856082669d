"""
Run Django's ``tests/sessions_tests`` against every sessionplus engine: ``python -m compat``.

Django's stock test classes are subclassed with ``backend`` set to a sessionplus engine
(and SESSION_ENGINE and CACHES overridden for the class); the names the test module binds
to Django's middleware, db engine and Session model are rebound to sessionplus's. Every
outcome is counted per test and engine and compared with ``compat/deviations.toml``: an
unlisted failure, or a listed test that passes, fails the run.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import traceback
import unittest
from collections import Counter
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

from compat.deviations import Deviation, load_deviations

HERE = Path(__file__).resolve().parent
# Fifteen hours away from the settings' TIME_ZONE (America/Chicago): with USE_TZ = False,
# Django's clock is the process's local time, and sessionplus must follow it.
PROCESS_TIME_ZONE = "Asia/Tokyo"


@dataclass(frozen=True)
class Target:
    """One engine configuration and the Django test classes that apply to it."""

    label: str
    engine: str
    stock: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    # Tests of other stock classes that apply too: "CacheSessionTests.test_load_overlong_key".
    extra: tuple[str, ...] = ()


def targets() -> list[Target]:
    from compat.settings import DJANGO_REDIS

    on_django_redis = {"CACHES": {"default": DJANGO_REDIS, "redis": DJANGO_REDIS}}
    db, cached_db = "DatabaseSessionTests", "CacheDBSessionTests"
    return [
        Target("db", "sessionplus.backends.db", (db, "DatabaseSessionWithTimeZoneTests")),
        Target("db-project-model", "compat.custom_model", ("CustomDatabaseSessionTests",)),
        Target("cache-locmem", "sessionplus.backends.cache", ("CacheSessionTests",)),
        Target(
            "cache-django-redis",
            "sessionplus.backends.cache",
            ("CacheSessionTests",),
            on_django_redis,
        ),
        Target(
            "cached_db-locmem",
            "sessionplus.backends.cached_db",
            (cached_db, "CacheDBSessionWithTimeZoneTests"),
        ),
        Target(
            "cached_db-django-redis",
            "sessionplus.backends.cached_db",
            (cached_db, "CacheDBSessionWithTimeZoneTests"),
            on_django_redis,
        ),
        Target(
            "file", "sessionplus.backends.file", ("FileSessionTests", "FileSessionPathLibTests")
        ),
        Target("signed_cookies", "sessionplus.backends.signed_cookies", ("CookieSessionTests",)),
        # The redis engine keeps its own hashes, not cache entries: the engine-independent
        # tests apply, and of the cache engine's own only the one that does not read the cache.
        Target(
            "redis",
            "sessionplus.backends.redis",
            ("SessionTestsMixin",),
            extra=("CacheSessionTests.test_load_overlong_key",),
        ),
        Target("middleware", "sessionplus.backends.db", ("SessionMiddlewareTests",)),
    ]


def point_at_sessionplus(module: ModuleType) -> None:
    """Rebind the names Django's test module uses for Django's own classes."""
    from sessionplus.backends.db import SessionStore as DbStore
    from sessionplus.middleware import SessionMiddleware
    from sessionplus.models import Session

    module.SessionMiddleware = SessionMiddleware
    module.DatabaseSession = DbStore
    module.Session = Session


def test_class(module: ModuleType, target: Target, stock_name: str) -> type[unittest.TestCase]:
    from django.test import SimpleTestCase, override_settings

    stock = getattr(module, stock_name)
    bases = (stock,) if issubclass(stock, unittest.TestCase) else (stock, SimpleTestCase)
    attrs: dict[str, Any] = {
        "backend": import_module(target.engine).SessionStore,
        "session_engine": target.engine,
        "compat_engine": target.label,
        "compat_stock": stock_name,
        "__module__": __name__,
    }
    for name in target.extra:
        owner, method = name.split(".")
        attrs[method] = getattr(getattr(module, owner), method)
    cls = type(f"{stock_name}__{target.label}", bases, attrs)
    return override_settings(SESSION_ENGINE=target.engine, **target.settings)(cls)


def test_id(test: unittest.TestCase) -> tuple[str, str]:
    """Return (engine label, "StockClass.test_method") for a test the runner built."""
    engine = getattr(test, "compat_engine", None)
    if engine is None:  # a class-level error (setUpClass): unittest's stand-in test
        return "setup", str(test)
    return engine, f"{test.compat_stock}.{test._testMethodName}"


class Outcomes(unittest.TextTestResult):
    """Record one outcome per test: passed, failed or skipped (a failure is final)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[tuple[str, str], str] = {}
        self.errors_text: dict[tuple[str, str], str] = {}

    def _record(self, test: unittest.TestCase, outcome: str, err: Any = None) -> None:
        key = test_id(test)
        if self.outcomes.get(key) == "failed":
            return
        self.outcomes[key] = outcome
        if err is not None:
            self.errors_text[key] = "".join(traceback.format_exception(*err))

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failed", err)

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "failed", err)

    def addSubTest(self, test: unittest.TestCase, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._record(test, "failed", err)

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skipped")

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        # Marked @expectedFailure in Django's suite: it fails on Django's engine too.
        super().addExpectedFailure(test, err)
        self._record(test, "passed")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        # Passes where Django's own engine fails (CookieSessionTests.test_actual_expiry).
        super().addUnexpectedSuccess(test)
        self._record(test, "passed")


def run_suite(suite: unittest.TestSuite, verbosity: int) -> Outcomes:
    from django.test.runner import DiscoverRunner

    runner = DiscoverRunner(verbosity=verbosity, interactive=False)
    runner.setup_test_environment()
    databases = runner.setup_databases(aliases=runner.get_databases(suite))
    try:
        # unittest's own summary counts listed deviations as failures: report() says it right.
        stream = sys.stderr if verbosity else io.StringIO()
        result = unittest.TextTestRunner(
            stream=stream, verbosity=verbosity, resultclass=Outcomes
        ).run(suite)
    finally:
        runner.teardown_databases(databases)
        runner.teardown_test_environment()
    assert isinstance(result, Outcomes)
    return result


def report(
    outcomes: dict[tuple[str, str], str],
    errors: dict[tuple[str, str], str],
    deviations: list[Deviation],
    labels: list[str],
    verbose: bool,
) -> bool:
    """Print the per-engine counts and every mismatch; return whether the run is as listed."""
    counts: dict[str, Counter[str]] = {label: Counter() for label in labels}
    unexpected: list[tuple[str, str]] = []
    used: set[int] = set()
    for (engine, test), outcome in sorted(outcomes.items()):
        listed = next((d for d in deviations if d.matches(engine, test)), None)
        if outcome == "failed" and listed is not None:
            counts.setdefault(engine, Counter())["deviation"] += 1
            used.add(id(listed))
            if verbose:
                print(f"\n-- deviation {engine} {test}: {listed.reason}\n{errors[(engine, test)]}")
        elif outcome == "failed":
            counts.setdefault(engine, Counter())["unexpected"] += 1
            unexpected.append((engine, test))
        else:
            counts.setdefault(engine, Counter())[outcome] += 1
    stale = [
        (d, engine)
        for d in deviations
        for engine in d.engines
        if engine in labels
        and not any(
            outcome == "failed" and d.matches(e, t)
            for (e, t), outcome in outcomes.items()
            if e == engine
        )
    ]
    for engine, test in unexpected:
        print(f"\nFAILED (not in deviations.toml) {engine} {test}\n{errors[(engine, test)]}")
    for deviation, engine in stale:
        print(f"\nLISTED BUT NOT FAILING {engine} {deviation.test}: remove it from deviations.toml")
    print(f"\n{'engine':<24}{'passed':>8}{'deviations':>12}{'skipped':>9}{'unexpected':>12}")
    for label, count in counts.items():
        print(
            f"{label:<24}{count['passed']:>8}{count['deviation']:>12}"
            f"{count['skipped']:>9}{count['unexpected']:>12}"
        )
    total = sum(counts.values(), Counter())
    print(
        f"Django's sessions_tests on sessionplus: {total['passed']} passed, "
        f"{total['deviation']} listed deviations, {total['skipped']} skipped, "
        f"{len(unexpected)} unexpected failures, {len(stale)} stale deviations"
    )
    return not unexpected and not stale


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m compat", description=__doc__)
    parser.add_argument("--engine", action="append", help="run only this engine label")
    parser.add_argument("-v", "--verbose", action="store_true", help="show deviations' errors")
    args = parser.parse_args(argv)

    from compat.sdist import django_tests_dir

    sys.path.insert(0, str(django_tests_dir()))
    os.environ["DJANGO_SETTINGS_MODULE"] = "compat.settings"
    import django

    django.setup()
    os.environ["TZ"] = PROCESS_TIME_ZONE  # after setup(), which set it to TIME_ZONE
    time.tzset()

    from tests.support.services import private_redis

    module = import_module("sessions_tests.tests")
    point_at_sessionplus(module)
    chosen = [t for t in targets() if not args.engine or t.label in args.engine]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(
        loader.loadTestsFromTestCase(test_class(module, target, stock))
        for target in chosen
        for stock in target.stock
    )
    deviations = load_deviations(HERE / "deviations.toml", HERE.parent / "docs")
    server = private_redis()
    if server is not None:
        server.start()
    try:
        result = run_suite(suite, verbosity=2 if args.verbose else 0)
    finally:
        if server is not None:
            server.stop()
    print(f"Django {django.__version__}, {django_tests_dir()}")
    labels = [t.label for t in chosen]
    ok = report(result.outcomes, result.errors_text, deviations, labels, args.verbose)
    return 0 if ok else 1
