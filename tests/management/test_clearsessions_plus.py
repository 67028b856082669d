"""manage.py clearsessions_plus on every engine, on real stores (the batches: ``test_cleanup``)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.models import Session as DjangoSession
from django.core.cache import caches
from django.db import connection, connections
from django.test import SimpleTestCase, TestCase, TransactionTestCase, override_settings
from django.utils import timezone
from django_redis import get_redis_connection
from freezegun import freeze_time

from sessionplus.backends.timestamps import now_timestamp
from sessionplus.models import Session
from tests.support.clocks import ZONES_APART, naive_clock_apart_from_time_zone
from tests.support.commands import TtyOutput, run_command
from tests.support.counting import count_storage
from tests.support.services import dead_port, repo_root
from tests.support.session_rows import (
    BATCH_STATEMENTS,
    add_rows,
    before_statement,
    key,
    live_keys,
    refresh,
    stored_keys,
)
from tests.support.threads import close_thread_connections


# A batch is one DELETE that picks its rows by their physical address (PostgreSQL, SQLite).
# MySQL/MariaDB have none Django can name and refuse LIMIT in a DELETE's subquery: a batch
# there selects its keys, then deletes them.
class SessionStore(SessionBase):
    """An engine that cannot clear expired sessions: ``--engine`` this module."""


def run(*args: str, stdout: io.StringIO | None = None) -> tuple[str, str, int]:
    """Run the command as cron would; return its output, error message and exit status."""
    return run_command("clearsessions_plus", *args, stdout=stdout)


# Rows locked by one connection and waited for by another (SQLite locks the whole file).
LOCK_WAITS = {
    "postgresql": "SELECT count(*) FROM pg_locks WHERE NOT granted",
    "mysql": "SELECT count(*) FROM information_schema.innodb_lock_waits",  # MariaDB
}


@pytest.mark.skipif(
    connection.vendor not in LOCK_WAITS,
    reason="row locks between connections: PostgreSQL and MariaDB only",
)
class ConcurrentRefreshTests(TransactionTestCase):
    """A session refreshed by a request while the batch's DELETE runs."""

    def test_a_row_refreshed_while_its_delete_waits_for_the_lock_stays(self):
        add_rows(expired=3, live=1)
        request = connections.create_connection("default")
        self.addCleanup(request.close)
        request.set_autocommit(False)
        tomorrow = Session._meta.get_field("expire_date").get_db_prep_value(
            timezone.now() + timedelta(days=1), request
        )
        with request.cursor() as cursor:
            # The request holds the row: the DELETE that picked it has to wait.
            cursor.execute(
                "UPDATE sessionplus_session SET expire_date = %s WHERE session_key = %s",
                [tomorrow, key("e", 1)],
            )
        outcome: list[Any] = []

        def clean() -> None:
            try:
                outcome.append(run("--batch-size", "10"))
            finally:
                close_thread_connections()

        cleaner = threading.Thread(target=clean)
        cleaner.start()
        self.wait_for_a_lock_wait()
        request.commit()
        cleaner.join(timeout=30)
        assert len(outcome) == 1
        assert outcome[0][2] == 0, outcome
        assert stored_keys() == {key("e", 1), key("l", 0)}

    def wait_for_a_lock_wait(self) -> None:
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(LOCK_WAITS[connection.vendor])
                if cursor.fetchone()[0]:
                    return
                # InnoDB refreshes its lock tables only when nobody read them for 0.1 s.
                time.sleep(0.2)
        pytest.fail("the cleanup never waited for the row the request held")


