from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.test import SimpleTestCase, override_settings

from sessionplus.conf import DEFAULTS, DJANGO_SETTINGS, Settings, conf


class ConfTests(SimpleTestCase):
    def test_defaults_when_nothing_is_set(self):
        assert conf.SESSIONPLUS_IDLE_TIMEOUT is None
        assert conf.SESSIONPLUS_ABSOLUTE_TIMEOUT is None
        assert conf.SESSIONPLUS_TOUCH_INTERVAL is None
        assert conf.SESSIONPLUS_BIND == ()
        assert conf.SESSIONPLUS_TRUSTED_PROXIES == 0
        assert conf.SESSIONPLUS_REDIS_KEY_PREFIX == "sessionplus:"
        assert conf.SESSIONPLUS_COOKIE_CHECK_NAME == "sessionplus_cookiecheck"
        assert conf.SESSIONPLUS_COOKIE_PARTITIONED is False
        assert conf.SESSIONPLUS_MAX_SIZE == 256 * 1024
        assert conf.SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE is False
        assert conf.SESSIONPLUS_MAX_SESSIONS_PER_USER is None
        assert conf.SESSIONPLUS_MAX_SESSIONS_POLICY == "end_oldest"

    @override_settings(SESSIONPLUS_REDIS_ALIAS="default")
    def test_redis_alias_reads_the_overridden_value(self):
        assert conf.SESSIONPLUS_REDIS_ALIAS == "default"

    def test_every_setting_follows_override_settings(self):
        overrides = {
            "SESSIONPLUS_IDLE_TIMEOUT": 600,
            "SESSIONPLUS_ABSOLUTE_TIMEOUT": 3600,
            "SESSIONPLUS_TOUCH_INTERVAL": 60,
            "SESSIONPLUS_BIND": ["user_agent"],
            "SESSIONPLUS_TRUSTED_PROXIES": 2,
            "SESSIONPLUS_REDIS_ALIAS": "sessions",
            "SESSIONPLUS_REDIS_KEY_PREFIX": "s:",
            "SESSIONPLUS_COOKIE_CHECK_NAME": "cc",
            "SESSIONPLUS_COOKIE_PARTITIONED": True,
            "SESSIONPLUS_MAX_SIZE": 1024,
            "SESSIONPLUS_PREVIOUS_ENGINE": "django.contrib.sessions.backends.db",
            "SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE": True,
            "SESSIONPLUS_MAX_SESSIONS_PER_USER": 3,
            "SESSIONPLUS_MAX_SESSIONS_POLICY": "refuse",
            "SESSIONPLUS_PREVIOUS_COOKIE_NAME": "sessionid",
        }
        assert set(overrides) == set(DEFAULTS)
        before = {name: getattr(conf, name) for name in overrides}  # now cached
        with override_settings(**overrides):
            for name, value in overrides.items():
                expected = tuple(value) if name == "SESSIONPLUS_BIND" else value
                assert getattr(conf, name) == expected, name
        assert {name: getattr(conf, name) for name in overrides} == before

    def test_a_value_is_cached_after_the_first_read_until_the_setting_changes(self):
        with override_settings(SESSIONPLUS_IDLE_TIMEOUT=600):
            assert "SESSIONPLUS_IDLE_TIMEOUT" not in conf.__dict__
            assert conf.SESSIONPLUS_IDLE_TIMEOUT == 600
            assert conf.__dict__["SESSIONPLUS_IDLE_TIMEOUT"] == 600
        assert "SESSIONPLUS_IDLE_TIMEOUT" not in conf.__dict__

    def test_a_change_to_another_setting_keeps_the_cached_values(self):
        assert conf.SESSIONPLUS_MAX_SIZE == 256 * 1024
        with override_settings(SESSION_COOKIE_AGE=60):
            assert "SESSIONPLUS_MAX_SIZE" in conf.__dict__

    @override_settings(
        SESSIONPLUS_IDLE_TIMEOUT=timedelta(minutes=30),
        SESSIONPLUS_ABSOLUTE_TIMEOUT=timedelta(hours=8),
        SESSIONPLUS_TOUCH_INTERVAL=timedelta(seconds=90, milliseconds=500),
    )
    def test_a_timedelta_is_read_as_whole_seconds(self):
        assert conf.SESSIONPLUS_IDLE_TIMEOUT == 1800
        assert conf.SESSIONPLUS_ABSOLUTE_TIMEOUT == 8 * 3600
        assert conf.SESSIONPLUS_TOUCH_INTERVAL == 90

    @override_settings(SESSIONPLUS_BIND="user_agent")
    def test_a_bind_value_that_is_not_a_list_is_left_for_the_check_to_report(self):
        assert conf.SESSIONPLUS_BIND == "user_agent"

    def test_reading_a_name_that_is_not_a_setting_raises_attribute_error(self):
        with self.assertRaisesMessage(AttributeError, "'SESSIONPLUS_IDLE' is not a setting"):
            conf.SESSIONPLUS_IDLE  # noqa: B018
        with self.assertRaisesMessage(AttributeError, "'SESSION_ENGINE' is not a setting"):
            conf.SESSION_ENGINE  # noqa: B018

    def test_every_setting_has_a_typed_attribute(self):
        assert set(Settings.__annotations__) == set(DEFAULTS) | DJANGO_SETTINGS

    def test_djangos_session_settings_are_served_as_django_has_them_and_follow_overrides(self):
        for name in DJANGO_SETTINGS:
            assert getattr(conf, name) == getattr(settings, name), name
        overrides = {
            "SESSION_CACHE_ALIAS": "sessions",
            "SESSION_COOKIE_AGE": 60,
            "SESSION_COOKIE_DOMAIN": ".example.com",
            "SESSION_COOKIE_HTTPONLY": False,
            "SESSION_COOKIE_NAME": "sid",
            "SESSION_COOKIE_PATH": "/app/",
            "SESSION_COOKIE_SAMESITE": "Strict",
            "SESSION_COOKIE_SECURE": True,
            "SESSION_SAVE_EVERY_REQUEST": True,
            "SESSION_SERIALIZER": "tests.serializers.Other",
            "USE_TZ": not settings.USE_TZ,
        }
        assert set(overrides) == DJANGO_SETTINGS
        before = {name: getattr(conf, name) for name in overrides}  # now cached
        with override_settings(**overrides):
            for name, value in overrides.items():
                assert getattr(conf, name) == value, name
        assert {name: getattr(conf, name) for name in overrides} == before
