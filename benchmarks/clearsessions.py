"""
``clearsessions_plus`` against Django's ``clearsessions``, in the same run.

PostgreSQL: one table filled with ``--expired`` expired and ``--live`` live sessions (rows
interleaved on disk, the expired ones' expiries spread over two weeks), cleared once by each
command after an identical refill. For each: total time, rows/s, the longest single SQL
statement, and the worst latency seen by a thread with its own connection reading live
sessions by key while the cleanup runs. Django's command runs on the same table through
Django's own db engine pointed at sessionplus's model, so both delete the same rows from the
same schema and indexes.

Files: ``--files`` session files, half expired, for each engine in its own format; Django's
``clearsessions`` against ``clearsessions_plus``.

    python -m benchmarks.clearsessions [--expired 1000000] [--live 1000000] [--files 20000]

Prints a markdown table and writes the JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DjangoDbStore

from benchmarks.run import RESULTS, git_revision, machine
from benchmarks.services import drop_postgres_database, postgres_database, postgres_version

TARGETS = {
    "longest_statement_s": 1.0,
    "throughput_vs_django": 0.8,
    "file_speedup": 10.0,
}
PAYLOAD_CHARS = 300


class SessionStore(DjangoDbStore):
    """Django's db engine on sessionplus's table: ``clearsessions`` on an identical table."""

    @classmethod
    def get_model_class(cls):
        from sessionplus.models import Session

        return Session


# PostgreSQL ------------------------------------------------------------------------------


# How rows sit on disk. "ordered": in expiry order, as a table where sessions are inserted
# as they are created and never rewritten (the expired ones are the oldest pages). "random":
# expired and live rows interleaved with unrelated expiries, as after months of updates
# that moved rows into whatever free space the table had.
LAYOUTS = {
    "ordered": """
        SELECT g, g <= %(expired)s AS is_expired,
               CASE WHEN g <= %(expired)s
                    THEN now() - interval '1 minute'
                         - (%(expired)s - g) * interval '14 days' / %(expired)s
                    ELSE now() + interval '1 hour'
                         + (g - %(expired)s) * interval '14 days' / %(total)s END AS expiry
        FROM generate_series(1::bigint, %(total)s) AS g
    """,
    "random": """
        SELECT g, is_expired,
               CASE WHEN is_expired
                    THEN now() - interval '1 minute' - random() * interval '14 days'
                    ELSE now() + interval '1 hour' + random() * interval '14 days' END AS expiry
        FROM (
            -- Row g is expired when g * expired / total crosses an integer: an even spread.
            SELECT g, (g * %(expired)s) / %(total)s <> ((g - 1) * %(expired)s) / %(total)s
                   AS is_expired
            FROM generate_series(1::bigint, %(total)s) AS g
        ) AS spread
    """,
}


def fill(url: str, layout: str, expired: int, live: int) -> None:
    """Refill the table in ``layout``, then vacuum, analyse and checkpoint it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE sessionplus_session")
        conn.execute(
            "INSERT INTO sessionplus_session (session_key, session_data, expire_date, user_agent)"
            " SELECT md5(CASE WHEN is_expired THEN 'e' ELSE 'l' END || g),"
            " repeat('x', %(payload)s), expiry, ''"
            f" FROM ({LAYOUTS[layout]}) AS rows",
            {"payload": PAYLOAD_CHARS, "expired": expired, "total": expired + live},
        )
        conn.execute("VACUUM ANALYZE sessionplus_session")
        conn.execute("CHECKPOINT")


def live_keys(url: str, sample: int) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT session_key FROM sessionplus_session WHERE expire_date > now() LIMIT %s",
            (sample,),
        ).fetchall()
    return [key for (key,) in rows]


