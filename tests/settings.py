"""Settings for sessionplus's own test suite (the demo site has its own)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import dj_database_url

from tests.support.services import private_memcached, redis_url

SECRET_KEY = "sessionplus-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DATABASES = {
    "default": dj_database_url.parse(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
}
if os.environ.get("DATABASE_URL"):
    # One test database per run, so parallel runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_sessionplus_{os.getpid()}"}
# A replica no test may query: a router that sends reads here proves that session
# reads go to the database the router names for writes.
DATABASES["replica"] = dict(DATABASES["default"])

INSTALLED_APPS = [
    "django.contrib.admin",  # its tables: the sessionplus admin's history page reads them
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sessionplus",
    "tests",
    "tests.custom_session",  # a project's own session model, as Django documents
]

MIDDLEWARE = [
    "sessionplus.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Short socket timeouts keep fault tests (dead ports, silent listeners) quick.
REDIS_OPTIONS = {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1}

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": redis_url(),
        "KEY_PREFIX": "tests",
        "OPTIONS": REDIS_OPTIONS,
    },
    # Django's own Redis backend, on the same server (the cache engine supports both).
    "redis_builtin": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url(),
        "KEY_PREFIX": "tests-builtin",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    },
    "memcached": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": private_memcached().location,
        "OPTIONS": {"connect_timeout": 1, "timeout": 1},
    },
}

SESSION_ENGINE = "sessionplus.backends.db"
SESSION_FILE_PATH = tempfile.mkdtemp(prefix="sessionplus-tests-sessions-")
atexit.register(shutil.rmtree, SESSION_FILE_PATH, ignore_errors=True)
SESSIONPLUS_REDIS_ALIAS = "redis"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# PYTHONDEVMODE (tox) turns on asyncio's debug mode, which logs a WARNING for every event-loop
# step slower than 0.1 s: on a loaded machine that noise reaches the tests that assert which
# warnings a request logged. asyncio's errors still show.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"asyncio": {"level": "ERROR"}},
}
