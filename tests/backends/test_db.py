"""The db engine: the contract every engine keeps, then what only a session table does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, reset_queries
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, TestCase, TransactionTestCase, override_settings
from django.test.testcases import DatabaseOperationForbidden
from django.urls import path
from django.utils import timezone
from freezegun import freeze_time

from sessionplus.backends import db
from sessionplus.backends.db import SessionStore
from sessionplus.identifiers import public_id
from sessionplus.models import Session
from tests.backends.contract import (
    SYNC,
    Calls,
    ServerSideStoreContract,
    UserIndexedStoreContract,
    with_twins,
)
from tests.custom_session.models import CustomSession
from tests.custom_session.models import SessionStore as CustomStore
from tests.support.budgets import measure, operation_calls
from tests.support.clocks import ZONES_APART, naive_clock_apart_from_time_zone
from tests.support.counting import count_storage
from tests.support.engines import ENGINES


def flip_a_byte_of_the_row(model: Any, session_key: str) -> None:
    """Flip a byte of a row's stored data, outside the app."""
    row = model.objects.get(pk=session_key)
    data = bytearray(row.session_data.encode())
    data[5] ^= 0x01
    model.objects.filter(pk=session_key).update(session_data=data.decode())


class DbSessionStoreTests(UserIndexedStoreContract, TestCase):
    engine = ENGINES["db"]

    def corrupt(self, session_key: str) -> None:
        flip_a_byte_of_the_row(Session, session_key)


class CustomModelSessionStoreTests(ServerSideStoreContract, TestCase):
    """A project's model without sessionplus's metadata columns keeps the whole contract."""

    engine = ENGINES["project_model"]

    def corrupt(self, session_key: str) -> None:
        flip_a_byte_of_the_row(CustomSession, session_key)


def saved(
    store_class: type[SessionStore] = SessionStore, call: Calls = SYNC, **data: object
) -> SessionStore:
    session = store_class()
    call(session, "update", data)
    call(session, "save")
    return session


def loaded(
    session_key: str, store_class: type[SessionStore] = SessionStore, call: Calls = SYNC
) -> SessionStore:
    session = store_class(session_key)
    call(session, "keys")
    return session


@contextmanager
def sql_noted(note: Callable[[str], Any], on_table: str = "") -> Iterator[list[Any]]:
    """
    Record ``note(sql)`` of each statement sent on the default connection (only those
    naming ``on_table``, if given; a note of None is left out), as sent: mysqlclient logs a
    failed one without its SQL.
    """
    noted: list[Any] = []

    def record(execute: Any, sql: str, *args: Any) -> Any:
        if on_table in sql and (found := note(sql)) is not None:
            noted.append(found)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        yield noted


def statements_sent(on_table: str = "") -> AbstractContextManager[list[str]]:
    """Record the first word of each statement sent (see sql_noted())."""
    return sql_noted(lambda sql: sql.split(None, 1)[0].upper(), on_table)


def set_columns(sql: str) -> list[str] | None:
    """Return the columns an UPDATE sets, in the order it sets them; None for other SQL."""
    if not sql.startswith("UPDATE"):
        return None
    assignments = sql.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    return [part.split("=")[0].strip().strip('"`') for part in assignments.split(",")]


def updated_columns() -> AbstractContextManager[list[list[str]]]:
    """Record the columns each UPDATE of a session row sets (see sql_noted())."""
    return sql_noted(set_columns)


def in_a_request(session_key: str) -> SessionStore:
    """Return the store of ``session_key`` as the middleware builds one for a request."""
    session = SessionStore(session_key)
    session.request = RequestFactory().post("/login/")
    return session


