from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import OperationalError, connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import SimpleTestCase, TestCase, override_settings
from freezegun import freeze_time

from sessionplus.checks import (
    check_file_and_cache_engines,
    check_middleware,
    check_migrations_applied,
    check_previous_engine,
    check_redis_engine,
    check_session_cookie,
    check_session_cookie_security,
    check_settings,
    check_setup,
    check_shared_cache,
    check_user_sessions,
)
from tests.support.services import remount_read_only, tmpfs

DJANGO_MW = "django.contrib.sessions.middleware.SessionMiddleware"
PLUS_MW = "sessionplus.middleware.SessionMiddleware"


def ids(messages):
    return [message.id for message in messages]


class MiddlewareCheckTests(SimpleTestCase):
    def test_configured_test_settings_pass(self):
        assert check_middleware() == []

    @override_settings(MIDDLEWARE=[PLUS_MW, DJANGO_MW])
    def test_e001_both_session_middlewares_installed(self):
        assert ids(check_middleware()) == ["sessionplus.E001"]

    @override_settings(MIDDLEWARE=[], SESSION_ENGINE="sessionplus.backends.db")
    def test_w001_sessionplus_engine_without_session_middleware(self):
        assert ids(check_middleware()) == ["sessionplus.W001"]

    @override_settings(MIDDLEWARE=[DJANGO_MW], SESSION_ENGINE="sessionplus.backends.db")
    def test_w001_not_raised_with_djangos_middleware(self):
        assert check_middleware() == []

    @override_settings(MIDDLEWARE=[], SESSION_ENGINE="django.contrib.sessions.backends.db")
    def test_w001_not_raised_for_djangos_engines(self):
        assert check_middleware() == []


class SettingsCheckTests(SimpleTestCase):
    def test_defaults_pass(self):
        assert check_settings() == []

    def assert_flags(self, check_id: str, **bad_settings):
        with override_settings(**bad_settings):
            assert ids(check_settings()) == [check_id]

    def test_e002_idle_timeout(self):
        for bad in (0, -5, "60", 1.5, True):
            self.assert_flags("sessionplus.E002", SESSIONPLUS_IDLE_TIMEOUT=bad)

    def test_e003_absolute_timeout(self):
        self.assert_flags("sessionplus.E003", SESSIONPLUS_ABSOLUTE_TIMEOUT=0)

    def test_e004_touch_interval(self):
        self.assert_flags("sessionplus.E004", SESSIONPLUS_TOUCH_INTERVAL=-1)

    def test_e005_bind(self):
        self.assert_flags("sessionplus.E005", SESSIONPLUS_BIND=("ip",))
        self.assert_flags("sessionplus.E005", SESSIONPLUS_BIND="user_agent")

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=timedelta(seconds=-5), SESSIONPLUS_BIND=["ip"])
    def test_messages_show_the_bad_value_as_the_project_wrote_it(self):
        assert [message.msg for message in check_settings()] == [
            "SESSIONPLUS_IDLE_TIMEOUT should be a positive number of seconds (an int or a "
            "timedelta) or None, not datetime.timedelta(days=-1, seconds=86395).",
            "SESSIONPLUS_BIND should be a tuple of any of 'user_agent', 'ip_network', not ['ip'].",
        ]

    def test_e002_e003_e004_accept_a_timedelta(self):
        with override_settings(
            SESSIONPLUS_IDLE_TIMEOUT=timedelta(minutes=30),
            SESSIONPLUS_ABSOLUTE_TIMEOUT=timedelta(hours=12),
            SESSIONPLUS_TOUCH_INTERVAL=timedelta(minutes=1),
        ):
            assert check_settings() == []
        self.assert_flags("sessionplus.E004", SESSIONPLUS_TOUCH_INTERVAL=timedelta(0))

    def test_e006_trusted_proxies(self):
        self.assert_flags("sessionplus.E006", SESSIONPLUS_TRUSTED_PROXIES=-1)
        self.assert_flags("sessionplus.E006", SESSIONPLUS_TRUSTED_PROXIES="1")

    def test_e007_e008_e009_strings(self):
        self.assert_flags("sessionplus.E007", SESSIONPLUS_REDIS_ALIAS="")
        self.assert_flags("sessionplus.E008", SESSIONPLUS_REDIS_KEY_PREFIX=None)
        self.assert_flags("sessionplus.E009", SESSIONPLUS_COOKIE_CHECK_NAME=3)

    def test_e010_cookie_partitioned(self):
        self.assert_flags("sessionplus.E010", SESSIONPLUS_COOKIE_PARTITIONED="yes")

    def test_e011_max_size(self):
        self.assert_flags("sessionplus.E011", SESSIONPLUS_MAX_SIZE=0)

    def test_valid_values_pass(self):
        with override_settings(
            SESSIONPLUS_IDLE_TIMEOUT=600,
            SESSIONPLUS_BIND=["user_agent", "ip_network"],
            SESSIONPLUS_TRUSTED_PROXIES=1,
        ):
            assert check_settings() == []