class CommandFrameTests(TestCase):
    """Options, output and exit status, whatever the engine."""

    def test_summary_line_counts_with_thousands_separators(self):
        add_rows(expired=1200, live=1)
        out, err, status = run()
        assert status == 0
        assert err == ""
        assert out.startswith("Deleted 1,200 expired sessions in ")
        assert out.endswith(" s.\n")

    def test_one_session_is_singular(self):
        add_rows(expired=1)
        out, _, status = run()
        assert status == 0
        assert out.startswith("Deleted 1 expired session in ")

    def test_nothing_expired(self):
        add_rows(live=2)
        out, _, status = run()
        assert status == 0
        assert out.startswith("Deleted 0 expired sessions in ")
        assert stored_keys() == live_keys(2)

    def test_batch_size_option(self):
        add_rows(expired=5, live=1)
        out, _, status = run("--batch-size", "2", "--verbosity", "3")
        assert status == 0
        assert "Batch 1: 2 expired sessions." in out
        assert "Batch 2: 2 expired sessions." in out
        assert "Batch 3: 1 expired session." in out
        assert stored_keys() == live_keys(1)

    def test_default_batch_size_is_5000(self):
        add_rows(expired=5001)
        out, _, status = run("--verbosity", "3")
        assert status == 0
        assert "Batch 1: 5,000 expired sessions." in out
        assert "Batch 2: 1 expired session." in out

    def test_dry_run_counts_and_deletes_nothing(self):
        add_rows(expired=3, live=2)
        out, _, status = run("--dry-run")
        assert status == 0
        assert out == "Would delete 3 expired sessions (dry run: nothing deleted).\n"
        assert len(stored_keys()) == 5

    def test_max_seconds_stops_between_batches_and_the_next_run_continues(self):
        add_rows(expired=5, live=1)
        out, _, status = run("--batch-size", "2", "--max-seconds", "0")
        assert status == 0
        assert out.startswith("Stopped after the 0 s budget: deleted 2 expired sessions in ")
        assert out.endswith("The next run continues.\n")
        assert len(stored_keys()) == 4
        run("--batch-size", "2")
        assert stored_keys() == live_keys(1)

    def test_verbosity_0_prints_nothing(self):
        add_rows(expired=2)
        out, err, status = run("--verbosity", "0")
        assert (out, err, status) == ("", "", 0)
        assert stored_keys() == set()

    def test_verbosity_2_names_the_engine_and_batch_size(self):
        out, _, _ = run("--verbosity", "2", "--batch-size", "1000")
        assert out.splitlines()[0] == (
            "Clearing expired sessions of sessionplus.backends.db in batches of 1,000."
        )

    def test_progress_line_only_on_a_terminal(self):
        add_rows(expired=5)
        terminal = TtyOutput()
        out, _, status = run("--batch-size", "2", stdout=terminal)
        assert status == 0
        progress, _, summary = out.rpartition("\r\x1b[K")
        assert "\r4 expired sessions so far, " in progress
        assert progress.count("\r") == 3
        assert "/s, " in progress
        assert summary.startswith("Deleted 5 expired sessions in ")
        add_rows(expired=5)
        out, _, _ = run("--batch-size", "2")
        assert "\r" not in out
        assert "so far" not in out

    def test_no_progress_line_at_verbosity_0(self):
        add_rows(expired=3)
        out, _, status = run("--verbosity", "0", stdout=TtyOutput())
        assert (out, status) == ("", 0)

    def test_batch_size_must_be_positive(self):
        _, err, status = run("--batch-size", "0")
        assert status == 1
        assert "--batch-size: must be a positive integer, not 0" in err

    def test_max_seconds_must_not_be_negative(self):
        _, err, status = run("--max-seconds", "-1")
        assert status == 1
        assert "--max-seconds: must be a number of seconds >= 0, not -1" in err

    def test_unknown_engine(self):
        out, err, status = run("--engine", "no.such.engine")
        assert status == 1
        assert out == ""
        assert err == "Unknown session engine 'no.such.engine': No module named 'no'"

    def test_module_without_a_session_store(self):
        _, err, status = run("--engine", "sessionplus.conf")
        assert status == 1
        assert err == "Session engine 'sessionplus.conf' has no SessionStore class."

    def test_engine_that_cannot_clear(self):
        _, err, status = run("--engine", __name__)
        assert status == 1
        assert err == f"Session engine '{__name__}' cannot clear expired sessions."

    def test_engine_option_overrides_session_engine(self):
        add_rows(DjangoSession, expired=2, live=1)
        add_rows(Session, expired=2)
        _, _, status = run("--engine", "django.contrib.sessions.backends.db")
        assert status == 0
        assert stored_keys(DjangoSession) == live_keys(1)
        assert len(stored_keys(Session)) == 2

    def test_sessions_are_judged_by_djangos_clock_when_time_zone_disagrees(self):
        # Without USE_TZ, Django's clock is the process's local time whatever TIME_ZONE says.
        from sessionplus.backends.db import SessionStore as DbStore

        for time_zone, process_zone in ZONES_APART:
            with naive_clock_apart_from_time_zone(time_zone, process_zone):
                live, expired = DbStore(), DbStore()
                live.set_expiry(3600)
                expired.set_expiry(-10)
                live.save()
                expired.save()
                _, _, status = run()
                assert status == 0
                assert stored_keys(Session) == {live.session_key}
                live.delete()