@with_twins
class DbRowTests(TestCase):
    def test_metadata_is_stored_in_its_columns(self):
        moment = timezone.now().replace(microsecond=0)
        with freeze_time(moment):
            session = SessionStore()
            session["a"] = 1
            session.update_metadata(user_id=42, ip="2001:db8::1", user_agent="Browser/1.0")
            session.save()
        row = Session.objects.get(pk=session.session_key)
        assert (row.user_id, row.ip, row.user_agent) == ("42", "2001:db8::1", "Browser/1.0")
        assert row.created_at == row.last_activity == moment
        assert row.expire_date == moment + timedelta(seconds=settings.SESSION_COOKIE_AGE)
        assert row.get_decoded() == {"a": 1}

    def test_unrecorded_user_agent_is_stored_blank_and_read_back_as_none(self):
        session = saved(a=1)
        assert Session.objects.get(pk=session.session_key).user_agent == ""
        assert loaded(session.session_key).metadata.user_agent is None

    def test_a_row_is_built_as_keywords_would_build_it(self):
        # The engine builds rows from positional values (Django's faster path): every column
        # it leaves out must still get its default, as Model(**values) gives it.
        moment = timezone.now()
        for model, values in [
            (Session, {"session_key": "k" * 32, "session_data": "d", "expire_date": moment}),
            (Session, {"session_key": "k" * 32, "ip": "192.0.2.1", "last_activity": moment}),
            (CustomSession, {"session_key": "k" * 32, "expire_date": moment}),
        ]:
            built, expected = db._new_row(model, values), model(**values)
            for field in model._meta.concrete_fields:
                assert getattr(built, field.attname) == getattr(expected, field.attname), field
            assert built._state.adding
            assert built._state.db is None

    def test_save_rewrites_the_row_with_one_update(self):
        session = loaded(saved(a=1).session_key)
        session.set_expiry(600)
        session["b"] = 2
        session.save()
        row = Session.objects.get(pk=session.session_key)
        assert row.get_decoded() == {"a": 1, "b": 2, "_session_expiry": 600}
        assert abs(row.expire_date - timezone.now() - timedelta(seconds=600)) < timedelta(seconds=5)

    def both_a_save_sets_only_the_columns_whose_values_changed(self, call: Calls) -> None:
        session = SessionStore()
        session.update_metadata(user_id="7", ip="192.0.2.1", user_agent="Browser/1.0")
        call(session, "update", {"a": 1})
        call(session, "save")
        session = loaded(session.session_key, call=call)
        call(session, "set", "a", 2)
        with updated_columns() as plain:
            call(session, "save")
        session = loaded(session.session_key, call=call)
        session.update_metadata(ip="192.0.2.9")
        call(session, "set", "a", 3)
        with updated_columns() as moved:
            call(session, "save")
        assert plain == [["session_data", "expire_date", "last_activity"]]
        assert moved == [["session_data", "expire_date", "ip", "last_activity"]]
        row = Session.objects.get(pk=session.session_key)
        assert (row.user_id, row.ip, row.user_agent) == ("7", "192.0.2.9", "Browser/1.0")
        assert row.public_id == public_id(session.session_key)
        assert row.get_decoded() == {"a": 3}

    def test_a_save_never_writes_back_a_column_another_request_changed_meanwhile(self):
        session = loaded(saved(a=1).session_key)
        Session.objects.filter(pk=session.session_key).update(ip="192.0.2.9")
        session["a"] = 2
        session.save()
        row = Session.objects.get(pk=session.session_key)
        assert (row.ip, row.get_decoded()) == ("192.0.2.9", {"a": 2})

    def test_a_save_fills_a_public_id_the_row_lacks(self):
        # Rows written by a release before public ids, after the migration that filled them.
        session_key = saved(a=1).session_key
        Session.objects.filter(pk=session_key).update(public_id=None)
        session = loaded(session_key)
        session["a"] = 2
        with updated_columns() as sets:
            session.save()
        assert "public_id" in sets[0]
        assert Session.objects.get(pk=session_key).public_id == public_id(session_key)

    def test_a_column_create_model_instance_changes_is_written(self):
        class Relabelling(SessionStore):
            def create_model_instance(self, data: dict[str, Any]) -> Any:
                row = super().create_model_instance(data)
                row.user_agent = "Relabelled/1.0"
                return row

        session = loaded(saved(a=1).session_key, Relabelling)
        session["a"] = 2
        session.save()
        assert Session.objects.get(pk=session.session_key).user_agent == "Relabelled/1.0"

    def both_touch_moves_expiry_and_last_activity_and_leaves_the_data_alone(
        self, call: Calls
    ) -> None:
        created, touched = timezone.now() - timedelta(hours=2), timezone.now()
        with freeze_time(created):
            session = saved(call=call, a=1)
        before = Session.objects.get(pk=session.session_key)
        with freeze_time(touched):
            session = loaded(session.session_key, call=call)
            call(session, "touch")
        after = Session.objects.get(pk=session.session_key)
        assert after.session_data == before.session_data
        assert after.created_at == before.created_at
        assert after.last_activity == touched
        assert after.expire_date == touched + timedelta(seconds=settings.SESSION_COOKIE_AGE)

    def test_touch_writes_staged_metadata_but_never_writes_back_what_it_did_not_change(self):
        session = saved(a=1)
        stale = loaded(session.session_key)
        # Another request records the user meanwhile.
        Session.objects.filter(pk=session.session_key).update(user_id="7")
        stale.update_metadata(ip="192.0.2.9")
        stale.touch()
        row = Session.objects.get(pk=session.session_key)
        assert (row.user_id, row.ip) == ("7", "192.0.2.9")

    def both_touch_of_a_session_without_a_record_writes_nothing(self, call: Calls) -> None:
        unknown = SessionStore("c" * 32)
        with self.assertNumQueries(1):
            call(unknown, "touch")
        assert not Session.objects.exists()

    def both_an_expired_row_does_not_exist_until_clear_expired_removes_it(
        self, call: Calls
    ) -> None:
        live = saved(call=call, a=1)
        expired = SessionStore()
        call(expired, "set", "a", 1)
        call(expired, "set_expiry", -60)
        call(expired, "save")
        assert Session.objects.count() == 2
        assert call(SessionStore(), "exists", expired.session_key) is False
        assert call(SessionStore, "clear_expired") == 1
        assert list(Session.objects.values_list("pk", flat=True)) == [live.session_key]

    def test_end_sessions_for_user_leaves_expired_rows_to_clear_expired(self):
        session = SessionStore()
        session["a"] = 1
        session.set_expiry(-60)
        session.update_metadata(user_id="7")
        session.save()
        assert SessionStore.end_sessions_for_user("7") == 0
        assert Session.objects.filter(user_id="7").count() == 1

    def test_a_collision_inside_a_transaction_leaves_the_transaction_usable(self):
        # TestCase runs inside a transaction: without a savepoint around the INSERT,
        # PostgreSQL would refuse every statement after the collision.
        taken = saved(owner="first").session_key
        session = SessionStore()
        session["owner"] = "second"
        with override_key_generator([taken, "d" * 32]):
            session.save()
        assert Session.objects.count() == 2

    def both_cycle_key_moves_the_row_with_its_metadata(self, call: Calls) -> None:
        session = saved(call=call, a=1)
        session.update_metadata(user_agent="Browser/1.0")
        call(session, "save")
        old = Session.objects.get(pk=session.session_key)
        session = loaded(old.session_key, call=call)
        call(session, "cycle_key")
        assert not SessionStore().exists(old.session_key)
        row = Session.objects.get()
        assert (row.session_key, row.created_at) == (session.session_key, old.created_at)
        assert (row.user_agent, loaded(row.session_key)["a"]) == ("Browser/1.0", 1)
        assert row.public_id != old.public_id

    def test_cycle_key_skips_a_new_key_that_is_taken(self):
        taken = saved(owner="other").session_key
        session = saved(owner="me")
        with override_key_generator([taken, "d" * 32]):
            session.cycle_key()
        assert session.session_key == "d" * 32
        assert loaded(taken)["owner"] == "other"
        assert loaded("d" * 32)["owner"] == "me"
        assert Session.objects.count() == 2

    def test_cycle_key_of_a_session_deleted_meanwhile_stores_it_under_a_new_key(self):
        session = saved(a=1)
        session["b"] = 2
        SessionStore().delete(session.session_key)
        session.cycle_key()
        assert dict(loaded(session.session_key).items()) == {"a": 1, "b": 2}
        assert Session.objects.count() == 1

    def test_cycle_key_gives_up_when_every_new_key_is_taken(self):
        taken = saved(owner="other").session_key
        session = saved(owner="me")
        old_key = session.session_key
        with override_key_generator([taken] * 10), pytest.raises(RuntimeError):
            session.cycle_key()
        assert loaded(old_key)["owner"] == "me"

    @override_settings(USE_TZ=False)
    def test_round_trip_without_time_zone_support(self):
        session = saved(a=1)
        row = Session.objects.get(pk=session.session_key)
        assert timezone.is_naive(row.expire_date)
        reloaded = loaded(session.session_key)
        assert reloaded["a"] == 1
        assert reloaded.get_expiry_age() == settings.SESSION_COOKIE_AGE
        assert reloaded.metadata.created_at is not None

    def test_rows_written_on_djangos_clock_expire_when_django_says_when_time_zone_disagrees(self):
        # Without USE_TZ, Django's engine writes expire_date in the process's local time.
        for time_zone, process_zone in ZONES_APART:
            with naive_clock_apart_from_time_zone(time_zone, process_zone):
                Session.objects.save("e" * 32, {"a": 1}, timezone.now() - timedelta(seconds=10))
                Session.objects.save("l" * 32, {"a": 1}, timezone.now() + timedelta(hours=1))
                assert list(loaded("e" * 32).keys()) == []
                assert loaded("l" * 32)["a"] == 1

    def test_session_manager_save_writes_what_the_engine_reads(self):
        # Django's documented BaseSessionManager.save() encodes with the model's engine.
        expire = timezone.now() + timedelta(hours=1)
        Session.objects.save("k" * 32, {"a": 1}, expire)
        assert loaded("k" * 32)["a"] == 1
        Session.objects.save("k" * 32, {}, expire)
        assert not Session.objects.exists()


