"""sessionplus.cleanup: expired rows deleted in batches, on the suite's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from django.contrib.sessions.models import Session as DjangoSession
from django.db import connection
from django.db.models.signals import post_init, pre_delete
from django.test import TestCase

from sessionplus import cleanup
from sessionplus.cleanup import delete_expired_rows
from sessionplus.models import Session
from tests.support.counting import count_storage
from tests.support.session_rows import (
    BATCH_STATEMENTS,
    add_rows,
    before_statement,
    key,
    live_keys,
    refresh,
    stored_keys,
)


@contextmanager
def no_instances_built() -> Iterator[list[Any]]:
    """Record every model instance built, with delete receivers connected as an audit app would."""
    built: list[Any] = []

    def on_init(sender, instance, **kwargs):
        built.append(instance)

    def on_delete(sender, instance, **kwargs):
        built.append(instance)

    post_init.connect(on_init, weak=False)
    pre_delete.connect(on_delete, weak=False)
    try:
        yield built
    finally:
        post_init.disconnect(on_init)
        pre_delete.disconnect(on_delete)


class DeleteExpiredRowsTests(TestCase):
    """sessionplus.cleanup.delete_expired_rows, on the suite's database."""

    def sizes(self, batch_size: int, **kwargs: Any) -> list[int]:
        return [batch.sessions for batch in delete_expired_rows(Session, batch_size, **kwargs)]

    def test_no_expired_rows_is_one_empty_batch(self):
        add_rows(live=2)
        assert self.sizes(3) == [0]
        assert stored_keys() == live_keys(2)

    def test_one_expired_row_goes_in_one_batch(self):
        add_rows(expired=1, live=2)
        assert self.sizes(3) == [1]
        assert stored_keys() == live_keys(2)

    def test_exactly_a_batch_of_expired_rows_needs_a_second_empty_batch(self):
        add_rows(expired=3, live=2)
        assert self.sizes(3) == [3, 0]
        assert stored_keys() == live_keys(2)

    def test_one_row_more_than_a_batch_goes_in_a_second_batch(self):
        add_rows(expired=4, live=2)
        assert self.sizes(3) == [3, 1]
        assert stored_keys() == live_keys(2)

    def test_batches_go_oldest_first(self):
        add_rows(expired=5)
        batches = delete_expired_rows(Session, 2)
        next(batches)
        assert stored_keys() == {key("e", 0), key("e", 1), key("e", 2)}
        next(batches)
        assert stored_keys() == {key("e", 0)}

    def test_a_row_refreshed_between_batches_stays(self):
        add_rows(expired=5, live=1)
        batches = delete_expired_rows(Session, 2)
        assert next(batches).sessions == 2
        refresh(key("e", 1))
        assert [batch.sessions for batch in batches] == [2, 0]
        assert stored_keys() == {key("e", 1), key("l", 0)}

    def test_nothing_happens_until_a_batch_is_asked_for(self):
        add_rows(expired=3)
        with count_storage() as count:
            batches = delete_expired_rows(Session, 2)
        assert count.total == 0
        next(batches)
        assert len(stored_keys()) == 1

    def test_each_batch_is_one_statement_or_a_select_and_a_delete_on_mysql(self):
        add_rows(expired=5, live=1)
        with count_storage() as count:
            batches = list(delete_expired_rows(Session, 2))
        assert [batch.sessions for batch in batches] == [2, 2, 1]
        assert count.sql == BATCH_STATEMENTS * 3

    def test_no_model_instance_is_built_even_with_delete_receivers(self):
        add_rows(expired=5, live=1)
        with no_instances_built() as built:
            list(delete_expired_rows(Session, 2))
            list(delete_expired_rows(Session, 2, evict=lambda keys: None))
        assert built == []
        assert stored_keys() == live_keys(1)

    def test_dry_run_counts_and_deletes_nothing(self):
        add_rows(expired=4, live=2)
        with count_storage() as count:
            assert self.sizes(3, dry_run=True) == [4]
        assert len(count.sql) == 1
        assert len(stored_keys()) == 6

    def test_evict_gets_exactly_the_keys_each_batch_deleted(self):
        add_rows(expired=5, live=1)
        evicted: list[set[str]] = []
        batches = delete_expired_rows(Session, 2, evict=lambda keys: evicted.append(set(keys)))
        next(batches)
        refresh(key("e", 2))
        list(batches)
        assert evicted == [{key("e", 4), key("e", 3)}, {key("e", 1), key("e", 0)}]

    def test_evict_is_not_called_for_an_empty_batch(self):
        add_rows(live=1)
        evicted: list[Any] = []
        assert self.sizes(2, evict=evicted.append) == [0]
        assert evicted == []

    def test_another_model_is_cleared_by_its_own_table(self):
        add_rows(DjangoSession, expired=3, live=1)
        add_rows(Session, expired=2)
        sizes = [batch.sessions for batch in delete_expired_rows(DjangoSession, 2)]
        assert sizes == [2, 1]
        assert stored_keys(DjangoSession) == live_keys(1)
        assert len(stored_keys(Session)) == 2


class PortableDeleteTests(TestCase):
    """
    The path for databases without a row address (MySQL, Oracle, others).

    The suite runs SQLite and PostgreSQL only, so each test forces that path by emptying
    the table of row addresses: the statements it sends are real and run for real.
    """

    def setUp(self):
        patcher = mock.patch.dict(cleanup._ROW_ADDRESS, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def sizes(self, batch_size: int, **kwargs: Any) -> list[int]:
        return [batch.sessions for batch in delete_expired_rows(Session, batch_size, **kwargs)]

    def test_batch_boundaries(self):
        for expired, expected in [(0, [0]), (1, [1]), (3, [3, 0]), (4, [3, 1])]:
            Session.objects.all().delete()
            add_rows(expired=expired, live=1)
            assert self.sizes(3) == expected, expired
            assert stored_keys() == live_keys(1)

    def test_a_row_refreshed_between_its_selection_and_its_delete_stays_and_stays_cached(self):
        add_rows(expired=3, live=1)
        evicted: list[set[str]] = []
        with before_statement("DELETE", lambda: refresh(key("e", 2))):
            sizes = self.sizes(3, evict=lambda keys: evicted.append(set(keys)))
        assert sizes == [2]
        assert evicted == [{key("e", 1), key("e", 0)}]
        assert stored_keys() == {key("e", 2), key("l", 0)}

    def test_no_model_instance_is_built(self):
        add_rows(expired=3, live=1)
        with no_instances_built() as built:
            self.sizes(2, evict=lambda keys: None)
        assert built == []

    def test_a_batch_never_sends_more_keys_than_the_database_takes(self):
        add_rows(expired=5)
        # max_query_params is a class attribute or property depending on the Django version.
        with mock.patch.object(type(connection.features), "max_query_params", 3):
            assert self.sizes(10) == [2, 2, 1]