class DjangoEngineTests(TestCase):
    """Django's own engines: their clear_expired(), or a line saying nothing is needed."""

    def test_django_db_engine_falls_back_to_its_unbatched_clear_expired(self):
        add_rows(DjangoSession, expired=3, live=1)
        out, err, status = run("--engine", "django.contrib.sessions.backends.db")
        assert status == 0
        assert err == ""
        lines = out.splitlines()
        assert lines[0] == (
            "Note: django.contrib.sessions.backends.db has no batched cleanup; "
            "its clear_expired() runs unbatched."
        )
        assert lines[1].startswith("Cleared expired sessions in ")
        assert stored_keys(DjangoSession) == live_keys(1)

    def test_django_cached_db_engine_falls_back_too(self):
        add_rows(DjangoSession, expired=3, live=1)
        out, _, status = run("--engine", "django.contrib.sessions.backends.cached_db")
        assert status == 0
        assert "its clear_expired() runs unbatched" in out
        assert stored_keys(DjangoSession) == live_keys(1)

    def test_dry_run_does_not_run_an_unbatched_clear_expired(self):
        add_rows(DjangoSession, expired=3)
        out, _, status = run("--engine", "django.contrib.sessions.backends.db", "--dry-run")
        assert status == 0
        assert out.endswith("Dry run: not run, nothing deleted.\n")
        assert len(stored_keys(DjangoSession)) == 3

    def test_django_file_engine_falls_back_to_its_clear_expired(self):
        with (
            tempfile.TemporaryDirectory() as directory,
            override_settings(SESSION_FILE_PATH=directory),
        ):
            from django.contrib.sessions.backends.file import SessionStore as FileStore

            session = FileStore()
            session["a"] = 1
            session.set_expiry(-1)  # Django's file engine writes it, then finds it expired
            session.save()
            kept = FileStore()
            kept["a"] = 1
            kept.save()
            out, _, status = run("--engine", "django.contrib.sessions.backends.file")
            assert status == 0
            assert "django.contrib.sessions.backends.file has no batched cleanup" in out
            assert os.listdir(directory) == [f"sessionid{kept.session_key}"]

    def test_cache_engines_say_the_store_expires_entries_itself(self):
        for engine in ["django.contrib.sessions.backends.cache", "sessionplus.backends.cache"]:
            out, err, status = run("--engine", engine)
            assert (out, err, status) == (
                "The cache expires sessions itself: nothing to clear.\n",
                "",
                0,
            ), engine

    def test_signed_cookies_engines_say_nothing_is_stored_on_the_server(self):
        for engine in [
            "django.contrib.sessions.backends.signed_cookies",
            "sessionplus.backends.signed_cookies",
        ]:
            out, err, status = run("--engine", engine)
            assert (out, err, status) == (
                "Sessions live in signed cookies: nothing is stored on the server.\n",
                "",
                0,
            ), engine

    def test_nothing_to_clear_is_silent_at_verbosity_0(self):
        out, err, status = run("--engine", "sessionplus.backends.cache", "--verbosity", "0")
        assert (out, err, status) == ("", "", 0)


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_ENGINE="sessionplus.backends.cached_db", SESSION_CACHE_ALIAS="redis")
class CachedDbEngineTests(TestCase):
    """cached_db: the db engine's batches, then exactly the deleted rows' cache entries go."""

    @property
    def store_class(self) -> Any:
        from sessionplus.backends.cached_db import SessionStore as CachedDbStore

        return CachedDbStore

    def sessions(self, expired: int = 0, live: int = 0) -> list[str]:
        """Save sessions through the engine (row and cache entry); expired ones two hours ago."""
        keys = []
        with freeze_time(timezone.now() - timedelta(hours=2)):
            for n in range(expired):
                session = self.store_class()
                session.update({"n": n})
                session.set_expiry(60 + n)  # the lowest n expired first
                session.save()
                keys.append(session.session_key)
        for n in range(live):
            session = self.store_class()
            session.update({"n": n})
            session.save()
            keys.append(session.session_key)
        return keys

    def cached(self, keys: list[str]) -> set[str]:
        session_cache = self.store_class.session_cache()
        return {key for key in keys if caches["redis"].has_key(session_cache.entry_key(key))}

    def test_expired_rows_go_with_their_cache_entries_and_live_ones_stay_cached(self):
        expired, live = self.sessions(expired=5), self.sessions(live=2)
        assert self.cached(expired + live) == set(expired + live)
        out, err, status = run("--batch-size", "2")
        assert (err, status) == ("", 0)
        assert out.startswith("Deleted 5 expired sessions in ")
        assert stored_keys() == set(live)
        assert self.cached(expired + live) == set(live)

    def test_each_batch_is_one_statement_or_two_on_mysql_and_one_cache_call(self):
        self.sessions(expired=5)
        with count_storage() as count:
            run("--batch-size", "2")
        assert count.sql == BATCH_STATEMENTS * 3
        assert count.cache == ["delete_many"] * 3

    def test_a_row_refreshed_between_batches_stays_and_keeps_its_cache_entry(self):
        expired = self.sessions(expired=4)
        # A request extends the session due in the second batch right before that batch.
        with before_statement("DELETE", lambda: refresh(expired[2]), number=2):
            out, _, status = run("--batch-size", "2")
        assert status == 0
        assert out.startswith("Deleted 3 expired sessions in ")
        assert stored_keys() == {expired[2]}
        assert self.cached(expired) == {expired[2]}

    def test_dry_run_deletes_no_row_and_no_cache_entry(self):
        expired = self.sessions(expired=3)
        with count_storage() as count:
            out, _, status = run("--dry-run")
        assert status == 0
        assert out == "Would delete 3 expired sessions (dry run: nothing deleted).\n"
        assert count.cache == []
        assert stored_keys() == set(expired)
        assert self.cached(expired) == set(expired)

    def test_an_unreachable_cache_does_not_stop_the_cleanup(self):
        add_rows(expired=3, live=1)
        alias = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{dead_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3},
        }
        with (
            override_settings(
                CACHES={**django_settings.CACHES, "down": alias}, SESSION_CACHE_ALIAS="down"
            ),
            self.assertLogs("sessionplus.backends.cached_db", "WARNING") as logs,
        ):
            out, err, status = run()
        assert (err, status) == ("", 0)
        assert out.startswith("Deleted 3 expired sessions in ")
        assert stored_keys() == live_keys(1)
        assert "delete_many" in logs.output[0]