class CheckRegistrationTests(SimpleTestCase):
    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=-1)
    def test_manage_py_check_runs_sessionplus_checks(self):
        with pytest.raises(SystemCheckError, match=r"sessionplus\.E002"):
            call_command("check", stdout=StringIO(), stderr=StringIO())


FILE_ENGINE = "sessionplus.backends.file"
CACHE_ENGINE = "sessionplus.backends.cache"


class FileAndCacheEngineCheckTests(SimpleTestCase):
    def test_configured_test_settings_pass(self):
        assert check_file_and_cache_engines() == []

    @override_settings(SESSION_ENGINE=FILE_ENGINE)
    def test_existing_writable_session_directory_passes(self):
        assert check_file_and_cache_engines() == []

    @override_settings(SESSION_ENGINE=FILE_ENGINE, SESSION_FILE_PATH=None)
    def test_temp_dir_default_passes(self):
        assert check_file_and_cache_engines() == []

    def test_e020_session_directory_missing(self):
        with tempfile.NamedTemporaryFile() as regular_file:
            for missing in ("/nonexistent/sessions", os.path.join(regular_file.name, "sub")):
                with override_settings(SESSION_ENGINE=FILE_ENGINE, SESSION_FILE_PATH=missing):
                    assert ids(check_file_and_cache_engines()) == ["sessionplus.E020"]

    def test_e021_session_directory_not_writable(self):
        # The suite runs as root, which permission bits do not stop: a read-only mount does.
        with tmpfs("64k") as directory:
            remount_read_only(directory)
            with override_settings(SESSION_ENGINE=FILE_ENGINE, SESSION_FILE_PATH=directory):
                assert ids(check_file_and_cache_engines()) == ["sessionplus.E021"]

    @override_settings(SESSION_ENGINE="django.contrib.sessions.backends.file")
    def test_file_checks_only_run_for_the_sessionplus_file_engine(self):
        with override_settings(SESSION_FILE_PATH="/nonexistent/sessions"):
            assert check_file_and_cache_engines() == []

    def test_e022_session_cache_alias_missing(self):
        for engine in (CACHE_ENGINE, "sessionplus.backends.cached_db"):
            with override_settings(SESSION_ENGINE=engine, SESSION_CACHE_ALIAS="missing"):
                assert ids(check_file_and_cache_engines()) == ["sessionplus.E022"]

    def test_e023_dummy_cache(self):
        caches = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        with override_settings(SESSION_ENGINE=CACHE_ENGINE, CACHES=caches):
            assert ids(check_file_and_cache_engines()) == ["sessionplus.E023"]

    @override_settings(SESSION_ENGINE=CACHE_ENGINE)
    def test_w020_locmem_cache(self):
        assert ids(check_file_and_cache_engines()) == ["sessionplus.W020"]

    @override_settings(SESSION_ENGINE=CACHE_ENGINE, SESSION_CACHE_ALIAS="redis")
    def test_shared_cache_passes(self):
        assert check_file_and_cache_engines() == []

    @override_settings(SESSION_ENGINE=FILE_ENGINE, SESSION_FILE_PATH="/nonexistent/sessions")
    def test_manage_py_check_runs_the_engine_checks(self):
        with pytest.raises(SystemCheckError, match=r"sessionplus\.E020"):
            call_command("check", stdout=StringIO(), stderr=StringIO())


REDIS_ENGINE = "sessionplus.backends.redis"


