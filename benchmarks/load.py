"""
Under load: a site with the session + auth + messages stack, served by gunicorn (2 sync
workers, loopback) and driven by wrk for a fixed time, Django stock and sessionplus taking
turns, with sessions in Redis and in PostgreSQL. Each round also serves a page that never
touches the session (the ceiling: what this server reaches with no session work at all), and
every run reads the CPU time the gunicorn workers, the store's server and wrk spent per
request, so a ratio can be read as a share of the session's own cost.

    python -m benchmarks.load --database-url postgres://… --redis-url redis://… --output load.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django

from benchmarks.engines import PLUS_MIDDLEWARE, STOCK_MIDDLEWARE, engine_landed
from tests.support.loopback import free_port

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
# Processes whose CPU time is the store's own: every process of that name on the machine.
STORE_SERVERS = {"redis": "redis-server", "postgres": "postgres"}
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
    """
    gunicorn serving the benchmark site with one configuration: ``workers`` of them, the
    whole server run by ``wrapper`` (valgrind) if given, allowed ``start_seconds`` to answer.
    """

    def __init__(
        self,
        environment: dict,
        workers: int = WORKERS,
        wrapper: list[str] | None = None,
        start_seconds: int = 30,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.start_seconds = start_seconds
        self.process = subprocess.Popen(
            [
                *(wrapper or ()),
                *(sys.executable, "-m", "gunicorn", "benchmarks.wsgi:application"),
                *("--workers", str(workers), "--bind", f"127.0.0.1:{self.port}"),
                *("--log-level", "warning", "--timeout", str(start_seconds)),
            ],
            cwd=ROOT,
            env=environment,
        )

    def __enter__(self) -> Site:
        deadline = time.monotonic() + self.start_seconds
        while True:  # the server up, a worker up and the page answering
            exited = self.process.poll()
            if exited is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start (exit code {exited})")
            try:
                # A worker's first answer waits for Django's start (long under valgrind).
                with urllib.request.urlopen(self.url, timeout=self.start_seconds) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=self.start_seconds)


def stat(pid: int | str) -> tuple[str, list[str]]:
    """Return a process's command name and the fields of ``/proc/<pid>/stat`` after it."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name, rest = text[text.index("(") + 1 :].rsplit(")", 1)
    return name, rest.split()


def cpu_times(pid: int) -> tuple[float, float]:
    """Return the user and the system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = stat(pid)[1]
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    # utime and stime: fields 14 and 15 of proc(5), counted after the command's name.
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a process has used so far (0 once it is gone)."""
    return sum(cpu_times(pid))


def summed_cpu_times(pids: list[int]) -> tuple[float, float]:
    """Return the user and the system CPU time of ``pids`` together, each read once."""
    times = [cpu_times(pid) for pid in pids]
    return sum(user for user, _ in times), sum(system for _, system in times)


def processes() -> Iterator[tuple[int, str, int]]:
    """Yield the pid, command name and parent pid of every process (proc(5))."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            name, fields = stat(entry.name)
        except OSError:  # ended meanwhile
            continue
        yield int(entry.name), name, int(fields[1])


def drive(site: Site, seconds: int, store: str, page: str = "session") -> dict[str, Any]:
    """
    Run wrk against ``site`` for ``seconds`` and return its figures, with the CPU time per
    request of the site's workers, of the store's server and of wrk itself. ``page``:
    "session" browses with session cookies, "ceiling" asks for the page that never touches
    the session (``session.lua``).
    """
    everyone = list(processes())
    workers = [pid for pid, _, parent in everyone if parent == site.process.pid]
    servers = [pid for pid, name, _ in everyone if name == STORE_SERVERS[store]]
    # The workers' system time apart: whether a difference between stacks is the kernel's.
    workers_before = summed_cpu_times(workers)
    store_before = sum(map(cpu_seconds, servers))
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = subprocess.run(
        ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(LUA), site.url, "--", page],
        capture_output=True,
        text=True,
        check=True,
    )
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_after = summed_cpu_times(workers)
    store_after = sum(map(cpu_seconds, servers))
    line = next(line for line in finished.stdout.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    requests = max(raw["requests"], 1)
    wrk_cpu = (wrk_after.ru_utime + wrk_after.ru_stime) - (
        wrk_before.ru_utime + wrk_before.ru_stime
    )
    return {
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "requests": raw["requests"],
        "errors": raw["errors"],
        "cpu_us_per_request": {
            "workers": round((sum(workers_after) - sum(workers_before)) * 1e6 / requests, 1),
            "workers_system": round((workers_after[1] - workers_before[1]) * 1e6 / requests, 1),
            "store": round((store_after - store_before) * 1e6 / requests, 1),
            "wrk": round(wrk_cpu * 1e6 / requests, 1),
        },
    }


def run(
    database_url: str, redis_url: str, seconds: int, warmup: int, rounds: int
) -> dict[str, Any]:
    migrate(database_url, redis_url)
    landed = {store: engine_landed(SETUPS[store]["sessionplus"]) for store in SETUPS}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        store: {"stock": [], "sessionplus": []} for store in SETUPS
    }
    ceiling: list[dict[str, Any]] = []
    for number in range(rounds):
        for store in SETUPS:
            order = ["stock", "sessionplus"] if number % 2 == 0 else ["sessionplus", "stock"]
            for variant in order:
                if variant == "sessionplus" and not landed[store]:
                    continue
                environment = site_environment(database_url, redis_url, store, variant)
                with Site(environment) as site:
                    drive(site, warmup, store)
                    result = drive(site, seconds, store)
                runs[store][variant].append(result)
                print(f"load {store} {variant}: {result['requests_per_s']} req/s", file=sys.stderr)
        # Django's stack serving the page that never touches the session: no engine's work.
        with Site(site_environment(database_url, redis_url, "redis", "stock")) as site:
            drive(site, warmup, "redis", page="ceiling")
            ceiling.append(drive(site, seconds, "redis", page="ceiling"))
        print(f"load ceiling: {ceiling[-1]['requests_per_s']} req/s", file=sys.stderr)
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
        "ceiling": summarize(ceiling),
    }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not results:
        return None
    return {
        "requests_per_s": round(statistics.median(r["requests_per_s"] for r in results), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
        "errors": sum(sum(r["errors"].values()) for r in results),
        "cpu_us_per_request": {
            part: round(statistics.median(r["cpu_us_per_request"][part] for r in results), 1)
            for part in results[0]["cpu_us_per_request"]
        },
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
    parser.add_argument(
        "--worker-instructions",
        type=int,
        default=0,
        metavar="N",
        help="also count one worker's instructions per request over N requests (callgrind)",
    )
    args = parser.parse_args(argv)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DATABASE_URL"] = args.database_url
    django.setup()  # only to tell whether each sessionplus engine has landed
    result = run(args.database_url, args.redis_url, args.seconds, args.warmup, args.rounds)
    if args.worker_instructions:
        from benchmarks import worker_count

        result["worker"] = worker_count.count(
            args.database_url, args.redis_url, args.worker_instructions
        )
    with open(args.output, "w") as file:
        json.dump(result, file, indent=1)


if __name__ == "__main__":
    main()
