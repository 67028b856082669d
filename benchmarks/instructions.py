"""
``--instructions``: CPU instructions per request, Django's engine against sessionplus's,
counted by valgrind's callgrind instead of timed.

On a shared, noisy machine two wall-clock runs of one cell differ by up to about 0.1;
instruction counts repeat to within a fraction of a percent, so a change of a few µs of
CPU shows. Each variant runs in one process under callgrind: every scenario's requests
are built and warmed up uncounted, then served inside ``operator.call()``, the one C
function callgrind counts in (``--toggle-collect``) and dumps after (``--dump-after``),
so each dump holds exactly one scenario's requests. The garbage collector is off while
they run: whether a collection falls inside a few dozen requests is chance, and one
collection would outweigh them.

What the count leaves out: the kernel (sockets, files), the database and Redis servers,
and waiting. What it overstates: hashing, since valgrind runs SHA-256 without the CPU's
SHA instructions (about 48,000 instructions for a 1.3 KB HMAC that takes 1 µs by the
clock). It measures what the issue of CPU "around each call" is about; the timings
measure the rest.

    python -m benchmarks.instructions ENGINE VARIANT COUNT   (the counted process itself)
"""

from __future__ import annotations

import gc
import operator
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.engines import SCENARIOS, VARIANTS

# Requests served uncounted first, per scenario: imports, compiled statements, connections.
WARMUP = 10
# The C function of operator.call(), which nothing on the request path calls.
COUNTED_FUNCTION = "_operator_call"


# The interpreter's limit, not a missing tool: the suite skips the count there, CI included.
NEEDS_NEWER_PYTHON = "needs Python 3.11 or later (operator.call)"


def unavailable() -> str | None:
    """Return why instructions cannot be counted here, or None."""
    if not hasattr(operator, "call"):
        return NEEDS_NEWER_PYTHON
    if shutil.which("valgrind") is None:
        return "needs valgrind (apt-get install valgrind)"
    return None


def count(engine: str, requests: int) -> dict[str, Any]:
    """
    Return the instructions per request of each scenario for each variant, or why they
    were not counted. The variants run one after the other: both write to the same
    database, which SQLite would answer with "database is locked".
    """
    reason = unavailable()
    if reason is not None:
        return {"not_measured": reason}
    counted = {variant: _counted(engine, variant, requests) for variant in VARIANTS}
    return {
        "requests": requests,
        "scenarios": {
            scenario.name: {variant: counted[variant][number] for variant in VARIANTS}
            for number, scenario in enumerate(SCENARIOS)
        },
    }


def _counted(engine: str, variant: str, requests: int) -> list[int]:
    """Run one variant's process under callgrind; return instructions per request per scenario."""
    with tempfile.TemporaryDirectory(prefix="sessionplus-callgrind-") as output:
        base = Path(output) / "callgrind.out"
        command = [
            *("valgrind", "--tool=callgrind", "--collect-atstart=no"),
            f"--toggle-collect={COUNTED_FUNCTION}",
            f"--dump-after={COUNTED_FUNCTION}",
            f"--callgrind-out-file={base}",
            *(sys.executable, "-m", "benchmarks.instructions", engine, variant, str(requests)),
        ]
        finished = subprocess.run(command, capture_output=True, text=True, check=False)
        if finished.returncode != 0:
            raise RuntimeError(f"callgrind run of {engine} ({variant}) failed:\n{finished.stderr}")
        # One dump per counted call, numbered in order (base.1, base.2, …); the file
        # without a number is the empty remainder written at exit.
        dumps = sorted(Path(output).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = [dump_total(dump.read_text()) for dump in dumps]
    if len(totals) != len(SCENARIOS):
        raise RuntimeError(f"expected {len(SCENARIOS)} callgrind dumps, found {len(totals)}")
    return [round(total / requests) for total in totals]


def dump_total(text: str) -> int:
    """Return the instructions a callgrind dump counted."""
    return dump_events(text)["Ir"]


def dump_events(text: str) -> dict[str, int]:
    """
    Return each event a callgrind dump counted, by name: its ``events:`` line names them,
    its ``summary:`` or ``totals:`` line counts them (``Ir`` when no names are given).
    """
    names = ["Ir"]
    for line in text.splitlines():
        label, _, value = line.partition(":")
        if label == "events":
            names = value.split()
        elif label in ("summary", "totals"):
            counts = [int(count) for count in value.split()]
            if len(counts) != len(names):
                named, counted = len(names), len(counts)
                raise ValueError(f"callgrind dump: {named} events named, {counted} counted")
            return dict(zip(names, counts, strict=True))
    raise ValueError("not a callgrind dump: no summary or totals line")


def _serve(handler: Any, requests: list[Any]) -> None:
    for request in requests:
        handler.get_response(request)


def main(argv: list[str]) -> None:
    """Serve every scenario's requests, each scenario inside one counted ``operator.call()``."""
    from benchmarks.per_operation import EngineBenchmark, check, setup_django

    engine, variant, requests = argv[0], argv[1], int(argv[2])
    setup_django()
    with tempfile.TemporaryDirectory(prefix="sessionplus-instructions-") as file_dir:
        benchmark = EngineBenchmark(engine, requests, 1, 0, file_dir)
        try:
            for scenario in SCENARIOS:
                with benchmark.configured(variant, scenario) as handler:
                    served = benchmark.requests_for(scenario, WARMUP + requests)
                    for request in served[:WARMUP]:
                        check(handler.get_response(request), variant, scenario)
                    gc.collect()
                    gc.disable()
                    try:
                        operator.call(_serve, handler, served[WARMUP:])
                    finally:
                        gc.enable()
        finally:
            # Only the floor's client: the stored sessions are the calling benchmark's to remove.
            benchmark.floor.close()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    main(sys.argv[1:])
