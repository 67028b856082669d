"""
Smoke test of benchmarks/ so it cannot rot: the per-operation benchmark, run end to end
with a tiny iteration count. Figures are never asserted, only the output's shape and the
statements and commands it counted (which are the budgets, so those ARE asserted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from django.test import SimpleTestCase

from benchmarks import instructions, report
from tests.support.services import redis_url, repo_root

SCENARIOS = ["S1", "S2", "S3", "S4", "S5", "S6"]
REQUESTS = 2
ROUNDS = 1
PROFILE_TOP = 4


def engines() -> list[str]:
    # The PostgreSQL and MariaDB rows run when the suite itself runs there (CI's later passes).
    names = ["db_sqlite", "cache_redis", "file", "signed_cookies", "redis"]
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        names += ["db_postgres", "cached_db"]
    if os.environ.get("DATABASE_URL", "").startswith("mysql"):
        names += ["db_mariadb"]
    return names


@cache
def smoke_run(redis_url: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run ``python -m benchmarks`` once for the whole module; return its process and JSON."""
    with tempfile.TemporaryDirectory(prefix="sessionplus-bench-smoke-") as output:
        command = [sys.executable, "-m", "benchmarks", "--engines", ",".join(engines())]
        command += ["--requests", str(REQUESTS), "--rounds", str(ROUNDS), "--no-load"]
        command += ["--profile", str(PROFILE_TOP)]
        command += ["--output-dir", output, "--drop-database"]
        command += ["--database-name", f"test_sessionplus_bench_{os.getpid()}"]
        finished = subprocess.run(
            command,
            cwd=repo_root(),
            env={**os.environ, "REDIS_URL": redis_url},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        latest = Path(output) / "latest.json"
        result = json.loads(latest.read_text()) if latest.exists() else {}
    return finished, result


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("redis_server")
class BenchmarkSmokeTests(SimpleTestCase):
    def smoke(self) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        finished, result = smoke_run(redis_url())
        assert finished.returncode == 0, finished.stderr[-3000:]
        return finished, result

    def run_benchmark(self) -> dict[str, Any]:
        return self.smoke()[1]

    def engine(self, name: str) -> dict[str, Any]:
        return next(e for e in self.run_benchmark()["per_operation"] if e["engine"] == name)

    def test_prints_the_markdown_table_and_writes_the_json(self):
        finished, result = self.smoke()
        assert "### Per operation" in finished.stdout
        assert "| engine | scenario | A: Django µs | B: sessionplus µs |" in finished.stdout
        rows = [line for line in finished.stdout.splitlines() if line.startswith("| ")]
        assert len(rows) >= len(engines()) * len(SCENARIOS)
        cells = len(engines()) * len(SCENARIOS)
        assert f"Geometric mean of B/A over {cells} cells: " in finished.stdout
        assert set(result) >= {"date", "machine", "versions", "config", "per_operation", "load"}
        assert result["machine"]["cores"] >= 1
        assert {"Python", "Django", "sessionplus"} <= set(result["versions"])
        assert result["load"] == {"not_measured": "skipped (--no-load)"}

    def test_every_engine_reports_every_scenario_for_both_sides_and_the_floor(self):
        measured = self.run_benchmark()["per_operation"]
        assert [engine["engine"] for engine in measured] == engines()
        for engine in measured:
            assert engine["landed"] == {"stock": True, "sessionplus": True, "middleware": True}
            assert list(engine["scenarios"]) == SCENARIOS
            for name, entry in engine["scenarios"].items():
                for side in ("stock", "sessionplus"):
                    assert entry[side]["samples"] == REQUESTS * ROUNDS
                    assert entry[side]["median_us"] > 0
                assert (entry["floor"] is None) == (name == "S1")
                assert "ratio" in entry["verdict"]
                if name != "S1":
                    assert "floor_multiple" in entry["verdict"]

    def test_counts_django_stock_statements_and_commands(self):
        db = self.engine("db_sqlite")["scenarios"]
        assert db["S1"]["stock"]["cost"]["sql"] == []
        assert db["S2"]["stock"]["cost"]["sql"] == ["SELECT"]
        # Django saves inside transaction.atomic: the 4 statements the issue quotes.
        assert db["S3"]["stock"]["cost"]["sql"] == ["SELECT", "BEGIN", "UPDATE", "COMMIT"]
        cache_engine = self.engine("cache_redis")["scenarios"]
        assert cache_engine["S3"]["stock"]["cost"]["redis"] == {"get": 2, "set": 1}
        assert cache_engine["S3"]["stock"]["cost"]["redis_round_trips"] == 3

    def test_sessionplus_counts_are_exactly_the_design_budgets(self):
        checked = 0
        for engine in self.run_benchmark()["per_operation"]:
            for name, entry in engine["scenarios"].items():
                budget = entry["verdict"]["budget"]
                if budget is None:
                    continue
                assert budget["met"], (engine["engine"], name, budget)
                checked += 1
        assert checked >= 20
        db = self.engine("db_sqlite")["scenarios"]
        assert db["S3"]["sessionplus"]["cost"]["session_sql_statements"] == 2
        assert (
            self.engine("redis")["scenarios"]["S3"]["sessionplus"]["cost"]["redis_round_trips"] == 2
        )

    def test_rolling_sessions_write_once_per_touch_interval_instead_of_every_request(self):
        for engine in self.run_benchmark()["per_operation"]:
            rolling = engine["rolling"]
            interval = rolling["touch_interval"]
            for pattern, step in (("burst (1 request/s)", 1), ("browsing (1 request/30 s)", 30)):
                stock = rolling["patterns"][pattern]["stock"]
                plus = rolling["patterns"][pattern]["sessionplus"]
                assert stock["writing_requests"] == stock["requests"] == 100
                touches = plus["requests"] * step // interval
                assert plus["writing_requests"] == touches, (engine["engine"], pattern, plus)

    def test_profile_prints_sessionplus_top_functions_per_engine_and_scenario(self):
        finished, result = self.smoke()
        assert "### Profile: sessionplus's own functions per request" in finished.stdout
        assert "#### db on SQLite, S3" in finished.stdout
        for engine in result["per_operation"]:
            assert list(engine["profile"]) == SCENARIOS
            for scenario, rows in engine["profile"].items():
                assert 0 < len(rows) <= PROFILE_TOP, (engine["engine"], scenario)
                # Only sessionplus's own frames, named by their path inside the package.
                assert all(row["function"].split(":")[0].endswith(".py") for row in rows)
                assert all(not row["function"].startswith("/") for row in rows)
                cumulative = [row["cumulative_us"] for row in rows]
                assert cumulative == sorted(cumulative, reverse=True)
                assert all(row["calls"] > 0 and row["own_us"] >= 0 for row in rows)
        middleware = [row["function"] for row in self.engine("db_sqlite")["profile"]["S1"]]
        assert any(name.startswith("middleware.py:") for name in middleware), middleware


INSTRUCTION_REQUESTS = 3


@pytest.mark.timeout(900)
class InstructionCountTests(SimpleTestCase):
    """``--instructions``: the engine without services, under a real callgrind."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        reason = instructions.unavailable()
        # CI installs valgrind (.ci/run); its Python 3.10 run (make matrix) cannot count.
        if reason is not None and (
            reason == instructions.NEEDS_NEWER_PYTHON or not os.environ.get("CI")
        ):
            raise unittest.SkipTest(reason)
        if os.environ.get("DATABASE_URL"):
            raise unittest.SkipTest("counted in the SQLite pass only: it needs no database server")

    def test_counts_both_sides_of_every_scenario_and_prints_their_ratios(self):
        with tempfile.TemporaryDirectory(prefix="sessionplus-bench-instructions-") as output:
            command = [sys.executable, "-m", "benchmarks", "--engines", "signed_cookies"]
            command += ["--requests", "2", "--rounds", "1", "--no-load", "--output-dir", output]
            command += ["--instructions", str(INSTRUCTION_REQUESTS)]
            finished = subprocess.run(
                command, cwd=repo_root(), capture_output=True, text=True, timeout=900, check=False
            )
            assert finished.returncode == 0, finished.stderr[-3000:]
            result = json.loads((Path(output) / "latest.json").read_text())
        counted = result["per_operation"][0]["instructions"]
        assert counted["requests"] == INSTRUCTION_REQUESTS
        assert list(counted["scenarios"]) == SCENARIOS
        for scenario, sides in counted["scenarios"].items():
            # A request through Django's whole stack is hundreds of thousands of instructions.
            assert 50_000 < sides["stock"] < 50_000_000, (scenario, sides)
            assert 50_000 < sides["sessionplus"] < 50_000_000, (scenario, sides)
        # Django signs a new cookie on every rolling request, sessionplus once per interval.
        rolling = counted["scenarios"]["S6"]
        assert rolling["sessionplus"] < rolling["stock"]
        assert "### CPU instructions per request (callgrind" in finished.stdout
        assert "| signed_cookies | " in finished.stdout.split("### CPU instructions")[1]


class CallgrindDumpTests(SimpleTestCase):
    def test_the_total_is_read_from_the_summary_or_totals_line(self):
        assert instructions.dump_total("version: 1\nevents: Ir\nsummary: 1234\n") == 1234
        assert instructions.dump_total("events: Ir\ntotals: 99 \n") == 99

    def test_text_without_a_total_is_refused(self):
        with pytest.raises(ValueError, match="not a callgrind dump"):
            instructions.dump_total("events: Ir\nfn=(1) main\n")

    def test_every_event_is_read_by_the_name_its_events_line_gives(self):
        text = "events: Ir I1mr D1mr Bcm\nfn=(1) main\n0 1 2 3 4\nsummary: 900 7 5 3\n"
        assert instructions.dump_events(text) == {"Ir": 900, "I1mr": 7, "D1mr": 5, "Bcm": 3}
        with pytest.raises(ValueError, match="2 events named, 1 counted"):
            instructions.dump_events("events: Ir I1mr\nsummary: 900\n")


def measured(stock_us: float, plus_us: float, floor_us: float | None = None) -> dict[str, Any]:
    """One scenario's entry as the per-operation benchmark records it (costs left out)."""
    cost = {"sql_statements": 0, "session_sql_statements": 0}
    cost |= {"redis_commands": 0, "redis_round_trips": 0}
    return {
        "title": "a scenario",
        "stock": {"median_us": stock_us, "cost": cost},
        "sessionplus": {"median_us": plus_us, "cost": cost},
        "floor": None if floor_us is None else {"median_us": floor_us},
    }


class ReportVerdictTests(SimpleTestCase):
    """The verdicts ``make bench`` prints judge issue #20's targets, cell by cell."""

    def derived(self, engine: str, scenarios: dict[str, dict[str, Any]]) -> dict[str, Any]:
        result = {"engine": engine, "label": engine, "scenarios": scenarios}
        report.derive(result)
        return result

    def test_every_cell_is_held_to_1_05_unless_a_target_names_it(self):
        cache = self.derived("cache_redis", {"S1": measured(100, 105), "S3": measured(100, 106)})
        assert cache["scenarios"]["S1"]["verdict"]["ratio_met"] is True
        assert cache["scenarios"]["S3"]["verdict"]["ratio_met"] is False
        postgres = self.derived("db_postgres", {"S1": measured(100, 100), "S3": measured(100, 53)})
        assert postgres["scenarios"]["S1"]["verdict"]["ratio_target"] == 1.05
        assert postgres["scenarios"]["S3"]["verdict"]["ratio_target"] == 0.5
        assert postgres["scenarios"]["S3"]["verdict"]["ratio_met"] is False
        redis = self.derived("redis", {"S2": measured(100, 100), "S3": measured(100, 80)})
        assert [redis["scenarios"][s]["verdict"]["ratio_met"] for s in ("S2", "S3")] == [True, True]
        cached = self.derived("cached_db", {"S2": measured(100, 91)})
        assert cached["scenarios"]["S2"]["verdict"]["ratio_met"] is False

    def test_the_file_engines_writes_have_no_ratio_target_but_its_reads_do(self):
        file = self.derived("file", {"S2": measured(100, 110), "S3": measured(100, 150)})
        assert file["scenarios"]["S2"]["verdict"]["ratio_met"] is False
        assert file["scenarios"]["S3"]["verdict"]["ratio_target"] is None
        assert file["scenarios"]["S3"]["verdict"]["ratio_met"] is None
        lines = report.per_operation_table([file])
        assert "1.50 (fsync: no target) |" in next(line for line in lines if "| file | S3" in line)

    def test_sqlite_writes_are_judged_against_the_bare_clients_floor(self):
        sqlite = self.derived(
            "db_sqlite", {"S3": measured(1000, 600, 500), "S4": measured(1000, 610, 500)}
        )
        s3, s4 = (sqlite["scenarios"][s]["verdict"] for s in ("S3", "S4"))
        assert (s3["floor_multiple"], s3["floor_met"]) == (1.2, True)
        assert (s4["floor_multiple"], s4["floor_met"]) == (1.22, False)
        # Elsewhere the multiple is shown, not judged.
        postgres = self.derived("db_postgres", {"S3": measured(1000, 400, 100)})
        assert "floor_met" not in postgres["scenarios"]["S3"]["verdict"]
        summary = report.geometric_mean_line([sqlite, postgres])
        assert "db_sqlite S4 (1.22x the floor)" in summary
        assert "db_sqlite S3" not in summary

    def test_the_summary_judges_the_geometric_mean_and_names_each_missed_cell(self):
        met = self.derived("db_postgres", {"S2": measured(100, 40), "S3": measured(100, 45)})
        assert report.geometric_mean_line([met]).endswith(
            "Target: geometric mean ≤0.65 ✓; cells missing their target: none."
        )
        missed = self.derived("redis", {"S2": measured(100, 90), "S3": measured(100, 88)})
        summary = report.geometric_mean_line([missed])
        assert "geometric mean ≤0.65 ✗" in summary
        assert summary.endswith("cells missing their target: redis S3 (0.88).")
        # Over both, the mean is met and the one missed cell is still named.
        assert report.geometric_mean_line([met, missed]).endswith(
            "≤0.65 ✓; cells missing their target: redis S3 (0.88)."
        )

    def test_load_targets_differ_by_store(self):
        def setup(stock: float, plus: float) -> dict[str, Any]:
            return {"stock": {"requests_per_s": stock}, "sessionplus": {"requests_per_s": plus}}

        load = {"setups": {"redis": setup(1000, 1250), "postgres": setup(1000, 1250)}}
        report.derive_load(load)
        assert [load["setups"][s]["ratio_met"] for s in ("redis", "postgres")] == [True, False]
        assert [load["setups"][s]["ratio_target"] for s in ("redis", "postgres")] == [1.2, 1.3]


def load_setup(stock: float, plus: float) -> dict[str, Any]:
    return {"stock": {"requests_per_s": stock}, "sessionplus": {"requests_per_s": plus}}


class LoadCeilingTests(SimpleTestCase):
    """The ceiling (a page that never touches the session) turns rates into session costs."""

    def test_the_session_share_is_the_time_per_request_above_the_ceilings(self):
        # Django: 400 µs a request, 200 of them the ceiling's; sessionplus 333 µs: 133 / 200.
        load = {"setups": {"redis": load_setup(2500, 3000)}, "ceiling": {"requests_per_s": 5000}}
        report.derive_load(load)
        setup = load["setups"]["redis"]
        assert (setup["ratio"], setup["ceiling_ratio"]) == (1.2, 2.0)
        assert (setup["session_share"], setup["session_share_needed"]) == (0.67, 0.67)
        slower = {"setups": {"redis": load_setup(2500, 2000)}, "ceiling": {"requests_per_s": 5000}}
        report.derive_load(slower)
        assert slower["setups"]["redis"]["session_share"] == 1.5

    def test_no_share_where_djangos_page_measured_as_fast_as_the_ceiling(self):
        assert report.session_share(2100, 2000, 2000) is None
        load = {"setups": {"redis": load_setup(2500, 3000)}}  # a result without a ceiling
        report.derive_load(load)
        assert "session_share" not in load["setups"]["redis"]

    def test_the_report_names_the_ceiling_and_each_processs_cpu(self):
        cpu = {"workers": 500.0, "workers_system": 120.0, "store": 40.0, "wrk": 90.0}
        load = {
            "workload": "w",
            "server": "s",
            "rounds": 1,
            "seconds": 1,
            "setups": {"redis": load_setup(2500, 3000)},
            "ceiling": {"requests_per_s": 5000, "cpu_us_per_request": {**cpu, "store": 0.4}},
        }
        for figures in load["setups"]["redis"].values():
            figures.update(p50_ms=1, p99_ms=2, errors=0, cpu_us_per_request=cpu)
        report.derive_load(load)
        text = "\n".join(report.load_table(load))
        assert "5000 req/s, the most any engine could reach" in text
        assert "Redis: at most 2.00x Django's; sessionplus's session work costs 0.67" in text
        assert "| Redis | sessionplus | 500.0 | 120.0 | 40.0 | 90.0 |" in text
        assert "| no session (ceiling) | Django | 500.0 | 120.0 | 0.4 | 90.0 |" in text


def worker_events(instructions: int) -> dict[str, int]:
    return {
        "instructions": instructions,
        "i1_misses": 40_000,
        "d1_misses": 15_000,
        "mispredicted_branches": 44_000,
    }


class WorkerTableTests(SimpleTestCase):
    """``--worker-instructions``: one worker's events, and the session's share above the ceiling."""

    def test_the_session_share_is_the_instructions_above_the_ceilings_page(self):
        worker = {
            "requests": 300,
            "setups": {
                "redis": {
                    "stock": worker_events(1_500_000),
                    "sessionplus": worker_events(1_400_000),
                }
            },
            "ceiling": worker_events(1_100_000),
        }
        assert report.worker_session_share(worker, "redis") == 0.75
        text = "\n".join(report.worker_table(worker))
        assert "| Redis | sessionplus | 1,400,000 | 300,000 | 40,000 | 15,000 | 44,000 |" in text
        assert "| no session (ceiling) | Django | 1,100,000 | 0 |" in text
        assert "session instructions ÷ Django's: Redis 0.75." in text

    def test_nothing_measured_is_said_and_nothing_asked_prints_nothing(self):
        assert report.worker_table(None) == []
        said = report.worker_table({"not_measured": "needs valgrind"})
        assert said == ["", "One worker's instructions: needs valgrind."]


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("redis_server")
class WorkerCountTests(SimpleTestCase):
    """One real gunicorn worker under a real callgrind, served the load's mix."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        from benchmarks import worker_count

        reason = worker_count.unavailable()
        if reason is not None and not os.environ.get("CI"):  # CI installs valgrind (.ci/run)
            raise unittest.SkipTest(reason)
        if os.environ.get("DATABASE_URL"):
            raise unittest.SkipTest("counted in the SQLite pass only: the mix needs only Redis")

    def test_a_request_of_the_mix_costs_more_than_the_page_without_a_session(self):
        from benchmarks import worker_count
        from benchmarks.load import site_environment

        with tempfile.TemporaryDirectory(prefix="sessionplus-worker-test-") as directory:
            database = f"sqlite:///{directory}/bench.sqlite3"
            environment = site_environment(database, redis_url(), "redis", "sessionplus")
            session = worker_count.per_request(environment, "session", 3)
            ceiling = worker_count.per_request(environment, "ceiling", 3)
        # Django's whole stack per request: hundreds of thousands of instructions.
        assert 100_000 < ceiling["instructions"] < session["instructions"] < 50_000_000
        for events in (session, ceiling):
            assert set(events) == set(worker_count.EVENTS)
            assert all(count > 0 for count in events.values()), events


class LoadSiteTests(unittest.TestCase):
    """The load benchmark's gunicorn, started for real."""

    def test_a_server_that_exits_at_start_is_reported_with_its_exit_code(self):
        from benchmarks.load import Site

        broken = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.no_such_settings"}
        with pytest.raises(RuntimeError, match=r"gunicorn did not start \(exit code \d+\)"):
            Site(broken, workers=1, start_seconds=600).__enter__()


class LoadProcessCpuTests(unittest.TestCase):
    """The CPU time per process comes from /proc, read here off real processes."""

    def busy_child(
        self, loop: str, setup: str = "", seconds: float = 0.3
    ) -> subprocess.Popen[bytes]:
        """Start a child running ``loop`` until it has used ``seconds`` of CPU, then sleeping."""
        from benchmarks import load

        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import time\n{setup}\nt = time.process_time() + {seconds}\n"
                f"while time.process_time() < t: {loop}\ntime.sleep(30)",
            ]
        )
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        deadline = time.monotonic() + 20
        while load.cpu_seconds(child.pid) < seconds and time.monotonic() < deadline:
            time.sleep(0.05)
        return child

    def test_a_busy_child_is_found_with_its_parent_and_its_cpu_time(self):
        from benchmarks import load

        # Summing in Python between clock reads (each clock read is a system call).
        child = self.busy_child("sum(range(100_000))")
        assert 0.3 <= load.cpu_seconds(child.pid) < 5
        user, system = load.cpu_times(child.pid)
        assert user > system
        found = {pid: (name, parent) for pid, name, parent in load.processes()}
        assert found[child.pid][1] == os.getpid()
        assert found[child.pid][0].startswith("python")
        child.kill()
        child.wait()
        assert load.cpu_seconds(child.pid) == 0.0  # gone: nothing to read
        assert load.cpu_times(child.pid) == (0.0, 0.0)

    def test_time_spent_in_the_kernel_is_told_apart(self):
        from benchmarks import load

        # The kernel zeroing 8 MiB per read while the Python around it runs one line, for a
        # second: the interpreter's start (user time, up to 0.2 s in a loaded tox venv) stays
        # the smaller part.
        child = self.busy_child(
            "zero.readinto(buffer)",
            setup="zero = open('/dev/zero', 'rb', buffering=0)\nbuffer = bytearray(1 << 23)",
            seconds=1.0,
        )
        user, system = load.cpu_times(child.pid)
        assert system > user