@with_twins
class CycleKeyInARequestTests(TransactionTestCase):
    """
    In a request (a login), cycle_key()'s move waits for the response's save: one UPDATE
    moves the row and writes the login's data. Autocommit, so every statement shows.
    """

    def both_the_save_moves_the_row_with_one_update(self, call: Calls) -> None:
        old_key = saved(call=call, cart="apple").session_key
        session = in_a_request(old_key)
        with count_storage() as cycling:
            call(session, "cycle_key")
        new_key = session.session_key
        assert new_key not in (None, old_key)
        # Until the save the old key reads the session as it was before the login.
        assert dict(loaded(old_key).items()) == {"cart": "apple"}
        call(session, "set", "_auth_user_id", "1")
        with count_storage() as saving:
            call(session, "save")
        assert (cycling.calls, saving.calls) == (["SELECT"], ["UPDATE"])
        assert list(loaded(old_key).keys()) == []
        assert dict(loaded(new_key).items()) == {"cart": "apple", "_auth_user_id": "1"}
        assert Session.objects.get().public_id == public_id(new_key)

    def both_a_second_cycle_before_the_save_moves_the_same_row(self, call: Calls) -> None:
        old_key = saved(call=call, cart="apple").session_key
        session = in_a_request(old_key)
        call(session, "cycle_key")
        call(session, "cycle_key")
        call(session, "save")
        assert Session.objects.get().session_key == session.session_key
        assert dict(loaded(session.session_key).items()) == {"cart": "apple"}

    def both_a_logout_before_the_save_deletes_the_row_under_the_old_key(self, call: Calls) -> None:
        old_key = saved(call=call, cart="apple").session_key
        session = in_a_request(old_key)
        call(session, "cycle_key")
        call(session, "flush")
        assert Session.objects.count() == 0
        call(session, "set", "after", "logout")
        call(session, "save")
        assert dict(loaded(session.session_key).items()) == {"after": "logout"}
        assert Session.objects.count() == 1

    def both_a_row_deleted_before_the_save_is_written_afresh_under_the_new_key(
        self, call: Calls
    ) -> None:
        old_key = saved(call=call, cart="apple").session_key
        session = in_a_request(old_key)
        call(session, "cycle_key")
        SessionStore().delete(old_key)
        call(session, "save")
        assert dict(loaded(session.session_key).items()) == {"cart": "apple"}
        assert Session.objects.count() == 1

    def test_a_taken_new_key_is_skipped_at_the_save(self):
        taken = saved(owner="other").session_key
        session = in_a_request(saved(owner="me").session_key)
        with override_key_generator([taken, "d" * 32]):
            session.cycle_key()
            assert session.session_key == taken
            session.save()
        assert session.session_key == "d" * 32
        assert (loaded(taken)["owner"], loaded("d" * 32)["owner"]) == ("other", "me")