class Reader(threading.Thread):
    """
    Requests on their own connection, one every ``interval`` seconds: read a live session
    by key and time the read. Paced like traffic, so the loop measures stalls rather than
    competing with the cleanup for the CPU.
    """

    sql = "SELECT session_data, expire_date FROM sessionplus_session WHERE session_key = %(key)s"

    def __init__(self, url: str, keys: list[str], interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.keys, self.interval = url, keys, interval
        self.latencies: list[float] = []
        self.timeline: list[tuple[float, float]] = []  # (when, how long) of each read
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        import psycopg

        chooser = random.Random(0)
        with psycopg.connect(self.url, autocommit=True) as conn:
            self.ready.set()
            next_read = time.perf_counter()
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute(self.sql, {"key": chooser.choice(self.keys)}).fetchall()
                self.latencies.append(time.perf_counter() - started)
                self.timeline.append((started, self.latencies[-1]))
                next_read = max(next_read + self.interval, time.perf_counter())
                time.sleep(max(0.0, next_read - time.perf_counter()))


@contextmanager
def timed_statements() -> Iterator[list[float]]:
    """Record the duration of every statement the command sends on its connection."""
    from django.db import connection

    durations: list[float] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            durations.append(time.perf_counter() - started)

    with connection.execute_wrapper(timer):
        yield durations


def count_rows(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        expired, live = conn.execute(
            "SELECT count(*) FILTER (WHERE expire_date < now()), "
            "count(*) FILTER (WHERE expire_date >= now()) FROM sessionplus_session"
        ).fetchone()
    return expired, live


def clear_table(
    args: argparse.Namespace, url: str, layout: str, name: str, run: Callable[[], None]
) -> dict:
    expired, live = args.expired, args.live
    fill(url, layout, expired, live)
    reader = Reader(url, live_keys(url, 10_000), args.read_interval_ms / 1000)
    reader.start()
    reader.ready.wait()
    time.sleep(0.5)  # the loop's latency before the cleanup, for comparison
    before = len(reader.latencies)
    with timed_statements() as durations:
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
    during = reader.latencies[before:]
    reader.stop.set()
    reader.join()
    left_expired, left_live = count_rows(url)
    assert (left_expired, left_live) == (0, live), (name, left_expired, left_live)
    quiet = reader.latencies[:before]
    return {
        "layout": layout,
        "command": name,
        "seconds": elapsed,
        "rows_per_second": expired / elapsed,
        "statements": len(durations),
        "longest_statement_s": max(durations),
        "reads_during": len(during),
        "read_worst_ms": max(during) * 1000 if during else None,
        "read_p99_ms": percentile(during, 0.99) * 1000 if during else None,
        "read_median_ms": statistics.median(during) * 1000 if during else None,
        "read_worst_before_ms": max(quiet) * 1000 if quiet else None,
    }


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def quietly(command: str, *args: str, **settings: Any) -> Callable[[], None]:
    from django.core.management import call_command
    from django.test import override_settings

    def run() -> None:
        with override_settings(**settings):
            call_command(command, *args, stdout=io.StringIO())

    return run


def database_benchmark(args: argparse.Namespace, url: str) -> list[dict]:
    contenders = {
        "clearsessions (Django)": quietly("clearsessions", SESSION_ENGINE=__name__),
        "clearsessions_plus": quietly(
            "clearsessions_plus",
            "--batch-size",
            str(args.batch_size),
            SESSION_ENGINE="sessionplus.backends.db",
        ),
    }
    results = []
    for layout in args.layouts:
        for round_number in range(args.rounds):
            names = list(contenders)
            if round_number % 2:
                names.reverse()  # alternate who goes first
            for name in names:
                run = contenders[name]
                result = clear_table(args, url, layout, name, run)
                results.append({"round": round_number + 1, **result})
    return results


# Files -----------------------------------------------------------------------------------


def write_django_files(directory: str, count: int) -> None:
    from django.contrib.sessions.backends.file import SessionStore as DjangoFileStore
    from django.test import override_settings

    with override_settings(SESSION_FILE_PATH=directory):
        store = DjangoFileStore()
        payload = store.encode({"user": "x" * PAYLOAD_CHARS, "n": 1}).encode()
        long_ago = time.time() - 30 * 86400  # past SESSION_COOKIE_AGE: expired for Django
        for n in range(count):
            path = os.path.join(directory, f"sessionid{n:032x}")
            with open(path, "wb") as out:
                out.write(payload)
            if n % 2 == 0:
                os.utime(path, (long_ago, long_ago))


def write_sessionplus_files(directory: str, count: int) -> None:
    from django.test import override_settings

    from sessionplus.backends.file import SessionStore as FileStore
    from sessionplus.backends.record import StoredSession
    from sessionplus.backends.timestamps import now_timestamp

    with override_settings(SESSION_FILE_PATH=directory):
        store = FileStore()
        data = store.encode({"user": "x" * PAYLOAD_CHARS, "n": 1})
        now = now_timestamp()
        metadata = {"created_at": now - 86400, "last_activity": now - 3600}
        for n in range(count):
            expires_at = now - 86400 if n % 2 == 0 else now + 86400
            record = StoredSession(data=data, expires_at=expires_at, metadata=metadata)
            with open(os.path.join(directory, f"sessionid{n:032x}"), "w") as out:
                out.write(record.to_text())


def file_floor(directory: str) -> None:
    """The system calls any cleanup makes: read each file's first line, unlink the expired."""
    with os.scandir(directory) as entries:
        for n, entry in enumerate(sorted(entries, key=lambda entry: entry.name)):
            with open(entry.path, "rb") as session_file:
                session_file.readline()
            if n % 2 == 0:
                os.unlink(entry.path)


def empty(directory: str) -> None:
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))


def timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def file_result(round_number: int, command: str, files: int, seconds: float) -> dict:
    return {
        "round": round_number + 1,
        "command": command,
        "files": files,
        "seconds": seconds,
        "files_per_second": files / seconds,
    }


def file_benchmark(args: argparse.Namespace) -> list[dict]:
    contenders = {
        "clearsessions (Django)": (
            write_django_files,
            "clearsessions",
            (),
            "django.contrib.sessions.backends.file",
        ),
        "clearsessions_plus": (
            write_sessionplus_files,
            "clearsessions_plus",
            ("--batch-size", str(args.batch_size)),
            "sessionplus.backends.file",
        ),
    }
    # Django's file engine remembers its directory for the life of the process: each
    # contender keeps one directory, emptied and refilled every round.
    directories = {name: tempfile.mkdtemp(prefix="sessionplus-bench-files-") for name in contenders}
    floor_directory = tempfile.mkdtemp(prefix="sessionplus-bench-floor-")
    results = []
    try:
        for round_number in range(args.rounds):
            names = list(contenders)
            if round_number % 2:
                names.reverse()
            for name in names:
                writer, command, options, engine = contenders[name]
                directory = directories[name]
                empty(directory)
                writer(directory, args.files)
                os.sync()  # no writeback of the fresh files in the middle of the timing
                run = quietly(command, *options, SESSION_ENGINE=engine, SESSION_FILE_PATH=directory)
                elapsed = timed(run)
                left = len(os.listdir(directory))
                assert left == args.files - (args.files + 1) // 2, (name, left)
                results.append(file_result(round_number, name, args.files, elapsed))
            empty(floor_directory)
            write_sessionplus_files(floor_directory, args.files)
            os.sync()
            elapsed = timed(lambda: file_floor(floor_directory))
            results.append(file_result(round_number, "floor", args.files, elapsed))
    finally:
        for directory in [*directories.values(), floor_directory]:
            shutil.rmtree(directory, ignore_errors=True)
    return results


# Report ----------------------------------------------------------------------------------