@override_settings(SESSION_ENGINE=REDIS_ENGINE)
class RedisEngineCheckTests(SimpleTestCase):
    def redis_alias(self, **options) -> dict:
        alias = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
        return {**settings.CACHES, "sessions": {**alias, "OPTIONS": options}}

    def test_the_test_settings_pass(self):
        assert check_redis_engine() == []

    @override_settings(SESSIONPLUS_REDIS_ALIAS="missing")
    def test_e030_alias_missing_from_caches(self):
        assert ids(check_redis_engine()) == ["sessionplus.E030"]

    def test_e031_alias_is_not_a_django_redis_cache(self):
        for backend in (
            "django.core.cache.backends.locmem.LocMemCache",
            "django.core.cache.backends.redis.RedisCache",
            "no.such.Backend",
        ):
            caches = {**settings.CACHES, "redis": {"BACKEND": backend}}
            with override_settings(CACHES=caches):
                assert ids(check_redis_engine()) == ["sessionplus.E031"], backend

    def test_w030_alias_without_socket_timeouts(self):
        for options in ({}, {"SOCKET_TIMEOUT": 1}, {"SOCKET_CONNECT_TIMEOUT": 1}):
            caches = self.redis_alias(**options)
            with override_settings(CACHES=caches, SESSIONPLUS_REDIS_ALIAS="sessions"):
                messages = check_redis_engine()
            assert ids(messages) == ["sessionplus.W030"], options
            assert "SOCKET_" in messages[0].msg

    def test_an_alias_with_both_timeouts_passes(self):
        caches = self.redis_alias(SOCKET_TIMEOUT=0.5, SOCKET_CONNECT_TIMEOUT=0.5)
        with override_settings(CACHES=caches, SESSIONPLUS_REDIS_ALIAS="sessions"):
            assert check_redis_engine() == []

    @override_settings(SESSION_ENGINE="sessionplus.backends.db", SESSIONPLUS_REDIS_ALIAS="x")
    def test_redis_checks_only_run_for_the_redis_engine(self):
        assert check_redis_engine() == []

    @override_settings(SESSIONPLUS_REDIS_ALIAS="missing")
    def test_manage_py_check_runs_the_redis_checks(self):
        with pytest.raises(SystemCheckError, match=r"sessionplus\.E030"):
            call_command("check", stdout=StringIO(), stderr=StringIO())


SECURE_HOST_COOKIE = {
    "SESSION_COOKIE_NAME": "__Host-session",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_PATH": "/",
    "SESSION_COOKIE_DOMAIN": None,
}
APPS_WITHOUT_DJANGO_SESSIONS = [
    app for app in settings.INSTALLED_APPS if app != "django.contrib.sessions"
]