@override_settings(ROOT_URLCONF="tests.urls_middleware")
class LoginOverHttpTests(TransactionTestCase):
    """A login through the middleware and django.contrib.auth, statements counted."""

    def setUp(self) -> None:
        get_user_model().objects.create_user("ada")
        self.anonymous_key = self.client.get("/write/", {"value": "cart"}).cookies["sessionid"]

    def test_a_login_reads_and_writes_the_session_row_once_each(self):
        with statements_sent(on_table="sessionplus_session") as sent:
            response = self.client.get("/login/", {"username": "ada"})
        assert sent == ["SELECT", "UPDATE"]
        new_key = response.cookies["sessionid"].value
        assert new_key != self.anonymous_key.value
        assert not SessionStore().exists(self.anonymous_key.value)
        assert self.client.get("/whoami/").content == b"ada"
        assert self.client.get("/read/").content == b"cart"

    @override_settings(SESSIONPLUS_PREVIOUS_ENGINE="django.contrib.sessions.backends.db")
    def test_a_login_over_a_session_adopted_in_the_same_request_moves_the_adopted_row(self):
        previous = DjangoStore()
        previous["value"] = "kept through the switch"
        previous.save()
        self.client.cookies["sessionid"] = previous.session_key
        new_key = self.client.get("/login/", {"username": "ada"}).cookies["sessionid"].value
        assert new_key != previous.session_key
        assert not DjangoStore().exists(previous.session_key)
        assert not SessionStore().exists(previous.session_key)
        assert Session.objects.filter(pk=new_key).exists()
        assert self.client.get("/whoami/").content == b"ada"
        assert self.client.get("/read/").content == b"kept through the switch"

    def test_a_login_whose_response_fails_leaves_the_anonymous_session_as_it_was(self):
        # Django's engine has deleted the anonymous session by then: the visitor's cookie
        # (the failed response sets none) would find nothing.
        response = self.client.get("/login-then-fail/", {"username": "ada"})
        assert response.status_code == 500
        assert "sessionid" not in response.cookies
        assert self.client.get("/whoami/").content == b"anonymous"
        assert self.client.get("/read/").content == b"cart"
        assert Session.objects.get().session_key == self.anonymous_key.value