def best(results: list[dict], command: str, layout: str | None = None) -> dict:
    """The median run of a command (by time), so one unlucky round does not decide."""
    runs = sorted(
        (r for r in results if r["command"] == command and r.get("layout") == layout),
        key=lambda r: r["seconds"],
    )
    return runs[(len(runs) - 1) // 2]


def summary(database: list[dict], files: list[dict]) -> dict:
    out: dict[str, Any] = {}
    for layout in dict.fromkeys(r["layout"] for r in database):
        django = best(database, "clearsessions (Django)", layout)
        plus = best(database, "clearsessions_plus", layout)
        out[layout] = {
            "throughput_vs_django": plus["rows_per_second"] / django["rows_per_second"],
            "longest_statement_s": max(
                r["longest_statement_s"]
                for r in database
                if r["command"] == "clearsessions_plus" and r["layout"] == layout
            ),
        }
    if files:
        django = best(files, "clearsessions (Django)")
        out["file_speedup"] = django["seconds"] / best(files, "clearsessions_plus")["seconds"]
        out["file_speedup_ceiling"] = django["seconds"] / best(files, "floor")["seconds"]
    return out


def database_table(result: dict, layout: str) -> list[str]:
    args, database = result["parameters"], result["database"]
    django = best(database, "clearsessions (Django)", layout)
    plus = best(database, "clearsessions_plus", layout)
    ratio = result["summary"][layout]["throughput_vs_django"]
    return [
        f"PostgreSQL {result['versions'].get('postgresql', '?')}, {layout} layout: "
        f"{args['expired']:,} expired + {args['live']:,} live sessions, batches of "
        f"{args['batch_size']:,} (median of {args['rounds']} round(s))",
        "",
        "| | Django `clearsessions` | `clearsessions_plus` | target |",
        "|---|---:|---:|---|",
        f"| total time | {django['seconds']:.2f} s | {plus['seconds']:.2f} s | |",
        f"| rows/s | {django['rows_per_second']:,.0f} | {plus['rows_per_second']:,.0f} | "
        f"≥ 80% of Django's: {ratio:.0%} |",
        f"| statements | {django['statements']:,} | {plus['statements']:,} | |",
        f"| longest statement | {django['longest_statement_s'] * 1000:,.0f} ms | "
        f"{plus['longest_statement_s'] * 1000:,.0f} ms | < 1 s |",
        f"| concurrent reads during cleanup | {django['reads_during']:,} | "
        f"{plus['reads_during']:,} | |",
        f"| worst read latency before cleanup | {fmt_ms(django['read_worst_before_ms'])} | "
        f"{fmt_ms(plus['read_worst_before_ms'])} | |",
        f"| worst read latency during cleanup | {fmt_ms(django['read_worst_ms'])} | "
        f"{fmt_ms(plus['read_worst_ms'])} | never stalled for the cleanup |",
        f"| p99 read latency during cleanup | {fmt_ms(django['read_p99_ms'])} | "
        f"{fmt_ms(plus['read_p99_ms'])} | |",
        "",
    ]


def files_table(result: dict) -> list[str]:
    files = result["files"]
    django = best(files, "clearsessions (Django)")
    plus = best(files, "clearsessions_plus")
    floor = best(files, "floor")
    return [
        f"File engine: {result['parameters']['files']:,} session files, half expired "
        f"(median of {result['parameters']['rounds']} round(s))",
        "",
        "| | Django `clearsessions` | `clearsessions_plus` | floor | target |",
        "|---|---:|---:|---:|---|",
        f"| total time | {django['seconds'] * 1000:,.0f} ms | {plus['seconds'] * 1000:,.0f} ms"
        f" | {floor['seconds'] * 1000:,.0f} ms"
        f" | ≥ 10x faster: {result['summary']['file_speedup']:.1f}x |",
        f"| files/s | {django['files_per_second']:,.0f} | {plus['files_per_second']:,.0f}"
        f" | {floor['files_per_second']:,.0f} | |",
        "",
        "Floor: the system calls any cleanup needs (open and read one line of each file,"
        " unlink the expired ones), nothing parsed.",
        "",
    ]


def markdown(result: dict) -> str:
    lines = []
    for layout in dict.fromkeys(r["layout"] for r in result["database"]):
        lines += database_table(result, layout)
    if result["files"]:
        lines += files_table(result)
    return "\n".join(lines)


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


# Main ------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expired", type=int, default=1_000_000)
    parser.add_argument("--live", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--read-interval-ms", type=float, default=1.0, help="pace of the concurrent reads"
    )
    parser.add_argument(
        "--layouts",
        type=lambda value: value.split(","),
        default=list(LAYOUTS),
        help="comma-separated: " + ", ".join(LAYOUTS),
    )
    parser.add_argument("--no-database", action="store_true", help="files only")
    parser.add_argument("--database-name", default="sessionplus_bench_clear")
    parser.add_argument("--drop-database", action="store_true", help="drop it afterwards")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def setup_django(url: str | None) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    if url:
        os.environ["BENCH_DATABASE_URL"] = url
    import django
    from django.core.management import call_command

    django.setup()
    if url:
        call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    url = None if args.no_database else postgres_database(args.database_name)
    if not args.no_database and url is None:
        print("No PostgreSQL answers (DATABASE_URL or 127.0.0.1:5432); use --no-database.")
        return 1
    try:
        setup_django(url)
        database = database_benchmark(args, url) if url else []
        files = file_benchmark(args) if args.files else []
        result = {
            "date": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "revision": git_revision(),
            "versions": {"postgresql": postgres_version(url)} if url else {},
            "parameters": {
                name: getattr(args, name)
                for name in (
                    *("expired", "live", "files", "batch_size", "rounds", "layouts"),
                    "read_interval_ms",
                )
            },
            "database": database,
            "files": files,
            "summary": summary(database, files),
            "targets": TARGETS,
        }
    finally:
        if url and args.drop_database:
            from django.db import connections

            connections.close_all()
            drop_postgres_database(url)
    print(markdown(result))
    save(result, args.output_dir, "clearsessions")
    return 0


def save(result: dict, output_dir: Path, name: str) -> None:
    """Write a benchmark's result as ``<name>-<UTC time>.json`` and say where."""
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(dt_timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = output_dir / f"{name}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Saved {path}")


if __name__ == "__main__":
    raise SystemExit(main())
