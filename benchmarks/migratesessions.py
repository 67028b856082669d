"""
Adopting sessionplus on PostgreSQL: the bulk move, and what read-through costs a request.

Move: ``--sessions`` live sessions in Django's ``django_session`` (one signed payload, keys
spread over the key space) moved by ``migratesessions_plus`` into ``sessionplus_session``.
Reported: total time, sessions/s, the longest single SQL statement, and the worst latency
seen by a thread with its own connection doing what a request does meanwhile (read a
session by key from sessionplus's table, then from Django's).

Read-through: median time to load a session through ``sessionplus.backends.db`` with
``SESSIONPLUS_PREVIOUS_ENGINE`` set, when it is already in sessionplus's table (a hit), when
it is adopted from Django's (a miss), and when neither has it; and a hit without the setting.

    python -m benchmarks.migratesessions [--sessions 1000000] [--batch-size 1000]

Prints a markdown table and writes the JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import statistics
import time
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from typing import Any

from benchmarks.clearsessions import Reader, percentile, save, setup_django, timed_statements
from benchmarks.run import RESULTS, git_revision, machine
from benchmarks.services import drop_postgres_database, postgres_database, postgres_version

DJANGO_DB = "django.contrib.sessions.backends.db"
PLUS_DB = "sessionplus.backends.db"
PAYLOAD_CHARS = 300
# A request during the switch: sessionplus's table first, then Django's.
READ_THROUGH_SQL = (
    "SELECT session_data, expire_date FROM sessionplus_session WHERE session_key = %(key)s "
    "UNION ALL SELECT session_data, expire_date FROM django_session WHERE session_key = %(key)s"
)


class ReadThroughReader(Reader):
    """
    The reads in a process of their own: in the mover's process they would wait for its
    GIL, measuring Python's thread switching instead of the database.
    """

    sql = READ_THROUGH_SQL

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        self.stop, self.ready = context.Event(), context.Event()
        self.results, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=self.serve, args=(sender,), daemon=True)
        self.process.start()

    def serve(self, sender: Any) -> None:
        self.run()
        sender.send(self.timeline)

    def join(self) -> None:
        self.timeline = self.results.recv()
        self.process.join()


def fill(url: str, sessions: int) -> None:
    """Put ``sessions`` live sessions in Django's table, nothing in sessionplus's."""
    import psycopg
    from django.contrib.sessions.backends.db import SessionStore

    data = SessionStore().encode({"_auth_user_id": "1", "cart": "x" * PAYLOAD_CHARS})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE django_session, sessionplus_session")
        conn.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date)"
            " SELECT md5('s' || g), %(data)s, now() + interval '1 day' + g * interval '1 ms'"
            " FROM generate_series(1, %(sessions)s) AS g",
            {"data": data, "sessions": sessions},
        )
        conn.execute("VACUUM ANALYZE django_session")
        conn.execute("VACUUM ANALYZE sessionplus_session")
        conn.execute("CHECKPOINT")


def counts(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM django_session),"
            " (SELECT count(*) FROM sessionplus_session)"
        ).fetchone()


def move(args: argparse.Namespace, url: str) -> dict[str, Any]:
    import psycopg
    from django.core.management import call_command
    from django.test import override_settings

    fill(url, args.sessions)
    with psycopg.connect(url) as conn:
        sample = conn.execute("SELECT session_key FROM django_session LIMIT 10000").fetchall()
    keys = [key for (key,) in sample]
    reader = ReadThroughReader(url, keys, args.read_interval_ms / 1000)
    reader.start()
    reader.ready.wait()
    time.sleep(0.5)
    move_started = time.perf_counter()  # CLOCK_MONOTONIC: one clock for both processes
    with override_settings(SESSION_ENGINE=PLUS_DB), timed_statements() as durations:
        started = time.perf_counter()
        call_command(
            "migratesessions_plus",
            "--from",
            DJANGO_DB,
            "--batch-size",
            str(args.batch_size),
            stdout=io.StringIO(),
        )
        elapsed = time.perf_counter() - started
    move_ended = time.perf_counter()
    reader.stop.set()
    reader.join()
    during = [took for at, took in reader.timeline if move_started <= at <= move_ended]
    assert counts(url) == (0, args.sessions), counts(url)
    quiet = [took for at, took in reader.timeline if at < move_started]
    return {
        "sessions": args.sessions,
        "seconds": elapsed,
        "sessions_per_second": args.sessions / elapsed,
        "statements": len(durations),
        "longest_statement_s": max(durations),
        "reads_during": len(during),
        "read_worst_ms": max(during) * 1000,
        "read_p99_ms": percentile(during, 0.99) * 1000,
        "read_median_ms": statistics.median(during) * 1000,
        "read_worst_before_ms": max(quiet) * 1000,
    }


def read_through(args: argparse.Namespace, url: str) -> dict[str, float]:
    """Median µs to load one session: a hit, an adoption, a key in neither store."""
    from django.contrib.sessions.backends.db import SessionStore as DjangoStore
    from django.test import override_settings

    from sessionplus.backends.db import SessionStore

    fill(url, 2 * args.loads)
    keys = sorted(DjangoStore.get_model_class().objects.values_list("session_key", flat=True))
    hits, misses = keys[: args.loads], keys[args.loads :]
    absent = [f"{n:032x}" for n in range(args.loads)]
    with override_settings(SESSION_ENGINE=PLUS_DB, SESSIONPLUS_PREVIOUS_ENGINE=DJANGO_DB):
        for key in hits:  # adopted now, so that loading them below is a hit
            SessionStore(key)["cart"]

    def median_us(keys: list[str], previous: str | None) -> float:
        timings = []
        with override_settings(SESSION_ENGINE=PLUS_DB, SESSIONPLUS_PREVIOUS_ENGINE=previous):
            for key in keys:
                started = time.perf_counter()
                found = SessionStore(key).get("cart")
                timings.append(time.perf_counter() - started)
                assert (found is None) == (keys is absent)
        return statistics.median(timings) * 1e6

    return {
        "hit_without_setting_us": median_us(hits, None),
        "hit_us": median_us(hits, DJANGO_DB),
        "adoption_us": median_us(misses, DJANGO_DB),
        "in_neither_us": median_us(absent, DJANGO_DB),
    }


def markdown(result: dict[str, Any]) -> str:
    moved, loads = result["move"], result["read_through"]
    return "\n".join(
        [
            f"PostgreSQL {result['versions']['postgresql']}: {moved['sessions']:,} sessions moved "
            f"from Django's db engine to sessionplus's, batches of "
            f"{result['parameters']['batch_size']:,}",
            "",
            "| | |",
            "|---|---:|",
            f"| total time | {moved['seconds']:,.1f} s |",
            f"| sessions/s | {moved['sessions_per_second']:,.0f} |",
            f"| statements | {moved['statements']:,} |",
            f"| longest statement | {moved['longest_statement_s'] * 1000:,.1f} ms |",
            f"| concurrent read-through reads during the move | {moved['reads_during']:,} |",
            f"| worst read latency before / during the move | "
            f"{moved['read_worst_before_ms']:,.1f} ms / {moved['read_worst_ms']:,.1f} ms |",
            f"| p99 read latency during the move | {moved['read_p99_ms']:,.1f} ms |",
            "",
            f"Loading one session through `sessionplus.backends.db` (median of "
            f"{result['parameters']['loads']:,})",
            "",
            "| | µs |",
            "|---|---:|",
            f"| hit, no `SESSIONPLUS_PREVIOUS_ENGINE` | {loads['hit_without_setting_us']:,.0f} |",
            f"| hit, with the setting | {loads['hit_us']:,.0f} |",
            f"| miss: adopted from Django's table | {loads['adoption_us']:,.0f} |",
            f"| miss: in neither table | {loads['in_neither_us']:,.0f} |",
            "",
        ]
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=2000, help="sessions per read-through case")
    parser.add_argument(
        "--read-interval-ms", type=float, default=1.0, help="pace of the concurrent reads"
    )
    parser.add_argument("--database-name", default="sessionplus_bench_migrate")
    parser.add_argument("--drop-database", action="store_true", help="drop it afterwards")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    url = postgres_database(args.database_name)
    if url is None:
        print("No PostgreSQL answers (DATABASE_URL or 127.0.0.1:5432).")
        return 1
    try:
        setup_django(url)
        result = {
            "date": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "revision": git_revision(),
            "versions": {"postgresql": postgres_version(url)},
            "parameters": {
                name: getattr(args, name)
                for name in ("sessions", "batch_size", "loads", "read_interval_ms")
            },
            "move": move(args, url),
            "read_through": read_through(args, url),
        }
    finally:
        if args.drop_database:
            from django.db import connections

            connections.close_all()
            drop_postgres_database(url)
    print(markdown(result))
    save(result, args.output_dir, "migratesessions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