class CommandLineTests(SimpleTestCase):
    """The real command line: what cron sees on stderr, and the exit status."""

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", "clearsessions_plus", *args],
            cwd=repo_root(),
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def test_unknown_engine_is_one_line_on_stderr_and_status_1(self):
        result = self.manage("--engine", "no.such.engine")
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr == (
            "CommandError: Unknown session engine 'no.such.engine': No module named 'no'\n"
        )

    def test_unreachable_database_is_one_line_on_stderr_and_status_1(self):
        url = f"postgres://postgres@127.0.0.1:{dead_port()}/nowhere"
        result = self.manage("--engine", "django.contrib.sessions.backends.db", DATABASE_URL=url)
        assert result.returncode == 1
        assert result.stdout.startswith("Note: ")
        assert result.stderr.startswith(
            "CommandError: Cannot clear expired sessions of django.contrib.sessions.backends.db: "
        )
        assert result.stderr.count("\n") == 1

    def test_missing_table_is_one_line_on_stderr_and_status_1(self):
        # The in-memory SQLite database of a fresh process has no tables: never migrated.
        result = self.manage(DATABASE_URL="")
        assert result.returncode == 1
        assert result.stderr == (
            "CommandError: Cannot clear expired sessions of sessionplus.backends.db: "
            "no such table: sessionplus_session\n"
        )