@override_settings(SESSION_ENGINE="tests.support.memory_engine")
class SessionCookieCheckTests(SimpleTestCase):
    def test_defaults_pass(self):
        assert check_session_cookie() == []

    def test_e040_host_prefix_needs_secure_root_path_and_no_domain(self):
        with self.settings(**SECURE_HOST_COOKIE):
            assert check_session_cookie() == []
        for broken in (
            {"SESSION_COOKIE_SECURE": False},
            {"SESSION_COOKIE_PATH": "/app/"},
            {"SESSION_COOKIE_DOMAIN": ".example.com"},
            {"SESSION_COOKIE_NAME": "__HOST-session", "SESSION_COOKIE_SECURE": False},
        ):
            with self.settings(**{**SECURE_HOST_COOKIE, **broken}):
                assert ids(check_session_cookie()) == ["sessionplus.E040"], broken

    def test_e041_secure_prefix_needs_secure(self):
        with self.settings(SESSION_COOKIE_NAME="__Secure-session"):
            assert ids(check_session_cookie()) == ["sessionplus.E041"]
        with self.settings(SESSION_COOKIE_NAME="__Secure-session", SESSION_COOKIE_SECURE=True):
            assert check_session_cookie() == []

    def test_e042_partitioned_needs_secure(self):
        with self.settings(SESSIONPLUS_COOKIE_PARTITIONED=True):
            assert ids(check_session_cookie()) == ["sessionplus.E042"]
        with self.settings(SESSIONPLUS_COOKIE_PARTITIONED=True, SESSION_COOKIE_SECURE=True):
            assert check_session_cookie() == []

    def test_w042_touch_interval_not_shorter_than_the_idle_timeout(self):
        for touch in (600, 900):
            with self.settings(SESSIONPLUS_IDLE_TIMEOUT=600, SESSIONPLUS_TOUCH_INTERVAL=touch):
                assert ids(check_session_cookie()) == ["sessionplus.W042"]
        with self.settings(SESSIONPLUS_IDLE_TIMEOUT=600, SESSIONPLUS_TOUCH_INTERVAL=60):
            assert check_session_cookie() == []

    @override_settings(SESSION_ENGINE="django.contrib.sessions.backends.db")
    def test_w043_engine_features_without_a_sessionplus_engine(self):
        assert check_session_cookie() == []
        with self.settings(SESSIONPLUS_IDLE_TIMEOUT=600, SESSIONPLUS_BIND=("user_agent",)):
            [warning] = check_session_cookie()
        assert warning.id == "sessionplus.W043"
        assert "SESSIONPLUS_IDLE_TIMEOUT, SESSIONPLUS_BIND have no effect" in warning.msg

    def test_w043_not_raised_for_sessionplus_engines(self):
        with self.settings(SESSIONPLUS_IDLE_TIMEOUT=600):
            assert check_session_cookie() == []

    @override_settings(SESSION_ENGINE="sessionplus.backends.signed_cookies")
    def test_w044_binding_with_signed_cookies(self):
        with self.settings(SESSIONPLUS_IDLE_TIMEOUT=600):
            assert check_session_cookie() == []
        with self.settings(SESSIONPLUS_BIND=("ip_network",)):
            assert ids(check_session_cookie()) == ["sessionplus.W044"]

    @override_settings(SESSION_ENGINE="no.such.engine", SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_a_broken_engine_is_left_to_django(self):
        assert check_session_cookie() == []

    @override_settings(SESSION_COOKIE_NAME="__Host-session")
    def test_registered(self):
        with pytest.raises(SystemCheckError, match=r"sessionplus\.E040"):
            call_command("check", stdout=StringIO(), stderr=StringIO())


@override_settings(
    INSTALLED_APPS=APPS_WITHOUT_DJANGO_SESSIONS,
    MIDDLEWARE=[PLUS_MW],
    SESSION_COOKIE_SECURE=True,
    SESSION_COOKIE_HTTPONLY=True,
)
class SessionCookieSecurityCheckTests(TestCase):  # check --deploy reads applied migrations (E051)
    def test_secure_settings_pass(self):
        assert check_session_cookie_security() == []

    def test_w040_cookie_not_secure(self):
        with self.settings(SESSION_COOKIE_SECURE=False):
            assert ids(check_session_cookie_security()) == ["sessionplus.W040"]

    def test_w041_cookie_readable_by_scripts(self):
        with self.settings(SESSION_COOKIE_HTTPONLY=False):
            assert ids(check_session_cookie_security()) == ["sessionplus.W041"]

    @override_settings(SESSION_COOKIE_SECURE=False, SESSION_COOKIE_HTTPONLY=False)
    def test_left_to_djangos_own_checks_where_they_run(self):
        with self.settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "django.contrib.sessions"]):
            assert check_session_cookie_security() == []
        with self.settings(MIDDLEWARE=[DJANGO_MW]):
            assert check_session_cookie_security() == []

    @override_settings(SESSION_COOKIE_SECURE=False)
    def test_registered_as_a_deploy_check(self):
        plain, deploy = StringIO(), StringIO()
        # Security-tagged checks only: the admin's would fail on this class's bare MIDDLEWARE.
        call_command("check", tags=["security"], stdout=StringIO(), stderr=plain)
        call_command("check", tags=["security"], deploy=True, stdout=StringIO(), stderr=deploy)
        assert "sessionplus.W040" not in plain.getvalue()
        assert "sessionplus.W040" in deploy.getvalue()


AUTH_MW = "django.contrib.auth.middleware.AuthenticationMiddleware"
CACHED_DB_ENGINE = "sessionplus.backends.cached_db"
DUMMY_CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}


