from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.core.management.base import BaseCommand, CommandError

from sessionplus.backends.adoption import (
    batch_transaction,
    engine_class,
    live_sessions,
    move_batch,
)
from sessionplus.management.commands.clearsessions_plus import (
    CLIENT_SIDE,
    counted,
    positive_int,
    store_errors_as_command_error,
)

NOT_LISTABLE = (
    "{engine} cannot list its sessions (Django's cache API has no key scan; django-redis "
    "has one): nothing moved. Keep SESSIONPLUS_PREVIOUS_ENGINE set until SESSION_COOKIE_AGE "
    "has passed; each session moves on its next request."
)


class Command(BaseCommand):
    help = (
        "Move every live session from one session engine to another, in batches, safely "
        "under live traffic (adopting sessionplus, or rolling back to Django's engine)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--from",
            dest="source",
            required=True,
            help="Dotted path of the engine to move sessions from.",
        )
        parser.add_argument(
            "--to",
            dest="target",
            help="Dotted path of the engine to move sessions to (default: SESSION_ENGINE).",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=1000,
            help="Sessions read per batch; a database source reads each batch in one statement.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the live sessions that would move; move nothing.",
        )

    def handle(
        self,
        *,
        source: str,
        target: str | None,
        batch_size: int,
        dry_run: bool,
        verbosity: int,
        **options: Any,
    ) -> None:
        self.verbosity = verbosity
        target = target or settings.SESSION_ENGINE
        if source == target:
            raise CommandError(f"--from and --to are the same engine ({source}).")
        source_class, target_class = self.store_class(source), self.store_class(target)
        for engine in (source, target):
            if engine.endswith(".signed_cookies"):
                raise CommandError(f"{engine}: {CLIENT_SIDE} Signed cookies need no move.")
        with store_errors_as_command_error(f"Cannot move sessions from {source} to {target}"):
            self.move(source, source_class, target_class, batch_size, dry_run)

    @staticmethod
    def store_class(engine: str) -> type[SessionBase]:
        try:
            return engine_class(engine)
        except (ImportError, AttributeError) as exc:
            raise CommandError(f"Unknown session engine {engine!r}: {exc}") from exc

    def move(
        self,
        source: str,
        source_class: type[SessionBase],
        target_class: type[SessionBase],
        batch_size: int,
        dry_run: bool,
    ) -> None:
        batches = live_sessions(source_class, batch_size)
        if batches is None:
            self.info(NOT_LISTABLE.format(engine=source))
            return
        started = time.monotonic()
        moved = present = refused = 0
        progress = self.verbosity in (1, 2) and self.stdout.isatty()
        for batch in batches:
            if dry_run:
                moved += len(batch)
                continue
            with batch_transaction(source_class, target_class):
                # Never overwrites: a session adopted or written there meanwhile is newer.
                done = move_batch(source_class, target_class, batch)
            moved += len(done.written)
            present += len(done.present)
            refused += len(done.refused)
            if progress:
                elapsed = time.monotonic() - started
                rate = (moved + present) / elapsed if elapsed else 0
                self.stdout.write(
                    f"\r{moved:,} sessions moved so far, {rate:,.0f}/s, {elapsed:.1f} s\x1b[K",
                    ending="",
                )
        if progress:
            self.stdout.write("\r\x1b[K", ending="")
        elapsed = time.monotonic() - started
        if dry_run:
            self.info(f"Would move {counted(moved, 'live session')} (dry run: nothing moved).")
            return
        notes = []
        if present:
            notes.append(f"{counted(present, 'session')} already there: kept")
        if refused:
            cannot = "the target cannot store: left, see the log"
            notes.append(f"{counted(refused, 'session')} {cannot}")
        already = f" ({'; '.join(notes)})" if notes else ""
        self.info(f"Moved {counted(moved, 'live session')}{already} in {elapsed:.1f} s.")

    def info(self, message: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(message)
