from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class SessionPlusConfig(AppConfig):
    name = "sessionplus"
    label = "sessionplus"
    verbose_name = "Sessions (sessionplus)"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from sessionplus import checks as sessionplus_checks

        checks.register(sessionplus_checks.check_middleware)
        checks.register(sessionplus_checks.check_settings)
        checks.register(sessionplus_checks.check_file_and_cache_engines)
        checks.register(sessionplus_checks.check_redis_engine)
        checks.register(sessionplus_checks.check_session_cookie)
        checks.register(sessionplus_checks.check_previous_engine)
        checks.register(sessionplus_checks.check_user_sessions)
        checks.register(
            sessionplus_checks.check_session_cookie_security, checks.Tags.security, deploy=True
        )
        checks.register(sessionplus_checks.check_setup)
        checks.register(sessionplus_checks.check_shared_cache, checks.Tags.caches, deploy=True)
        # Reads the database: Django runs database-tagged checks only for the databases
        # named (--database) from 6.1, and always before.
        checks.register(
            sessionplus_checks.check_migrations_applied, checks.Tags.database, deploy=True
        )

        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_save

        from sessionplus import receivers

        # Registers the lookup of SESSIONPLUS_PREVIOUS_ENGINE in the engines' load frame.
        from sessionplus.backends import adoption  # noqa: F401

        # Both return at once while their setting is off.
        post_save.connect(
            receivers.end_sessions_on_password_change,
            sender=get_user_model(),
            dispatch_uid="sessionplus.end_sessions_on_password_change",
        )
        user_logged_in.connect(
            receivers.cap_sessions_at_login, dispatch_uid="sessionplus.cap_sessions_at_login"
        )