class SetupCheckTests(SimpleTestCase):
    def test_the_test_settings_pass(self):
        assert check_setup() == []

    @override_settings(MIDDLEWARE=[AUTH_MW, PLUS_MW])
    def test_e052_sessionplus_middleware_after_authentication_middleware(self):
        [message] = check_setup()
        assert message.id == "sessionplus.E052"
        assert message.hint == f"Move {PLUS_MW!r} above it in MIDDLEWARE."

    @override_settings(
        MIDDLEWARE=[DJANGO_MW, AUTH_MW],
        SESSIONPLUS_IDLE_TIMEOUT=600,
        SESSIONPLUS_BIND=["user_agent"],
    )
    def test_w052_timeouts_and_binding_with_djangos_middleware(self):
        [message] = check_setup()
        assert message.id == "sessionplus.W052"
        assert message.msg.startswith("SESSIONPLUS_IDLE_TIMEOUT, SESSIONPLUS_BIND have no effect")

    @override_settings(MIDDLEWARE=[DJANGO_MW, AUTH_MW], SESSIONPLUS_TOUCH_INTERVAL=60)
    def test_w052_names_a_single_setting_in_the_singular(self):
        [message] = check_setup()
        assert message.msg.startswith("SESSIONPLUS_TOUCH_INTERVAL has no effect with Django's")

    @override_settings(MIDDLEWARE=[DJANGO_MW, AUTH_MW])
    def test_w052_not_raised_when_no_such_setting_is_on(self):
        assert check_setup() == []

    @override_settings(SESSION_ENGINE=CACHED_DB_ENGINE)
    def test_w050_cached_db_on_a_locmem_cache(self):
        [message] = check_setup()
        assert message.id == "sessionplus.W050"
        assert "django.core.cache.backends.redis.RedisCache" in message.hint

    @override_settings(SESSION_ENGINE=CACHED_DB_ENGINE, CACHES=DUMMY_CACHES)
    def test_w051_cached_db_on_a_dummy_cache(self):
        assert ids(check_setup()) == ["sessionplus.W051"]

    @override_settings(SESSION_ENGINE=CACHED_DB_ENGINE, SESSION_CACHE_ALIAS="redis")
    def test_cached_db_on_a_shared_cache_passes(self):
        assert check_setup() == []

    @override_settings(SESSIONPLUS_IDLE_TIMOUT=600)
    def test_w053_unknown_setting_suggests_the_closest_name(self):
        [message] = check_setup()
        assert message.id == "sessionplus.W053"
        assert (
            message.msg
            == "SESSIONPLUS_IDLE_TIMOUT is not a sessionplus setting, so nothing reads it."
        )
        assert message.hint == "Did you mean SESSIONPLUS_IDLE_TIMEOUT?"

    @override_settings(SESSIONPLUS_FROBNICATE=True)
    def test_w053_unknown_setting_without_a_close_name_points_at_the_readme(self):
        [message] = check_setup()
        assert message.hint == "See docs/settings.md for the names sessionplus reads."

    @override_settings(MIDDLEWARE=[AUTH_MW, PLUS_MW], SESSIONPLUS_BINDING=["user_agent"])
    def test_manage_py_check_runs_the_setup_checks(self):
        with pytest.raises(SystemCheckError) as raised:
            call_command("check", stdout=StringIO(), stderr=StringIO())
        assert "(sessionplus.E052)" in str(raised.value)
        assert "(sessionplus.W053)" in str(raised.value)