def override_key_generator(keys: list[str]) -> Any:
    """
    Make the key generator return ``keys`` in order.

    Fault injection: a random key colliding with a stored one cannot be produced for real.
    """
    return mock.patch.object(SessionStore, "_get_new_session_key", side_effect=keys)


class ReplicaRouter:
    """Send reads to a replica and writes to the primary, as a read-scaled site does."""

    def db_for_read(self, model: object, **hints: object) -> str:
        return "replica"

    def db_for_write(self, model: object, **hints: object) -> str:
        return "default"


@override_settings(DATABASE_ROUTERS=[f"{__name__}.ReplicaRouter"])
@with_twins
class WriteDatabaseTests(TestCase):
    """The test may query "default" only: a statement sent to the replica fails it."""

    def both_every_operation_uses_the_database_named_for_writes(self, call: Calls) -> None:
        session = SessionStore()
        call(session, "set", "a", 1)
        session.update_metadata(user_id="7")
        call(session, "save")
        assert call(SessionStore(session.session_key), "get", "a") == 1
        assert call(SessionStore(), "exists", session.session_key) is True
        call(loaded(session.session_key, call=call), "touch")
        assert call(SessionStore, "sessions_for_user", "7") == [session.session_key]
        assert call(SessionStore, "clear_expired") == 0
        call(session, "cycle_key")
        assert call(SessionStore, "end_sessions_for_user", "7") == 1
        call(session, "delete")

    def test_djangos_engine_asks_the_replica(self):
        session = DjangoStore()
        session["a"] = 1
        # Its create probes for the new key with a read, so even that goes to the replica.
        with pytest.raises(DatabaseOperationForbidden, match="replica"):
            session.save()


@with_twins
class CustomModelTests(TestCase):
    """A project's own model through get_model_class(), written as Django documents it."""

    def both_create_model_instance_fills_the_extra_column_on_insert_and_update(
        self, call: Calls
    ) -> None:
        session = saved(CustomStore, call, _auth_user_id=42)
        assert CustomSession.objects.get(pk=session.session_key).account_id == 42
        assert call(CustomStore(session.session_key), "get", "_auth_user_id") == 42
        session = loaded(session.session_key, CustomStore, call)
        call(session, "pop", "_auth_user_id")
        call(session, "save")
        assert CustomSession.objects.get(pk=session.session_key).account_id is None

    def test_metadata_without_columns_travels_in_the_signed_data(self):
        session = CustomStore()
        session["a"] = 1
        session.update_metadata(user_id="7", ip="192.0.2.1", user_agent="Browser/1.0")
        session.save()
        reloaded = loaded(session.session_key, CustomStore)
        assert dict(reloaded.items()) == {"a": 1}
        metadata = reloaded.metadata
        assert (metadata.user_id, metadata.ip, metadata.user_agent) == (
            "7",
            "192.0.2.1",
            "Browser/1.0",
        )
        assert metadata.created_at is not None
        assert CustomSession.objects.get(pk=session.session_key).get_decoded() == {"a": 1}

    def test_a_touch_records_last_activity_in_the_data_of_a_model_without_the_column(self):
        created = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
        with freeze_time(created):
            key = saved(CustomStore, a=1).session_key
        with freeze_time(created + timedelta(minutes=20)):
            session = loaded(key, CustomStore)
            with count_storage() as count:
                session.touch()
        assert count.calls == ["UPDATE"]
        metadata = loaded(key, CustomStore).metadata
        assert metadata.last_activity == created + timedelta(minutes=20)
        assert metadata.created_at == created

    def test_finding_sessions_by_user_needs_a_user_id_column(self):
        with pytest.raises(ImproperlyConfigured, match="CustomSession has no user_id column"):
            CustomStore.sessions_for_user("7")


# Budgets ---------------------------------------------------------------------------------


def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse("no session here")


def reads(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(request.session.get("a")))


urlpatterns = [path("untouched/", untouched), path("reads/", reads)]


