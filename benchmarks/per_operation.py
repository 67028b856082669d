"""
Per-operation benchmark of one engine, in a process of its own.

Django stock (A), sessionplus (B) and the bare-client floor (F) take turns, round after
round, for every scenario; each request goes through the full middleware stack
(session + auth + messages) to a trivial view. Timed passes count nothing; a separate
pass counts SQL statements, Redis commands and round trips per request with the test
suite's counter (tests/support/counting.py), the one the budgets are asserted with. With
``--profile`` a last pass runs each scenario's sessionplus requests under cProfile and
keeps the top functions of sessionplus's own code.

    python -m benchmarks.per_operation --engine db_postgres --output result.json [--profile 15]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from importlib import import_module
from typing import TYPE_CHECKING, Any

import django

import sessionplus
from benchmarks import instructions

if TYPE_CHECKING:
    from tests.support.counting import StorageCount, count_storage

COUNTED_REQUESTS = 3
ROLLING_REQUESTS = 100
# Two ways to spend 100 requests: a burst inside one touch interval, and a visitor browsing
# for 50 minutes (one request every 30 s) against a 300 s touch interval.
ROLLING_PATTERNS = {"burst (1 request/s)": 1, "browsing (1 request/30 s)": 30}
# Profiled frames are sessionplus's own: Django's and the clients' show up inside their time.
PACKAGE_DIR = os.path.dirname(sessionplus.__file__) + os.sep
NOT_SESSION_TABLE = "auth_user"


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    django.setup()


def prepare_database() -> None:
    """Migrate, empty both session tables, and make sure the user who logs in exists."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from benchmarks.workload import BENCH_USERNAME

    call_command("migrate", verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        for table in ("django_session", "sessionplus_session"):
            cursor.execute(f"DELETE FROM {table}")
    user, created = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    if created:
        user.set_password("bench")
        user.save()


class EngineBenchmark:
    """Every scenario of one engine: A/B/floor rounds, the counting pass, rolling writes."""

    def __init__(
        self, engine_name: str, requests: int, rounds: int, warmup: int, file_dir: str
    ) -> None:
        from django.test import RequestFactory

        from benchmarks.engines import ENGINES, VARIANTS, engine_landed
        from benchmarks.floor import floor_for
        from benchmarks.workload import USER_AGENT

        self.engine = ENGINES[engine_name]
        self.requests = requests
        self.rounds = rounds
        self.warmup = warmup
        self.file_dir = file_dir
        self.landed = {variant: engine_landed(self.engine.module(variant)) for variant in VARIANTS}
        self.variants = [variant for variant in VARIANTS if self.landed[variant]]
        self.redis_url = os.environ.get("BENCH_REDIS_URL")
        self.floor = floor_for(self.engine.floor, self.redis_url, os.path.join(file_dir, "floor"))
        self.factory = RequestFactory(HTTP_USER_AGENT=USER_AGENT)

    # Configuration ---------------------------------------------------------------

    def variant_dir(self, variant: str) -> str:
        path = os.path.join(self.file_dir, variant)
        os.makedirs(path, exist_ok=True)
        return path

    @contextmanager
    def configured(self, variant: str, scenario) -> Iterator[Any]:
        """Apply one variant's settings and yield its middleware stack, built under them."""
        from django.core.handlers.base import BaseHandler
        from django.test import override_settings

        from benchmarks.engines import rolling_settings, variant_settings

        overrides = variant_settings(self.engine, variant, self.variant_dir(variant))
        if scenario.rolling:
            overrides.update(rolling_settings(variant))
        with override_settings(**overrides):
            handler = BaseHandler()
            handler.load_middleware()
            yield handler

    def new_session(self) -> str:
        """Store the usual 20-key session with the configured engine; return its cookie value."""
        from django.conf import settings

        from benchmarks.workload import session_payload

        store = import_module(settings.SESSION_ENGINE).SessionStore()
        store.update(session_payload())
        store.save()
        return store.session_key

    def request(self, path: str, cookie: str | None):
        from django.conf import settings

        if cookie is None:
            return self.factory.get(path)
        return self.factory.get(path, HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}={cookie}")

    def requests_for(self, scenario, count: int) -> list[Any]:
        if scenario.cookie == "shared":
            cookies = [self.new_session()] * count
        elif scenario.cookie == "fresh":
            cookies = [self.new_session() for _ in range(count)]
        else:
            cookies = [None] * count
        return [self.request(scenario.path, cookie) for cookie in cookies]

    # Timing ----------------------------------------------------------------------

    def time_variant(self, variant: str, scenario, count: int) -> list[int]:
        """Return the nanoseconds each of ``count`` requests (or floor operations) took."""
        samples = []
        if variant == "floor":
            operations = self.floor.operations(scenario.floor, count)
            gc.collect()
            for operation in operations:
                start = time.perf_counter_ns()
                operation()
                samples.append(time.perf_counter_ns() - start)
            return samples
        with self.configured(variant, scenario) as handler:
            requests = self.requests_for(scenario, count)
            gc.collect()
            for request in requests:
                start = time.perf_counter_ns()
                response = handler.get_response(request)
                samples.append(time.perf_counter_ns() - start)
                check(response, variant, scenario)
        return samples

    def run_timing(self, scenarios) -> dict[str, dict[str, list[list[int]]]]:
        """Alternate the variants round by round, rotating which one goes first."""
        rounds: dict[str, dict[str, list[list[int]]]] = {s.name: {} for s in scenarios}
        for number in range(self.warmup + self.rounds):
            for scenario in scenarios:
                contenders = [*self.variants, *(["floor"] if scenario.floor else [])]
                shift = number % len(contenders)
                for variant in contenders[shift:] + contenders[:shift]:
                    samples = self.time_variant(variant, scenario, self.requests)
                    if number >= self.warmup:
                        rounds[scenario.name].setdefault(variant, []).append(samples)
            log(f"{self.engine.name}: round {number + 1}/{self.warmup + self.rounds}")
        return rounds

    # Counting --------------------------------------------------------------------

    def counting(self) -> count_storage:
        """
        Count a request's SQL statements, and its Redis commands and round trips where the
        engine uses Redis. Cache calls and files are left out: the report does not show
        them, and the file counter's audit hook would stay on for the profile pass.
        """
        from tests.support.counting import count_storage

        return count_storage(redis=self.engine.uses_redis, cache=False, files=False)

    def count_costs(self, variant: str, scenario) -> dict[str, Any]:
        costs = []
        with self.configured(variant, scenario) as handler:
            for request in self.requests_for(scenario, COUNTED_REQUESTS):
                with self.counting() as count:
                    response = handler.get_response(request)
                check(response, variant, scenario)
                costs.append(cost(count))
        steady = costs[-1]
        return {**steady, "varies": any(cost != steady for cost in costs)}

    # Rolling sessions --------------------------------------------------------------

    def files(self, variant: str) -> dict[str, tuple[int, int, int]]:
        found = {}
        with os.scandir(self.variant_dir(variant)) as entries:
            for entry in entries:
                stat = entry.stat()
                found[entry.name] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        return found

    def rolling_writes(self, variant: str, step: int) -> dict[str, Any]:
        """Count the requests, of 100 unmodified reads, that wrote to storage."""
        from django.conf import settings
        from freezegun import freeze_time

        from benchmarks.engines import SCENARIOS

        rolling = next(scenario for scenario in SCENARIOS if scenario.rolling)
        start = datetime.now(dt_timezone.utc)
        wrote = operations = 0
        with self.configured(variant, rolling) as handler, freeze_time(start) as clock:
            cookie = self.new_session()
            for number in range(1, ROLLING_REQUESTS + 1):
                request = self.request(rolling.path, cookie)
                files_before = self.files(variant)
                clock.move_to(start + timedelta(seconds=number * step))
                with self.counting() as count:
                    response = handler.get_response(request)
                check(response, variant, rolling)
                # Carry the cookie forward, as a browser does (it is the store for signed_cookies).
                sent = response.cookies.get(settings.SESSION_COOKIE_NAME)
                if sent is not None and sent.value:
                    cookie = sent.value
                # Each Redis command that writes, a script's own ones included.
                writes = count.writes["sql"] + sum(op.write for op in count.redis_executed)
                if self.engine.floor == "file":
                    writes += self.files(variant) != files_before
                if self.engine.floor == "signing":
                    writes += bool(sent is not None and sent.value)
                wrote += bool(writes)
                operations += writes
        return {"requests": ROLLING_REQUESTS, "writing_requests": wrote, "writes": operations}

    # Profile -----------------------------------------------------------------------

    def profile(self, scenario, top: int) -> list[dict[str, Any]]:
        """Return sessionplus's ``top`` functions by cumulative time over one round of requests."""
        profiler = cProfile.Profile()
        with self.configured("sessionplus", scenario) as handler:
            requests = self.requests_for(scenario, self.requests)
            for request in requests:
                profiler.enable()
                response = handler.get_response(request)
                profiler.disable()
                check(response, "sessionplus", scenario)
        functions = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        rows = [
            {
                "function": f"{path[len(PACKAGE_DIR) :]}:{line} {name}",
                "calls": round(calls / self.requests, 2),
                "own_us": round(own * 1e6 / self.requests, 1),
                "cumulative_us": round(cumulative * 1e6 / self.requests, 1),
            }
            for (path, line, name), (_, calls, own, cumulative, _) in functions.items()
            if path.startswith(PACKAGE_DIR)
        ]
        rows.sort(key=lambda row: (-row["cumulative_us"], -row["own_us"]))
        return rows[:top]

    # Everything --------------------------------------------------------------------

    def run(self, profile_top: int = 0, instruction_requests: int = 0) -> dict[str, Any]:
        from benchmarks.engines import SCENARIOS, TOUCH_INTERVAL, middleware_landed
        from benchmarks.floor import FLOOR_DESCRIPTIONS

        timing = self.run_timing(SCENARIOS)
        scenarios = {}
        for scenario in SCENARIOS:
            entry: dict[str, Any] = {"title": scenario.title, "floor_steps": scenario.floor}
            for variant in ("stock", "sessionplus", "floor"):
                rounds = timing[scenario.name].get(variant)
                if rounds is None:
                    entry[variant] = None
                    continue
                entry[variant] = summarize(rounds)
                if variant != "floor":
                    entry[variant]["cost"] = self.count_costs(variant, scenario)
            scenarios[scenario.name] = entry
        rolling = {
            pattern: {variant: self.rolling_writes(variant, step) for variant in self.variants}
            for pattern, step in ROLLING_PATTERNS.items()
        }
        profiles = (
            {scenario.name: self.profile(scenario, profile_top) for scenario in SCENARIOS}
            if profile_top and "sessionplus" in self.variants
            else None
        )
        counted = (
            instructions.count(self.engine.name, instruction_requests)
            if instruction_requests
            else None
        )
        self.close()
        return {
            "engine": self.engine.name,
            "label": self.engine.label,
            "stock_engine": self.engine.stock,
            "sessionplus_engine": self.engine.plus,
            "landed": {**self.landed, "middleware": middleware_landed()},
            "database": self.engine.database,
            "floor": {"kind": self.engine.floor, "what": FLOOR_DESCRIPTIONS[self.engine.floor]},
            "requests_per_round": self.requests,
            "rounds": self.rounds,
            "scenarios": scenarios,
            "rolling": {"touch_interval": TOUCH_INTERVAL, "patterns": rolling},
            **({"profile": profiles} if profiles else {}),
            **({"instructions": counted} if counted else {}),
        }

    def close(self) -> None:
        self.floor.close()
        if self.engine.uses_redis:
            # Leave the Redis database as it was: only the benchmark's own prefix goes.
            import redis
            from django.conf import settings

            with redis.Redis.from_url(self.redis_url) as client:
                for key in client.scan_iter(f"{settings.BENCH_REDIS_PREFIX}:*", count=1000):
                    client.delete(key)


def cost(count: StorageCount) -> dict[str, Any]:
    """What one request sent to the stores, as the report shows it."""
    statements = [op.detail for op in count.operations if op.store == "sql"]
    commands = Counter(op.name.lower() for op in count.redis_executed)
    return {
        "sql_statements": len(statements),
        # A login's last_login UPDATE is not session work.
        "session_sql_statements": sum(NOT_SESSION_TABLE not in sql for sql in statements),
        "sql": count.sql,
        "redis_commands": len(count.redis_executed),
        "redis": dict(sorted(commands.items())),
        "redis_round_trips": count.round_trips,
    }


def check(response, variant: str, scenario) -> None:
    if response.status_code != 200:
        raise RuntimeError(
            f"{variant} {scenario.name}: HTTP {response.status_code}: {response.content[:300]!r}"
        )


def summarize(rounds: list[list[int]]) -> dict[str, Any]:
    everything = [sample for samples in rounds for sample in samples]
    return {
        "median_us": round(statistics.median(everything) / 1000, 1),
        "round_medians_us": [round(statistics.median(s) / 1000, 1) for s in rounds],
        "samples": len(everything),
    }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", required=True)
    parser.add_argument("--requests", type=int, default=150, help="requests per round and variant")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--file-dir", required=True, help="where the file engines store")
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="keep sessionplus's top N functions"
    )
    parser.add_argument(
        "--instructions",
        type=int,
        default=0,
        metavar="N",
        help="count CPU instructions over N requests per scenario (callgrind)",
    )
    args = parser.parse_args(argv)
    setup_django()
    prepare_database()
    benchmark = EngineBenchmark(args.engine, args.requests, args.rounds, args.warmup, args.file_dir)
    result = benchmark.run(args.profile, args.instructions)
    with open(args.output, "w") as file:
        json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()