class DeploymentCheckTests(TestCase):
    def test_the_test_settings_pass(self):
        assert check_shared_cache() == []
        assert check_migrations_applied() == []

    def test_e050_a_per_process_cache_under_cache_or_cached_db(self):
        for engine, caches in (
            (CACHED_DB_ENGINE, settings.CACHES),
            (CACHE_ENGINE, settings.CACHES),
            (CACHED_DB_ENGINE, DUMMY_CACHES),
        ):
            with self.subTest(engine=engine), self.settings(SESSION_ENGINE=engine, CACHES=caches):
                assert ids(check_shared_cache()) == ["sessionplus.E050"]

    @override_settings(SESSION_ENGINE=CACHE_ENGINE, CACHES=DUMMY_CACHES)
    def test_e050_leaves_the_cache_engine_on_a_dummy_cache_to_e023(self):
        assert check_shared_cache() == []

    @override_settings(SESSION_ENGINE=CACHED_DB_ENGINE, SESSION_CACHE_ALIAS="redis")
    def test_a_shared_cache_passes(self):
        assert check_shared_cache() == []

    def test_e051_sessionplus_migrations_not_applied(self):
        MigrationRecorder(connection).record_unapplied("sessionplus", "0001_initial")
        [message] = check_migrations_applied()
        assert message.id == "sessionplus.E051"
        assert message.msg == (
            "The 'sessionplus' migrations are not all applied on database 'default' "
            "(missing 0001_initial): every session would fail with a missing table."
        )
        assert message.hint == "Run 'python manage.py migrate sessionplus --database default'."

    @override_settings(SESSION_ENGINE="tests.custom_session.models")
    def test_e051_checks_the_app_of_the_engines_own_model(self):
        assert check_migrations_applied() == []
        MigrationRecorder(connection).record_unapplied("custom_session", "0001_initial")
        assert "'custom_session' migrations" in check_migrations_applied()[0].msg

    def test_e051_only_for_the_database_engines(self):
        MigrationRecorder(connection).record_unapplied("sessionplus", "0001_initial")
        for engine in (REDIS_ENGINE, "no.such.engine", "sessionplus.conf"):
            with self.subTest(engine=engine), self.settings(SESSION_ENGINE=engine):
                assert check_migrations_applied() == []

    def test_e051_skipped_when_the_database_cannot_be_reached(self):
        # An unreachable database cannot be produced for the alias this suite runs on, so
        # the recorder's read fails the way it does when the server is down.
        down = OperationalError("connection refused")
        with mock.patch.object(MigrationRecorder, "applied_migrations", side_effect=down):
            assert check_migrations_applied() == []

    @override_settings(SESSION_ENGINE=CACHED_DB_ENGINE)
    def test_registered_as_a_deploy_check_and_w050_as_a_plain_one(self):
        plain = StringIO()
        call_command("check", stdout=StringIO(), stderr=plain)
        assert "(sessionplus.W050)" in plain.getvalue()
        assert "(sessionplus.E050)" not in plain.getvalue()
        # Without --database: from Django 6.1 that leaves database-tagged checks out, and
        # E050 reads settings only.
        with pytest.raises(SystemCheckError, match=r"\(sessionplus\.E050\)"):
            call_command("check", deploy=True, stdout=StringIO(), stderr=StringIO())

    def test_e051_registered_as_a_deploy_database_check(self):
        MigrationRecorder(connection).record_unapplied("sessionplus", "0001_initial")
        call_command("check", stdout=StringIO(), stderr=StringIO())
        with pytest.raises(SystemCheckError, match=r"\(sessionplus\.E051\)"):
            call_command(
                "check", deploy=True, databases=["default"], stdout=StringIO(), stderr=StringIO()
            )


def documented_production_settings() -> dict[str, object]:
    page = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    section = page.split("## Recommended production settings", 1)[1]
    namespace: dict[str, object] = {}
    exec(section.split("```python\n", 1)[1].split("```", 1)[0], namespace)
    return {name: value for name, value in namespace.items() if name.isupper()}


class DocumentedProductionSettingsTests(SimpleTestCase):
    def test_the_recommended_block_passes_every_sessionplus_check_under_deploy(self):
        with override_settings(**documented_production_settings()):
            messages = run_checks(include_deployment_checks=True)
        assert [m for m in messages if m.id.startswith("sessionplus.")] == []

    def test_the_recommended_block_trusts_no_proxy(self):
        # Copied onto a server without a proxy, a trusted X-Forwarded-For is the client's own.
        assert "SESSIONPLUS_TRUSTED_PROXIES" not in documented_production_settings()


@override_settings(
    ROOT_URLCONF="tests.urls_middleware",
    MIDDLEWARE=[DJANGO_MW],
    SESSION_ENGINE="sessionplus.backends.db",
)
class CheckPremiseTests(TestCase):
    """What W052 and E052 warn about, through real requests."""

    def read_after_idling(self) -> bytes:
        with freeze_time() as frozen:
            self.client.get("/write/", {"value": "kept"})
            frozen.tick(601)
            return self.client.get("/read/").content

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600)
    def test_djangos_middleware_serves_a_session_idle_past_the_timeout(self):
        assert self.read_after_idling() == b"kept"

    @override_settings(SESSIONPLUS_IDLE_TIMEOUT=600, MIDDLEWARE=[PLUS_MW])
    def test_sessionplus_middleware_ends_it(self):
        assert self.read_after_idling() == b"-"

    @override_settings(MIDDLEWARE=[AUTH_MW, PLUS_MW])
    def test_sessionplus_middleware_after_authentication_middleware_fails_every_request(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "requires session middleware"):
            self.client.get("/read/")