def expired_header(seconds_ago: float = 60) -> bytes:
    return json.dumps({"expires_at": now_timestamp() - seconds_ago}).encode() + b"\n"


class FileEngineTests(SimpleTestCase):
    """The file engine: headers only, foreign files left alone, abandoned temp files gone."""

    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="sessionplus-clear-")
        self.addCleanup(shutil.rmtree, self.directory, ignore_errors=True)
        settings = override_settings(
            SESSION_ENGINE="sessionplus.backends.file", SESSION_FILE_PATH=self.directory
        )
        settings.enable()
        self.addCleanup(settings.disable)

    def sessions(self, expired: int = 0, live: int = 0) -> list[str]:
        """Save sessions through the engine; the expired ones were saved two hours ago."""
        from sessionplus.backends.file import SessionStore as FileStore

        keys = []
        with freeze_time(timezone.now() - timedelta(hours=2)):
            for n in range(expired):
                session = FileStore()
                session.update({"n": n})
                session.set_expiry(60)
                session.save()
                keys.append(session.session_key)
        for n in range(live):
            session = FileStore()
            session.update({"n": n})
            session.save()
            keys.append(session.session_key)
        return keys

    def write(self, name: str, content: bytes = b"", age: float = 0) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as out:
            out.write(content)
        if age:
            then = time.time() - age
            os.utime(path, (then, then))
        return path

    def files(self) -> set[str]:
        return set(os.listdir(self.directory))

    def test_expired_sessions_go_and_live_ones_stay(self):
        expired = self.sessions(expired=3)
        live = self.sessions(live=2)
        out, err, status = run()
        assert (err, status) == ("", 0)
        assert out.startswith("Deleted 3 expired sessions in ")
        assert self.files() == {f"sessionid{key}" for key in live}
        assert not set(expired) & {name.removeprefix("sessionid") for name in self.files()}

    def test_batch_boundaries(self):
        for expired, batches in [(0, [0]), (1, [1]), (3, [3, 0]), (4, [3, 1])]:
            for name in self.files():
                os.unlink(os.path.join(self.directory, name))
            self.sessions(expired=expired)
            out, _, status = run("--batch-size", "3", "--verbosity", "3")
            assert status == 0
            lines = [line for line in out.splitlines() if line.startswith("Batch ")]
            assert [int(line.split()[2]) for line in lines] == batches, expired
            assert self.files() == set()

    def test_expiry_is_read_from_the_header_without_decoding_the_payload(self):
        expired = self.write("sessionid" + "g" * 32, expired_header() + b"not signed data")
        live = self.write("sessionid" + "h" * 32, expired_header(-60) + b"not signed data")
        with self.assertNoLogs("django.security.SuspiciousSession"):
            out, _, status = run()
        assert status == 0
        assert out.startswith("Deleted 1 expired session in ")
        assert not os.path.exists(expired)
        assert os.path.exists(live)

    def test_files_that_are_not_session_files_are_left_alone(self):
        foreign = {
            self.write("notes.txt", expired_header()),
            self.write("sessionid-backup", expired_header()),
            self.write("sessionid" + "j" * 31, expired_header()),
            self.write("other" + "k" * 32, expired_header()),
            self.write("sessionid" + "l" * 32 + ".bak", expired_header(), age=7200),
        }
        os.mkdir(os.path.join(self.directory, "sessionid" + "m" * 32))
        out, _, status = run()
        assert status == 0
        assert out.startswith("Deleted 0 expired sessions in ")
        assert all(os.path.exists(path) for path in foreign)
        assert os.path.isdir(os.path.join(self.directory, "sessionid" + "m" * 32))

    def test_temporary_files_abandoned_for_over_an_hour_go_recent_ones_stay(self):
        abandoned = self.write("sessionidab12cd34.tmp", b"partial", age=3700)
        in_progress = self.write("sessionidef56gh78.tmp", b"partial", age=3500)
        self.sessions(expired=1)
        out, _, status = run()
        assert status == 0
        assert out.startswith("Deleted 1 expired session and 1 abandoned temporary file in ")
        assert not os.path.exists(abandoned)
        assert os.path.exists(in_progress)

    def test_dry_run_counts_and_removes_nothing(self):
        self.write("sessionidab12cd34.tmp", b"partial", age=7200)
        self.sessions(expired=2, live=1)
        before = self.files()
        out, _, status = run("--dry-run")
        assert status == 0
        assert out == (
            "Would delete 2 expired sessions and 1 abandoned temporary file "
            "(dry run: nothing deleted).\n"
        )
        assert self.files() == before

    def test_max_seconds_stops_between_batches(self):
        self.sessions(expired=5)
        out, _, status = run("--batch-size", "2", "--max-seconds", "0")
        assert status == 0
        assert out.startswith("Stopped after the 0 s budget: deleted 2 expired sessions in ")
        assert len(self.files()) == 3

    def test_safe_while_requests_write_and_delete_sessions(self):
        from sessionplus.backends.file import SessionStore as FileStore

        self.sessions(expired=200)
        live = [FileStore(key) for key in self.sessions(live=20)]
        stop = threading.Event()
        written: dict[str, int] = {}
        errors: list[BaseException] = []

        def requests() -> None:
            # Requests rewrite live sessions (a temp file, then a replace) and log out,
            # while the cleanup walks the same directory.
            try:
                rounds = 0
                while not stop.is_set() or rounds < 3:
                    rounds += 1
                    for session in live:
                        session["round"] = rounds
                        session.save()
                        written[session.session_key] = rounds
                    FileStore().save()  # a new session, then its logout
                    newest = FileStore()
                    newest["a"] = 1
                    newest.save()
                    newest.delete()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        writer = threading.Thread(target=requests)
        writer.start()
        try:
            results = [run("--batch-size", "7") for _ in range(5)]
        finally:
            stop.set()
            writer.join(timeout=60)
        assert errors == []
        assert all(status == 0 for _, _, status in results), results
        for session in live:
            assert FileStore(session.session_key)["round"] == written[session.session_key]
        assert not [name for name in self.files() if name.endswith(".tmp")]
        assert sum(int(out.split()[1]) for out, _, _ in results) == 200

    def test_missing_directory_is_one_line_error(self):
        self.write("sessionid" + "a" * 32, expired_header())
        missing = os.path.join(self.directory, "missing")
        with override_settings(SESSION_FILE_PATH=missing):
            _, err, status = run()
        assert status == 1
        assert err.startswith(
            "Cannot clear expired sessions of sessionplus.backends.file: "
            f"The session storage path {missing!r} doesn't exist."
        )
        assert "\n" not in err


