"""
Settings for running Django's session tests against sessionplus (``python -m compat``).

Like Django's own test settings: ``USE_TZ = False`` (its ``*WithTimeZoneTests`` classes
turn it on) and Django's default TIME_ZONE. The runner then moves the process's local
time away from TIME_ZONE, so the naive clock is tested where the two disagree.
"""

from __future__ import annotations

from tests.settings import DATABASES, PASSWORD_HASHERS, REDIS_OPTIONS, SECRET_KEY
from tests.support.services import redis_url

__all__ = ["DATABASES", "PASSWORD_HASHERS", "SECRET_KEY"]

USE_TZ = False
TIME_ZONE = "America/Chicago"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",  # Django's test module imports its Session model
    "sessionplus",
    "sessions_tests",  # Django's test app: its own CustomSession model
    "tests.custom_session",  # sessionplus's project-model app
]

DJANGO_REDIS = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": redis_url(),
    "KEY_PREFIX": "compat",
    "OPTIONS": REDIS_OPTIONS,
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "redis": DJANGO_REDIS,
}
SESSIONPLUS_REDIS_ALIAS = "redis"