@with_twins
class DbBudgetTests(TransactionTestCase):
    """
    Statements per operation, in autocommit mode (no test transaction around them), so
    BEGIN, SAVEPOINT and COMMIT would show.
    """

    def test_each_operation_is_one_statement_where_djangos_engine_spends_more(self):
        assert measure(SessionStore) == {
            "load": ["SELECT"],
            "save": ["UPDATE"],
            "create": ["INSERT"],
            "refresh": ["UPDATE"],
            "delete": ["DELETE"],
            "login": ["SELECT", "UPDATE"],
        }
        assert measure(DjangoStore) == {
            "load": ["SELECT"],
            "save": ["BEGIN", "UPDATE", "COMMIT"],
            "create": ["SELECT", "BEGIN", "INSERT", "COMMIT"],
            "refresh": ["BEGIN", "UPDATE", "COMMIT"],
            "delete": ["SELECT", "DELETE"],
            "login": [
                *["SELECT", "SELECT", "BEGIN", "INSERT", "COMMIT"],
                *["SELECT", "DELETE", "BEGIN", "UPDATE", "COMMIT"],
            ],
        }

    def both_save_of_a_deleted_session_is_one_update_then_update_error(self, call: Calls) -> None:
        session = loaded(saved(call=call, a=1).session_key, call=call)
        call(session, "set", "b", 2)
        Session.objects.all().delete()
        with count_storage() as count, pytest.raises(UpdateError):
            call(session, "save")
        assert count.calls == ["UPDATE"]

    def test_a_key_collision_costs_one_more_insert_and_no_probe(self):
        taken = saved(owner="first").session_key
        session = SessionStore()
        session["owner"] = "second"
        with (
            override_key_generator([taken, "d" * 32]),
            count_storage() as count,
            statements_sent() as sent,
        ):
            session.save()
        # Every statement, transaction control included, is counted; what each one was is read
        # from what was sent: mysqlclient logs a statement that failed without its SQL.
        assert count.total == 2
        assert sent == ["INSERT", "INSERT"]
        assert session.session_key == "d" * 32

    def both_exists_and_the_per_user_and_cleanup_queries_are_one_statement_each(
        self, call: Calls
    ) -> None:
        session = SessionStore()
        call(session, "set", "a", 1)
        session.update_metadata(user_id="7")
        call(session, "save")
        with count_storage() as exists:
            call(SessionStore(), "exists", session.session_key)
        with count_storage() as listing:
            call(SessionStore, "sessions_for_user", "7")
        with count_storage() as ending:
            call(SessionStore, "end_sessions_for_user", "7", keep="x" * 32)
        with count_storage() as clearing:
            call(SessionStore, "clear_expired")
        assert (exists.calls, listing.calls, ending.calls, clearing.calls) == (
            ["SELECT"],
            ["SELECT"],
            ["DELETE"],
            ["DELETE"],
        )

    def both_operations_are_one_statement_each(self, call: Calls) -> None:
        # Counted from this thread, where async_to_sync() runs the ORM's async calls.
        assert operation_calls(SessionStore, call) == [
            ["INSERT"],
            ["SELECT"],
            ["UPDATE"],
            ["UPDATE"],
            ["DELETE"],
        ]

    def both_a_malformed_key_costs_nothing(self, call: Calls) -> None:
        with count_storage() as count:
            session = SessionStore("../" + "a" * 29)
            call(session, "keys")
            call(session, "exists", "a" * 33)
            call(session, "delete", "A" * 32)
        assert count.calls == []

    def both_a_custom_model_keeps_the_budgets(self, call: Calls) -> None:
        with count_storage() as create:
            session = saved(CustomStore, call, _auth_user_id=1)
        with count_storage() as load:
            session = loaded(session.session_key, CustomStore, call)
        call(session, "set", "b", 2)
        with count_storage() as save:
            call(session, "save")
        assert [create.calls, load.calls, save.calls] == [["INSERT"], ["SELECT"], ["UPDATE"]]

    @override_settings(ROOT_URLCONF=__name__, SESSION_ENGINE=ENGINES["db"].module)
    def both_a_request_that_never_touches_the_session_costs_nothing_and_a_read_one(
        self, call: Calls
    ) -> None:
        session = saved(a=1)
        client = call.client(self)
        client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
        with count_storage() as untouched:
            assert call.get(client, "/untouched/").content == b"no session here"
        with count_storage() as read:
            assert call.get(client, "/reads/").content == b"1"
        assert (untouched.calls, read.calls) == ([], ["SELECT"])