def index_key(user_id: str) -> str:
    from sessionplus.backends.redis import SessionStore as RedisStore

    return RedisStore.user_index_key(user_id)


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_ENGINE="sessionplus.backends.redis")
class RedisEngineTests(SimpleTestCase):
    """The redis engine: Redis expires sessions; the command prunes per-user indexes."""

    def log_in(self, user_id: str) -> str:
        from sessionplus.backends.redis import SessionStore as RedisStore

        session = RedisStore()
        session.update({SESSION_KEY: user_id, "_auth_user_backend": "backend"})
        session.save()
        return session.session_key

    def expire(self, session_key: str) -> None:
        # What Redis does when the key's TTL runs out, without waiting for it.
        from sessionplus.backends.redis import SessionStore as RedisStore

        get_redis_connection("redis").delete(RedisStore.redis_key(session_key))

    def members(self, user_id: str) -> set[str]:
        return {m.decode() for m in get_redis_connection("redis").smembers(index_key(user_id))}

    def test_expired_sessions_are_pruned_from_per_user_indexes_and_counted(self):
        live = self.log_in("7")
        for session_key in [self.log_in("7"), self.log_in("8"), self.log_in("8")]:
            self.expire(session_key)
        out, err, status = run()
        assert (err, status) == ("", 0)
        assert out.startswith(
            "Redis expires sessions itself; removed 3 expired sessions from per-user indexes in "
        )
        assert self.members("7") == {live}
        assert self.members("8") == set()

    def test_nothing_to_prune(self):
        live = self.log_in("7")
        out, _, status = run()
        assert status == 0
        assert "removed 0 expired sessions from per-user indexes" in out
        assert self.members("7") == {live}

    def test_dry_run_leaves_indexes_alone(self):
        gone = self.log_in("7")
        self.expire(gone)
        out, _, status = run("--dry-run")
        assert status == 0
        assert (
            out == "Redis expires sessions itself (dry run: per-user indexes left as they are).\n"
        )
        assert self.members("7") == {gone}

    def test_unreachable_redis_is_one_line_error(self):
        alias = {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{dead_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.3, "SOCKET_TIMEOUT": 0.3},
        }
        with override_settings(
            CACHES={**django_settings.CACHES, "down": alias}, SESSIONPLUS_REDIS_ALIAS="down"
        ):
            out, err, status = run()
        assert status == 1
        assert out == ""
        assert err.startswith(
            "Cannot clear expired sessions of sessionplus.backends.redis: Session store unavailable"
        )
        assert "\n" not in err


