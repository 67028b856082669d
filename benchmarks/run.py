"""
``make bench``: every engine's per-operation benchmark (one process each), then the load
benchmark; prints a markdown table and writes the JSON to benchmarks/results/.

    python -m benchmarks [--engines db_postgres,redis] [--requests 200] [--rounds 8] [--no-load]
                         [--profile [N]]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from datetime import timezone as dt_timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.engines import ENGINES
from benchmarks.services import (
    RedisService,
    drop_mariadb_database,
    drop_postgres_database,
    mariadb_database,
    mariadb_version,
    postgres_database,
    postgres_version,
    redis_version,
)

ROOT = Path(__file__).resolve().parent.parent
SERVERS = {"postgres": "PostgreSQL", "mariadb": "MariaDB"}
RESULTS = Path(__file__).with_name("results")
PROFILE_TOP = 12
INSTRUCTION_REQUESTS = 40
WORKER_REQUESTS = 300


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(line.split(":", 1)[1].strip() for line in file if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "platform": platform.platform(terse=True)}


def git_revision() -> str:
    """Return the commit measured, saying so when sessionplus/ differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", "sessionplus")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"{head}, with uncommitted changes" if changed else head


def versions(redis_url: str | None, databases: dict[str, str | None]) -> dict[str, str]:
    found = {
        "Python": platform.python_version(),
        "sessionplus": f"{metadata.version('sessionplus')} ({git_revision()})",
    }
    for package in ("Django", "django-redis", "redis", "psycopg", "mysqlclient", "gunicorn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package if package != "redis" else "redis-py"] = metadata.version(package)
    if redis_url:
        found["Redis"] = redis_version(redis_url)
    if databases["postgres"]:
        found["PostgreSQL"] = postgres_version(databases["postgres"])
    if databases["mariadb"]:
        found["MariaDB"] = mariadb_version(databases["mariadb"])
    import sqlite3

    found["SQLite"] = sqlite3.sqlite_version
    if shutil.which("wrk"):
        banner = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        found["wrk"] = banner.split()[1] if banner else "?"
    return found


def run_logged(command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a benchmark process, passing its progress through; return its exit code and log tail."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    tail: collections.deque[str] = collections.deque(maxlen=40)
    for line in process.stderr:
        sys.stderr.write(line)
        tail.append(line)
    return process.wait(), "".join(tail)


def run_engine(
    name: str,
    args: argparse.Namespace,
    workdir: str,
    redis_url: str | None,
    databases: dict[str, str | None],
) -> dict[str, Any]:
    engine = ENGINES[name]
    base = {"engine": name, "label": engine.label}
    if engine.database in SERVERS and not databases[engine.database]:
        return {**base, "not_measured": f"not measured (no {SERVERS[engine.database]} answering)"}
    if engine.uses_redis and not redis_url:
        return {**base, "not_measured": "not measured (no Redis)"}
    database = databases.get(engine.database) or f"sqlite:///{workdir}/{name}.sqlite3"
    output = os.path.join(workdir, f"{name}.json")
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_DATABASE_URL": database,
        **({} if engine.sessions_in_sql else {"BENCH_AUTH_ONLY_SQLITE": "1"}),
        **({"BENCH_REDIS_URL": redis_url} if redis_url else {}),
    }
    command = [sys.executable, "-m", "benchmarks.per_operation", "--engine", name]
    command += ["--requests", str(args.requests), "--rounds", str(args.rounds)]
    command += ["--warmup", str(args.warmup), "--output", output]
    command += ["--file-dir", os.path.join(workdir, f"{name}-files")]
    command += ["--profile", str(args.profile)]
    command += ["--instructions", str(args.instructions)]
    returncode, log = run_logged(command, env=environment)
    if returncode != 0:
        return {**base, "not_measured": "failed", "error": log}
    with open(output) as file:
        result = json.load(file)
    report.derive(result)
    return result


def run_load(
    args: argparse.Namespace, workdir: str, redis_url: str | None, pg_url: str | None
) -> dict[str, Any]:
    from benchmarks.load import missing_tools

    if args.no_load:
        return {"not_measured": "skipped (--no-load)"}
    if not (redis_url and pg_url):
        return {"not_measured": "needs both Redis and PostgreSQL"}
    missing = missing_tools()
    if missing:
        return {"not_measured": f"{' and '.join(missing)} not installed"}
    output = os.path.join(workdir, "load.json")
    command = [sys.executable, "-m", "benchmarks.load", "--output", output]
    command += ["--database-url", pg_url, "--redis-url", redis_url]
    command += ["--seconds", str(args.load_seconds), "--rounds", str(args.load_rounds)]
    command += ["--warmup", str(args.load_warmup)]
    command += ["--worker-instructions", str(args.worker_instructions)]
    returncode, log = run_logged(command)
    if returncode != 0:
        return {"not_measured": "failed", "error": log}
    with open(output) as file:
        load = json.load(file)
    report.derive_load(load)
    return load


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated")
    parser.add_argument("--requests", type=int, default=150, help="requests per round")
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds per engine")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--no-load", action="store_true", help="skip gunicorn + wrk")
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=PROFILE_TOP,
        default=0,
        metavar="N",
        help=f"print sessionplus's top N functions per scenario (cProfile; N={PROFILE_TOP})",
    )
    parser.add_argument(
        "--instructions",
        type=int,
        nargs="?",
        const=INSTRUCTION_REQUESTS,
        default=0,
        metavar="N",
        help="also count CPU instructions per request under callgrind, over N requests per "
        f"scenario and side (valgrind, Python 3.11+; N={INSTRUCTION_REQUESTS})",
    )
    parser.add_argument(
        "--worker-instructions",
        type=int,
        nargs="?",
        const=WORKER_REQUESTS,
        default=0,
        metavar="N",
        help="also count one gunicorn worker's instructions, cache misses and mispredicted "
        "branches per request of the load's mix under callgrind, over N requests "
        f"(valgrind; about 10 minutes; N={WORKER_REQUESTS})",
    )
    parser.add_argument("--load-seconds", type=int, default=12)
    parser.add_argument("--load-warmup", type=int, default=3)
    parser.add_argument("--load-rounds", type=int, default=3)
    parser.add_argument("--database-name", default="sessionplus_bench")
    parser.add_argument("--drop-database", action="store_true", help="drop it afterwards")
    parser.add_argument("--output-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    unknown = set(args.engines.split(",")) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engines {sorted(unknown)}; choose from {sorted(ENGINES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = datetime.now(dt_timezone.utc)
    redis_service = RedisService()
    workdir = tempfile.mkdtemp(prefix="sessionplus-bench-")
    databases: dict[str, str | None] = {"postgres": None, "mariadb": None}
    try:
        redis_url = redis_service.start()
        names = args.engines.split(",")
        wanted = {ENGINES[name].database for name in names}
        if not args.no_load or "postgres" in wanted:
            databases["postgres"] = postgres_database(args.database_name)
        if "mariadb" in wanted:
            databases["mariadb"] = mariadb_database(args.database_name)
        engines = [run_engine(name, args, workdir, redis_url, databases) for name in names]
        load = run_load(args, workdir, redis_url, databases["postgres"])
        result = {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "versions": versions(redis_url, databases),
            "config": {"requests": args.requests, "rounds": args.rounds, "warmup": args.warmup},
            "per_operation": engines,
            "load": load,
        }
    finally:
        redis_service.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if databases["postgres"] and args.drop_database:
            drop_postgres_database(databases["postgres"])
        if databases["mariadb"] and args.drop_database:
            drop_mariadb_database(databases["mariadb"])
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    for name in (f"bench-{stamp}.json", "latest.json"):
        (output_dir / name).write_text(json.dumps(result, indent=1) + "\n")
    print(report.markdown(result))
    print(f"JSON: {output_dir / f'bench-{stamp}.json'}")
    failures = [e for e in [*engines, load] if e.get("not_measured") == "failed"]
    for failure in failures:
        print(f"{failure.get('engine', 'load')} failed (its log is above).", file=sys.stderr)
    return 1 if failures else 0