class PreviousEngineCheckTests(SimpleTestCase):
    def test_no_previous_engine_passes(self):
        assert check_previous_engine() == []

    @override_settings(SESSIONPLUS_PREVIOUS_ENGINE="django.contrib.sessions.backends.db")
    def test_another_engine_that_imports_passes(self):
        assert check_previous_engine() == []

    @override_settings(SESSIONPLUS_PREVIOUS_ENGINE="sessionplus.backends.db")
    def test_w060_the_previous_engine_is_the_current_one(self):
        assert ids(check_previous_engine()) == ["sessionplus.W060"]

    @override_settings(SESSIONPLUS_PREVIOUS_ENGINE="django.contrib.sessions.backends.nosuch")
    def test_w061_the_previous_engine_cannot_be_imported(self):
        [warning] = check_previous_engine()
        assert warning.id == "sessionplus.W061"
        assert "'django.contrib.sessions.backends.nosuch' cannot be imported" in warning.msg

    @override_settings(SESSIONPLUS_PREVIOUS_ENGINE="tests")
    def test_w061_a_module_without_a_session_store(self):
        assert ids(check_previous_engine()) == ["sessionplus.W061"]

    @override_settings(SESSIONPLUS_PREVIOUS_ENGINE="sessionplus.backends.db")
    def test_registered(self):
        err = StringIO()
        call_command("check", stdout=StringIO(), stderr=err)
        assert "sessionplus.W060" in err.getvalue()


class UserSessionsCheckTests(SimpleTestCase):
    def test_default_settings_pass(self):
        assert check_user_sessions() == []

    @override_settings(SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE="yes")
    def test_e070_password_change_setting_not_a_bool(self):
        assert ids(check_user_sessions()) == ["sessionplus.E070"]

    def test_e071_cap_not_a_positive_integer(self):
        for bad in (0, -1, "2", 1.5, True):
            with self.settings(SESSIONPLUS_MAX_SESSIONS_PER_USER=bad):
                assert ids(check_user_sessions()) == ["sessionplus.E071"]

    @override_settings(SESSIONPLUS_MAX_SESSIONS_POLICY="oldest")
    def test_e072_unknown_cap_policy(self):
        assert ids(check_user_sessions()) == ["sessionplus.E072"]

    @override_settings(SESSION_ENGINE=CACHE_ENGINE, SESSIONPLUS_MAX_SESSIONS_PER_USER=3)
    def test_w070_names_the_settings_that_cannot_work(self):
        (message,) = check_user_sessions()
        assert message.msg.startswith("SESSIONPLUS_MAX_SESSIONS_PER_USER cannot work")

    @override_settings(SESSION_ENGINE=CACHE_ENGINE, ROOT_URLCONF="tests.urls_sessions")
    def test_w070_pages_installed_with_an_engine_that_cannot_list_sessions(self):
        (message,) = check_user_sessions()
        assert message.id == "sessionplus.W070"
        assert message.msg.startswith("sessionplus.urls cannot work with SESSION_ENGINE")

    def test_engines_with_a_user_index_pass(self):
        for engine in ("db", "cached_db", "redis"):
            with self.settings(
                SESSION_ENGINE=f"sessionplus.backends.{engine}",
                ROOT_URLCONF="tests.urls_sessions",
                SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE=True,
                SESSIONPLUS_MAX_SESSIONS_PER_USER=2,
                SESSIONPLUS_MAX_SESSIONS_POLICY="refuse",
            ):
                assert check_user_sessions() == []

    @override_settings(SESSION_ENGINE="no.such.engine", ROOT_URLCONF="tests.urls_sessions")
    def test_a_broken_engine_is_left_to_django(self):
        assert check_user_sessions() == []

    @override_settings(SESSION_ENGINE=FILE_ENGINE, ROOT_URLCONF="tests.urls_sessions")
    def test_registered_with_manage_py_check(self):
        err = StringIO()
        call_command("check", stdout=StringIO(), stderr=err)
        assert "sessionplus.W070" in err.getvalue()
