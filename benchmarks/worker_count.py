"""
``--worker-instructions``: what one gunicorn worker spends per request of the load's mix,
counted by valgrind instead of timed.

The load benchmark's requests/s move by up to 0.15 between rounds of the same code on a
shared machine; these counts repeat. One worker (``--workers 1``) runs under callgrind with
its cache and branch simulations while a client sends the load's mix one request after
another: 50 sessions from the first responses, then 9 reads to 1 add, as ``session.lua``
sends them. A run's totals include the server's start and its warm-up, so each
configuration runs twice after the same warm-up, the second time with ``requests`` more,
and the difference divided by ``requests`` is one request's share (``PYTHONHASHSEED`` is
fixed, so both runs hash alike). The page that never touches the session is counted the
same way: what is above it is the session's own work.

What the count leaves out: the kernel, the store's server, the client, and waiting.
"""

from __future__ import annotations

import http.client
import re
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.instructions import dump_events
from benchmarks.load import SETUPS, Site, site_environment

POOL_SIZE = 50  # session.lua's pool
ADD_EVERY = 10  # one request in ten adds to the cart
WARMUP = 150
# Valgrind runs Django's start about 50 times slower: gunicorn must neither give up waiting
# for it nor take the worker for hung.
START_SECONDS = 600
SESSION_COOKIE = re.compile(r"(sessionid=[^;]+)")
# Per request: callgrind's events (--cache-sim, --branch-sim) under the names the report uses.
EVENTS = {
    "instructions": ("Ir",),
    "i1_misses": ("I1mr",),
    "d1_misses": ("D1mr", "D1mw"),
    "mispredicted_branches": ("Bcm", "Bim"),
}


def unavailable() -> str | None:
    """Return why a worker cannot be counted here, or None."""
    return None if shutil.which("valgrind") else "needs valgrind (apt-get install valgrind)"


class Visitors:
    """The load's mix, one request after another, on a connection per request (as wrk's)."""

    def __init__(self, port: int, page: str) -> None:
        self.port = port
        self.page = page
        self.pool: list[str] = []
        self.counter = 0

    def get(self, path: str, cookie: str | None = None) -> str | None:
        """Send one request; return its ``Set-Cookie`` header."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=START_SECONDS)
        try:
            connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}")
            return response.getheader("Set-Cookie")
        finally:
            connection.close()

    def browse(self, count: int) -> None:
        for _ in range(count):
            self.counter += 1
            if self.page == "ceiling":
                self.get("/untouched/")
            elif len(self.pool) < POOL_SIZE:
                found = SESSION_COOKIE.search(self.get("/add/") or "")
                if found:
                    self.pool.append(found.group(1))
            else:
                path = "/add/" if self.counter % ADD_EVERY == 0 else "/"
                self.get(path, self.pool[self.counter % POOL_SIZE])


def counted_run(environment: dict[str, str], page: str, requests: int) -> dict[str, int]:
    """Serve the warm-up and ``requests`` more under callgrind; return the worker's totals."""
    with tempfile.TemporaryDirectory(prefix="sessionplus-worker-") as output:
        wrapper = [
            *("valgrind", "--tool=callgrind", "--cache-sim=yes", "--branch-sim=yes"),
            f"--callgrind-out-file={output}/callgrind.out.%p",
        ]
        site = Site(
            {**environment, "PYTHONHASHSEED": "0"},
            workers=1,
            wrapper=wrapper,
            start_seconds=START_SECONDS,
        )
        with site:
            Visitors(site.port, page).browse(WARMUP + requests)
        master = f"callgrind.out.{site.process.pid}"
        dumps = [path for path in Path(output).glob("callgrind.out.*") if path.name != master]
        if len(dumps) != 1:
            raise RuntimeError(f"expected the dump of one worker, found {len(dumps)}")
        return dump_events(dumps[0].read_text())


def per_request(environment: dict[str, str], page: str, requests: int) -> dict[str, int]:
    """Return the events of one request: the difference of two runs, divided."""
    # Side by side, on a core each: what callgrind counts does not depend on the clock.
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(counted_run, environment, page, extra) for extra in (0, requests)]
        base, more = (run.result() for run in runs)
    return {
        name: round(sum(more[event] - base[event] for event in events) / requests)
        for name, events in EVENTS.items()
    }


def count(database_url: str, redis_url: str, requests: int) -> dict[str, Any]:
    """Count one worker per store and stack, and on the page that never touches the session."""
    reason = unavailable()
    if reason is not None:
        return {"not_measured": reason}

    def environment(store: str, variant: str) -> dict[str, str]:
        return site_environment(database_url, redis_url, store, variant)

    setups = {}
    for store, variants in SETUPS.items():
        setups[store] = {
            variant: per_request(environment(store, variant), "session", requests)
            for variant in variants
        }
        print(f"worker instructions {store}: {setups[store]}", file=sys.stderr)
    return {
        "requests": requests,
        "setups": setups,
        "ceiling": per_request(environment("redis", "stock"), "ceiling", requests),
    }
