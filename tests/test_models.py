"""The sessionplus.Session model: its table, columns and indexes, and Django's model API."""

from __future__ import annotations

import importlib
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import SimpleTestCase, TestCase
from django.utils import timezone

import sessionplus.models
from sessionplus.backends.db import SessionStore
from sessionplus.backends.metadata import USER_AGENT_MAX_LENGTH
from sessionplus.identifiers import public_id
from sessionplus.models import Session


class SessionModelTests(TestCase):
    def test_table_and_columns(self):
        assert Session._meta.db_table == "sessionplus_session"
        with connection.cursor() as cursor:
            columns = {
                column.name
                for column in connection.introspection.get_table_description(
                    cursor, Session._meta.db_table
                )
            }
        assert columns == {
            "session_key",
            "session_data",
            "expire_date",
            "user_id",
            "ip",
            "user_agent",
            "created_at",
            "last_activity",
            "public_id",
        }
        assert Session._meta.get_field("user_agent").max_length == USER_AGENT_MAX_LENGTH

    def test_expire_date_user_id_and_public_id_are_indexed(self):
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, Session._meta.db_table)
        indexed = {
            tuple(constraint["columns"])
            for constraint in constraints.values()
            if constraint["index"] and not constraint["primary_key"]
        }
        assert {("expire_date",), ("user_id",), ("public_id",)} <= indexed

    def test_the_migration_matches_the_model(self):
        out = StringIO()
        call_command("makemigrations", "sessionplus", check=True, dry_run=True, stdout=out)
        assert "No changes detected" in out.getvalue()

    def test_the_model_names_the_db_engine_and_decodes_its_data(self):
        assert Session.get_session_store_class() is SessionStore
        session = SessionStore()
        session["a"] = 1
        session.save()
        row = Session.objects.get(pk=session.session_key)
        assert str(row) == session.session_key  # as Django's: the admin shows no str()
        assert row.get_decoded() == {"a": 1}

    def test_damaged_data_decodes_to_an_empty_dict_and_is_logged(self):
        row = Session(
            session_key="d" * 32,
            session_data="not signed",
            expire_date=timezone.now() + timedelta(hours=1),
        )
        with self.assertLogs("django.security.SuspiciousSession", "WARNING"):
            assert row.get_decoded() == {}

    def test_a_row_inserted_with_only_djangos_three_columns_is_a_session_without_metadata(self):
        # What moving rows in from django_session by plain SQL writes.
        data = SessionStore().encode({"moved": True})
        expire_date = timezone.now() + timedelta(hours=1)
        table = connection.ops.quote_name(Session._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (session_key, session_data, expire_date) VALUES (%s, %s, %s)",
                ["m" * 32, data, expire_date],
            )
        session = SessionStore("m" * 32)
        assert session["moved"] is True
        assert session.metadata.user_agent is None
        assert session.metadata.created_at is None
        assert Session.objects.get(pk="m" * 32).user_agent == ""

    def test_the_engine_writes_the_public_id_with_every_save(self):
        session = SessionStore()
        session["a"] = 1
        session.save()
        session["b"] = 2
        session.save()
        assert Session.objects.get(pk=session.session_key).public_id == public_id(
            session.session_key
        )

    def test_the_migration_fills_the_public_id_of_rows_written_before_it(self):
        keys = []
        for _ in range(3):
            session = SessionStore()
            session["a"] = 1
            session.save()
            keys.append(session.session_key)
        Session.objects.update(public_id=None)
        migration = importlib.import_module("sessionplus.migrations.0003_public_id")
        # RunPython reads only the editor's connection; SQLite refuses a real schema
        # editor inside the test's transaction.
        migration.fill_public_ids(apps, SimpleNamespace(connection=connection))
        stored = dict(Session.objects.values_list("session_key", "public_id"))
        assert stored == {key: public_id(key) for key in keys}


class AppNotInstalledTests(SimpleTestCase):
    def test_importing_the_model_without_the_app_names_the_missing_setting(self):
        without = [app for app in settings.INSTALLED_APPS if app != "sessionplus"]
        with (
            self.settings(INSTALLED_APPS=without),
            self.assertRaisesMessage(
                ImproperlyConfigured, "add 'sessionplus' to INSTALLED_APPS and run"
            ),
        ):
            # What the engine's first import does in a project that left the app out.
            importlib.reload(sessionplus.models)
        assert sessionplus.models.Session is Session