class KeptCursorTests(TransactionTestCase):
    """The per-request statements share one cursor per connection, where Django allows it."""

    @property
    def connection(self) -> Any:
        # The engine's connection object itself (django.db.connection is a proxy to it).
        return connections["default"]

    def saved(self) -> SessionStore:
        session = SessionStore()
        session["cart"] = [1, 2]
        session.save()
        return session

    def test_loads_and_saves_reuse_one_cursor(self):
        session = self.saved()
        kept = db.kept_cursor(self.connection)
        assert kept is not None
        assert SessionStore(session.session_key)["cart"] == [1, 2]
        session["cart"] = [3]
        session.save()
        assert SessionStore(session.session_key)["cart"] == [3]
        assert db.kept_cursor(self.connection) is kept

    def test_after_a_reconnect_a_new_cursor_serves_and_the_session_loads(self):
        session = self.saved()
        before = db.kept_cursor(self.connection)
        self.connection.close()
        # Django never closes SQLite's in-memory test database: there the cursor stays good.
        reconnects = self.connection.connection is None
        if reconnects:
            assert db.kept_cursor(self.connection) is None  # Django's cursor() connects
        assert SessionStore(session.session_key)["cart"] == [1, 2]
        after = db.kept_cursor(self.connection)
        assert after is not None
        assert (after is not before) is reconnects

    def test_queries_are_logged_under_debug(self):
        session = self.saved()
        with override_settings(DEBUG=True):
            reset_queries()
            assert SessionStore(session.session_key)["cart"] == [1, 2]
            logged = [query["sql"] for query in self.connection.queries]
        assert any("sessionplus_session" in sql for sql in logged), logged

    def test_a_due_health_check_runs_before_the_statement(self):
        session = self.saved()
        enabled, done = self.connection.health_check_enabled, self.connection.health_check_done
        # As at the start of a request under CONN_HEALTH_CHECKS (set on the real self.connection).
        self.connection.health_check_enabled, self.connection.health_check_done = True, False
        try:
            assert db.kept_cursor(self.connection) is None
            assert SessionStore(session.session_key)["cart"] == [1, 2]
            assert self.connection.health_check_done  # Django's cursor() checked the connection
            assert db.kept_cursor(self.connection) is not None
        finally:
            self.connection.health_check_enabled, self.connection.health_check_done = enabled, done

    def test_a_time_zone_change_makes_a_new_cursor(self):
        self.saved()
        before = db.kept_cursor(self.connection)
        with override_settings(TIME_ZONE="Asia/Tokyo"):
            during = db.kept_cursor(self.connection)
        assert during is not before
        assert db.kept_cursor(self.connection) is not during


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="psycopg 3's binding: the suite's database is not PostgreSQL here "
    "(DATABASE_URL=postgres://…)",
)
class PostgresKeptCursorTests(TransactionTestCase):
    """
    On psycopg 3 the statements that write a row bind server-side (loads keep Django's
    client-side binding); they are prepared only where the connection allows it.
    """

    @property
    def connection(self) -> Any:
        return connections["default"]

    def saved_with_metadata(self) -> SessionStore:
        session = SessionStore()
        session["cart"] = ["it's", "50%", "$1", "%s"]  # text a client-side quoting must escape
        session.update_metadata(ip="2001:db8::1", user_agent="Mozilla/5.0 'quoted'")
        session.save()
        return session

    def prepared_statements(self) -> list[str]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return [row[0] for row in cursor.fetchall()]

    def test_writes_bind_server_side_and_loads_and_djangos_own_cursors_do_not(self):
        import psycopg

        session = self.saved_with_metadata()
        writing = db.kept_cursor(self.connection, writes=True)
        reading = db.kept_cursor(self.connection)
        assert writing is not None
        assert reading is not None
        assert not isinstance(writing.cursor, psycopg.ClientCursor)
        assert isinstance(reading.cursor, psycopg.ClientCursor)  # Django's default
        with self.connection.cursor() as django_cursor:
            assert isinstance(django_cursor.cursor, psycopg.ClientCursor)
        loaded = SessionStore(session.session_key)
        assert loaded["cart"] == ["it's", "50%", "$1", "%s"]
        assert (loaded.metadata.ip, loaded.metadata.user_agent) == (
            "2001:db8::1",
            "Mozilla/5.0 'quoted'",
        )
        assert loaded.metadata.created_at == session.metadata.created_at
        injection = ["'; DROP TABLE sessionplus_session; --"]
        loaded["cart"] = injection
        loaded.save()  # an UPDATE through the writing cursor
        assert SessionStore(session.session_key)["cart"] == injection
        row = Session.objects.get(session_key=session.session_key)
        assert (row.ip, row.user_agent) == ("2001:db8::1", "Mozilla/5.0 'quoted'")

    def test_no_statement_is_prepared_under_djangos_default(self):
        assert self.connection.connection is None or (
            self.connection.connection.prepare_threshold is None
        )
        session = self.saved_with_metadata()
        for number in range(6):  # past psycopg's usual threshold of 5
            session["cart"] = [number]
            session.save()
        assert not [sql for sql in self.prepared_statements() if "sessionplus_session" in sql]

    def test_writes_are_prepared_where_the_connection_allows_it(self):
        session = self.saved_with_metadata()
        self.connection.connection.prepare_threshold = 0  # OPTIONS={"prepare_threshold": 0}
        try:
            session["cart"] = [1]
            session.save()
            assert SessionStore(session.session_key)["cart"] == [1]
            prepared = self.prepared_statements()
        finally:
            # A new connection for the next test: none of this one's prepared statements.
            self.connection.close()
        ours = [sql for sql in prepared if "sessionplus_session" in sql]
        assert [sql.split()[0] for sql in ours] == ["UPDATE"]
