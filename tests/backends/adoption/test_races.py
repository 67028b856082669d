"""A logout racing a request that adopts the same session: it ends in both stores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.test import TransactionTestCase, override_settings

from sessionplus.backends import adoption
from sessionplus.backends.adoption import read_session
from sessionplus.lifecycle import hooked
from tests.backends.adoption import DJANGO, PLUS
from tests.support.threads import close_thread_connections


@contextmanager
def adoption_paused_before_its_write() -> Iterator[tuple[threading.Event, threading.Event]]:
    """
    Stop an adoption after it read the previous engine, before it writes the copy.

    A patch, because the interleaving cannot be produced on demand otherwise; the stores,
    the adoption and the logout all run for real.
    """
    reached, resume = threading.Event(), threading.Event()
    write_session = adoption.write_session

    def paused(*args: Any) -> bool:
        reached.set()
        assert resume.wait(30)
        return write_session(*args)

    with mock.patch.object(adoption, "write_session", paused):
        yield reached, resume


def in_thread(job: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(job())
        finally:
            close_thread_connections()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


class LogoutDuringAdoptionContract:
    previous: str
    current: str

    def setUp(self) -> None:
        super().setUp()
        switched = override_settings(
            SESSION_ENGINE=self.current, SESSIONPLUS_PREVIOUS_ENGINE=self.previous
        )
        switched.enable()
        self.addCleanup(switched.disable)
        self.old = import_module(self.previous).SessionStore
        # As the middleware builds request.session: Django's engine reads through there.
        self.new = hooked(import_module(self.current).SessionStore)

    def stock_session(self) -> str:
        session = self.old()
        session.update({SESSION_KEY: "7", "cart": [1]})
        session.save()
        return session.session_key

    def wait_for_logout(self, logout: threading.Thread) -> None:
        """Return once the logout can go no further until the adoption goes on."""
        raise NotImplementedError

    def test_a_logout_while_a_request_adopts_the_session_ends_it_in_both_stores(self):
        key = self.stock_session()
        with adoption_paused_before_its_write() as (reached, resume):
            adopting, loaded = in_thread(lambda: dict(self.new(key).items()))
            assert reached.wait(30)
            logout, _ = in_thread(lambda: self.new(key).flush())
            self.wait_for_logout(logout)
            resume.set()
            adopting.join()
            logout.join()
        assert len(loaded) == 1  # the adopting request ran to its end, no error
        assert read_session(self.old, key) is None
        assert read_session(self.new, key) is None
        assert dict(self.new(key).items()) == {}


# Counts the logout's DELETE while it waits for a row lock, as each server reports it, and
# how long to wait between two looks: InnoDB refreshes INNODB_TRX at most every 0.1 s, and
# answers from its cache when asked more often.
LOCK_WAITS = {
    "postgresql": (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'DELETE FROM \"django_session\"%%'",
        0.01,
    ),
    "mysql": (
        "SELECT count(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' "
        "AND trx_query LIKE 'DELETE FROM `django_session`%%'",
        0.15,
    ),
}


@pytest.mark.skipif(
    connection.vendor not in LOCK_WAITS,
    reason="row locks need a real database server, and the test sees the wait in its own "
    "lock tables (DATABASE_URL=postgres://… or mysql://…)",
)
class DjangoDBToDBTests(LogoutDuringAdoptionContract, TransactionTestCase):
    # The adoption holds the source row: the logout's DELETE waits for it, then ends the copy.
    previous = DJANGO + "db"
    current = PLUS + "db"

    def wait_for_logout(self, logout: threading.Thread) -> None:
        query, interval = LOCK_WAITS[connection.vendor]

        def waits_for_the_lock() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(query)
                waiting = bool(cursor.fetchone()[0])
            logout.join(0 if waiting else interval)
            return waiting

        # The logout's DELETE queues behind the adoption's row lock (30 s at most).
        assert any(waits_for_the_lock() for _ in range(int(30 / interval)))


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis")
class DjangoCacheToRedisTests(LogoutDuringAdoptionContract, TransactionTestCase):
    # Nothing to lock: the logout runs to its end, and the adoption, finding its source
    # gone when it comes to remove it, undoes its copy.
    previous = DJANGO + "cache"
    current = PLUS + "redis"

    def wait_for_logout(self, logout: threading.Thread) -> None:
        logout.join()


@pytest.mark.usefixtures("redis_db")
@override_settings(SESSION_CACHE_ALIAS="redis")
class SessionplusCacheToDjangoCacheTests(DjangoCacheToRedisTests):
    # Rolling back: Django's engine behind sessionplus's middleware adopts from sessionplus's.
    previous = PLUS + "cache"
    current = DJANGO + "cache"