class BenchmarkSmokeTests(SimpleTestCase):
    """benchmarks/clearsessions.py with tiny sizes, so it cannot rot. Figures are not asserted."""

    def test_benchmark_runs_and_writes_its_json(self):
        output = tempfile.mkdtemp(prefix="sessionplus-clear-bench-")
        self.addCleanup(shutil.rmtree, output, ignore_errors=True)
        command = [sys.executable, "-m", "benchmarks.clearsessions", "--files", "20"]
        command += ["--expired", "30", "--live", "20", "--batch-size", "7"]
        command += ["--output-dir", output]
        on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
        if on_postgres:
            command += [
                "--drop-database",
                "--database-name",
                f"test_sessionplus_clear_{os.getpid()}",
            ]
        else:
            command += ["--no-database"]
        finished = subprocess.run(
            command, cwd=repo_root(), capture_output=True, text=True, timeout=300
        )
        assert finished.returncode == 0, finished.stderr
        assert "| files/s |" in finished.stdout
        (saved,) = os.listdir(output)
        with open(os.path.join(output, saved)) as saved_file:
            result = json.load(saved_file)
        assert {run["command"] for run in result["files"]} == {
            "clearsessions (Django)",
            "clearsessions_plus",
            "floor",
        }
        if on_postgres:
            assert "| longest statement |" in finished.stdout
            plus = [run for run in result["database"] if run["command"] == "clearsessions_plus"]
            assert plus[0]["statements"] == 5  # 30 rows in batches of 7: 4 full, 1 short
