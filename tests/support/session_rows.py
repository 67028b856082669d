"""Session rows for the cleanup tests: well-formed keys, expired and live rows, statement hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from sessionplus.models import Session

BATCH_STATEMENTS = (
    ["DELETE"] if connection.vendor in ("postgresql", "sqlite") else ["SELECT", "DELETE"]
)


def key(kind: str, number: int) -> str:
    """Return a well-formed session key, readable in failures: e000…0007, l000…0002."""
    return f"{kind}{number:031d}"


def add_rows(model: Any = Session, expired: int = 0, live: int = 0) -> None:
    """Store ``expired`` rows (the lowest number expired longest ago) and ``live`` ones."""
    now = timezone.now()
    rows = [
        model(session_key=key("e", n), session_data="x", expire_date=now - timedelta(hours=n + 1))
        for n in reversed(range(expired))
    ] + [
        model(session_key=key("l", n), session_data="x", expire_date=now + timedelta(hours=n + 1))
        for n in range(live)
    ]
    model.objects.bulk_create(rows)


def stored_keys(model: Any = Session) -> set[str]:
    return set(model.objects.values_list("session_key", flat=True))


def live_keys(count: int) -> set[str]:
    return {key("l", n) for n in range(count)}


def refresh(session_key: str, model: Any = Session) -> None:
    """Do what a request extending a session does to its row."""
    model.objects.filter(pk=session_key).update(expire_date=timezone.now() + timedelta(days=1))


@contextmanager
def before_statement(prefix: str, action: Callable[[], None], number: int = 1) -> Iterator[None]:
    """Run ``action`` right before the ``number``-th statement starting with ``prefix``."""
    seen = [0]

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(prefix):
            seen[0] += 1
            if seen[0] == number:
                action()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield
