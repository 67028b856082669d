"""
Settings for mypy's Django plugin (django-stubs), which imports them to learn the installed apps and
models. tests/settings.py starts private Redis and memcached servers on import: a type check needs
neither.
"""

SECRET_KEY = "sessionplus-typecheck-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "sessionplus",
]
