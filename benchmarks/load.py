"""
Under load: a site with the session + auth + messages stack, served by gunicorn (2 sync
workers, loopback) and driven by wrk for a fixed time, Django stock and sessionplus taking
turns, with sessions in Redis and in PostgreSQL.

    python -m benchmarks.load --database-url postgres://… --redis-url redis://… --output load.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import django

from benchmarks.engines import PLUS_MIDDLEWARE, STOCK_MIDDLEWARE, engine_landed
from tests.support.loopback import answers_within, free_port

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).with_name("session.lua")
WORKERS = 2
CONNECTIONS = 4
SETUPS = {
    "redis": {
        "stock": "django.contrib.sessions.backends.cache",
        "sessionplus": "sessionplus.backends.redis",
    },
    "postgres": {
        "stock": "django.contrib.sessions.backends.db",
        "sessionplus": "sessionplus.backends.db",
    },
}
WORKLOAD = (
    f"wrk, 1 thread, {CONNECTIONS} connections, 50 sessions of ~1 KB: 9 in 10 requests read "
    "the session (GET /), 1 in 10 adds to the cart (GET /add/)"
)


def missing_tools() -> list[str]:
    missing = [] if shutil.which("wrk") else ["wrk"]
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        missing.append("gunicorn")
    return missing


def site_environment(database_url: str, redis_url: str, store: str, variant: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_DATABASE_URL": database_url,
        "BENCH_REDIS_URL": redis_url,
        "BENCH_SESSION_ENGINE": SETUPS[store][variant],
        "BENCH_SESSION_MIDDLEWARE": STOCK_MIDDLEWARE if variant == "stock" else PLUS_MIDDLEWARE,
    }


def migrate(database_url: str, redis_url: str) -> None:
    environment = site_environment(database_url, redis_url, "postgres", "stock")
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=ROOT,
        env=environment,
        check=True,
    )


class Site:
    """gunicorn serving the benchmark site with one configuration."""

    def __init__(self, environment: dict) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "benchmarks.wsgi:application"),
                *("--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}"),
                *("--log-level", "warning"),
            ],
            cwd=ROOT,
            env=environment,
        )

    def __enter__(self) -> Site:
        if not answers_within(self.port, 30):
            self.stop()
            raise RuntimeError("gunicorn did not start")
        deadline = time.monotonic() + 30
        while True:  # workers up and the page answering
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def drive(url: str, seconds: int) -> dict[str, Any]:
    finished = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(LUA), url],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in finished.stdout.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "requests": raw["requests"],
        "errors": raw["errors"],
    }


def run(
    database_url: str, redis_url: str, seconds: int, warmup: int, rounds: int
) -> dict[str, Any]:
    migrate(database_url, redis_url)
    landed = {store: engine_landed(SETUPS[store]["sessionplus"]) for store in SETUPS}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        store: {"stock": [], "sessionplus": []} for store in SETUPS
    }
    for number in range(rounds):
        for store in SETUPS:
            order = ["stock", "sessionplus"] if number % 2 == 0 else ["sessionplus", "stock"]
            for variant in order:
                if variant == "sessionplus" and not landed[store]:
                    continue
                environment = site_environment(database_url, redis_url, store, variant)
                with Site(environment) as site:
                    drive(site.url, warmup)
                    result = drive(site.url, seconds)
                runs[store][variant].append(result)
                print(f"load {store} {variant}: {result['requests_per_s']} req/s", file=sys.stderr)
    return {
        "workload": WORKLOAD,
        "server": f"gunicorn, {WORKERS} sync workers, 127.0.0.1",
        "seconds": seconds,
        "rounds": rounds,
        "setups": {
            store: {
                "engines": SETUPS[store],
                "sessionplus_landed": landed[store],
                **{variant: summarize(results) for variant, results in variants.items()},
            }
            for store, variants in runs.items()
        },
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not results:
        return None
    return {
        "requests_per_s": round(statistics.median(r["requests_per_s"] for r in results), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
        "errors": sum(sum(r["errors"].values()) for r in results),
        "runs": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DATABASE_URL"] = args.database_url
    django.setup()  # only to tell whether each sessionplus engine has landed
    result = run(args.database_url, args.redis_url, args.seconds, args.warmup, args.rounds)
    with open(args.output, "w") as file:
        json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()
