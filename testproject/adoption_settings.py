"""
The demo site before and after adopting sessionplus (the adoption browser test serves both).

ADOPTION_STAGE=stock: Django's own session middleware and db engine, as a site has them before.
ADOPTION_STAGE=switched: sessionplus's, reading through to Django's engine.
"""

import os

from testproject.settings import *  # noqa: F403
from testproject.settings import INSTALLED_APPS, MIDDLEWARE

INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.sessions"]
if os.environ.get("ADOPTION_STAGE") == "stock":
    MIDDLEWARE = [
        name.replace("sessionplus.middleware", "django.contrib.sessions.middleware")
        for name in MIDDLEWARE
    ]
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
else:
    SESSION_ENGINE = "sessionplus.backends.db"
    SESSIONPLUS_PREVIOUS_ENGINE = "django.contrib.sessions.backends.db"
