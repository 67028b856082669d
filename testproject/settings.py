"""
Settings of the sessionplus demo site (the test suite has its own, tests/settings.py).

SQLite, no server needed. Pick the session engine with the environment variable
SESSIONPLUS_DEMO_ENGINE: db (default), cache, cached_db, file, signed_cookies, or redis
(which needs REDIS_URL). With REDIS_URL set, the cache is that Redis server; without, it is
in process memory.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# A local demo only: never deploy these settings.
SECRET_KEY = "sessionplus-demo-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "testproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "sessionplus",
    "testproject.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "sessionplus.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# A login POST from a browser that refuses cookies gets "cookies required", not a CSRF error.
CSRF_FAILURE_VIEW = "sessionplus.testcookie.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "testproject" / "templates"],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SESSIONPLUS_DEMO_DB", BASE_DIR / "demo.sqlite3"),
    }
}

DEMO_ENGINES = ("db", "cache", "cached_db", "file", "signed_cookies", "redis")
DEMO_ENGINE = os.environ.get("SESSIONPLUS_DEMO_ENGINE", "db")
if DEMO_ENGINE not in DEMO_ENGINES:
    raise ImproperlyConfigured(
        f"SESSIONPLUS_DEMO_ENGINE should be one of {', '.join(DEMO_ENGINES)}, not {DEMO_ENGINE!r}."
    )
SESSION_ENGINE = f"sessionplus.backends.{DEMO_ENGINE}"

REDIS_URL = os.environ.get("REDIS_URL")
if DEMO_ENGINE == "redis" and not REDIS_URL:
    raise ImproperlyConfigured("SESSIONPLUS_DEMO_ENGINE=redis needs REDIS_URL.")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# One runserver process: a per-process cache is all the demo needs.
SILENCED_SYSTEM_CHECKS = ["sessionplus.W020", "sessionplus.W050"]

SESSION_FILE_PATH = str(BASE_DIR / ".demo-sessions")
if DEMO_ENGINE == "file":
    os.makedirs(SESSION_FILE_PATH, exist_ok=True)
