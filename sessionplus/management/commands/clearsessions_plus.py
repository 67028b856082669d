from __future__ import annotations

import time
from argparse import ArgumentParser, ArgumentTypeError
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from sessionplus.cleanup import CleanupBatch
from sessionplus.outage import is_store_outage

SELF_EXPIRING = "The cache expires sessions itself: nothing to clear."
CLIENT_SIDE = "Sessions live in signed cookies: nothing is stored on the server."
# Engines whose store needs no cleanup, by the module that defines them (subclasses too).
NOTHING_TO_CLEAR = {
    "sessionplus.backends.cache": SELF_EXPIRING,
    "django.contrib.sessions.backends.cache": SELF_EXPIRING,
    "sessionplus.backends.signed_cookies": CLIENT_SIDE,
    "django.contrib.sessions.backends.signed_cookies": CLIENT_SIDE,
}

# What a store that is refusing, unmigrated, unwritable or missing raises.
UNUSABLE_STORE_ERRORS = (DatabaseError, OSError, ImproperlyConfigured)


def is_store_error(exc: Exception) -> bool:
    """Return whether ``exc`` came from a store that is down, or that cannot be used."""
    return is_store_outage(exc) or isinstance(exc, UNUSABLE_STORE_ERRORS)


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ArgumentTypeError(f"must be a positive integer, not {value}")
    return number


def seconds(value: str) -> float:
    number = float(value)
    if not number >= 0:  # also refuses NaN
        raise ArgumentTypeError(f"must be a number of seconds >= 0, not {value}")
    return number


def counted(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


class Command(BaseCommand):
    help = "Remove expired sessions in short batches, safely under live traffic (run from cron)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--engine",
            help="Dotted path of the session engine to clear (default: SESSION_ENGINE).",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=5000,
            help="Sessions removed per batch, each batch its own short transaction.",
        )
        parser.add_argument(
            "--max-seconds",
            type=seconds,
            help="Start no new batch after this many seconds; the next run continues.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be removed; remove nothing.",
        )

    def handle(
        self,
        *,
        engine: str | None,
        batch_size: int,
        max_seconds: float | None,
        dry_run: bool,
        verbosity: int,
        **options: Any,
    ) -> None:
        self.verbosity = verbosity
        engine = engine or settings.SESSION_ENGINE
        store_class = self.store_class(engine)
        with store_errors_as_command_error(f"Cannot clear expired sessions of {engine}"):
            self.clear(engine, store_class, batch_size, max_seconds, dry_run)

    def store_class(self, engine: str) -> type[SessionBase]:
        try:
            module = import_module(engine)
        except ImportError as exc:
            raise CommandError(f"Unknown session engine {engine!r}: {exc}") from exc
        store_class: type[SessionBase] | None = getattr(module, "SessionStore", None)
        if store_class is None:
            raise CommandError(f"Session engine {engine!r} has no SessionStore class.")
        return store_class

    def clear(
        self,
        engine: str,
        store_class: type[SessionBase],
        batch_size: int,
        max_seconds: float | None,
        dry_run: bool,
    ) -> None:
        if hasattr(store_class, "clear_expired_in_batches"):
            self.info(f"Clearing expired sessions of {engine} in batches of {batch_size:,}.", 2)
            batches = store_class.clear_expired_in_batches(batch_size, dry_run)
            self.run_batches(batches, max_seconds, dry_run)
            return
        if hasattr(store_class, "prune_user_indexes"):
            self.prune_user_indexes(store_class, dry_run)
            return
        for cls in store_class.__mro__:
            if cls.__module__ in NOTHING_TO_CLEAR:
                self.info(NOTHING_TO_CLEAR[cls.__module__])
                return
        self.clear_unbatched(engine, store_class, dry_run)

    def run_batches(
        self, batches: Iterator[CleanupBatch], max_seconds: float | None, dry_run: bool
    ) -> None:
        started = time.monotonic()
        sessions = 0
        other: Counter[str] = Counter()
        stopped = False
        progress = self.verbosity in (1, 2) and self.stdout.isatty()
        for number, batch in enumerate(batches, start=1):
            sessions += batch.sessions
            other.update(batch.other)
            elapsed = time.monotonic() - started
            if self.verbosity >= 3:
                self.info(f"Batch {number}: {self.removed(batch.sessions, batch.other)}.", 3)
            elif progress:
                rate = sessions / elapsed if elapsed else 0
                self.stdout.write(
                    f"\r{sessions:,} expired sessions so far, {rate:,.0f}/s, {elapsed:.1f} s\x1b[K",
                    ending="",
                )
            if max_seconds is not None and elapsed >= max_seconds:
                stopped = True
                break
        elapsed = time.monotonic() - started
        if progress:
            self.stdout.write("\r\x1b[K", ending="")
        removed = self.removed(sessions, other)
        if dry_run:
            self.info(f"Would delete {removed} (dry run: nothing deleted).")
        elif stopped:
            self.info(
                f"Stopped after the {max_seconds:g} s budget: deleted {removed} "
                f"in {elapsed:.1f} s. The next run continues."
            )
        else:
            self.info(f"Deleted {removed} in {elapsed:.1f} s.")

    @staticmethod
    def removed(sessions: int, other: dict[str, int]) -> str:
        parts = [counted(sessions, "expired session")]
        parts += [counted(count, noun) for noun, count in other.items() if count]
        return " and ".join(parts)

    def prune_user_indexes(self, store_class: Any, dry_run: bool) -> None:
        if dry_run:
            self.info("Redis expires sessions itself (dry run: per-user indexes left as they are).")
            return
        started = time.monotonic()
        pruned = store_class.prune_user_indexes()
        self.info(
            f"Redis expires sessions itself; removed {counted(pruned, 'expired session')} "
            f"from per-user indexes in {time.monotonic() - started:.1f} s."
        )

    def clear_unbatched(self, engine: str, store_class: type[SessionBase], dry_run: bool) -> None:
        note = f"Note: {engine} has no batched cleanup; its clear_expired() runs unbatched."
        if dry_run:
            self.info(f"{note} Dry run: not run, nothing deleted.")
            return
        self.info(note)
        started = time.monotonic()
        try:
            store_class.clear_expired()
        except NotImplementedError as exc:
            raise CommandError(f"Session engine {engine!r} cannot clear expired sessions.") from exc
        self.info(f"Cleared expired sessions in {time.monotonic() - started:.1f} s.")

    def info(self, message: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)


@contextmanager
def store_errors_as_command_error(failure: str) -> Iterator[None]:
    """Turn a store that is down, unmigrated or missing into ``CommandError("<failure>: …")``."""
    try:
        yield
    except Exception as exc:
        if not is_store_error(exc):
            raise
        raise CommandError(f"{failure}: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
