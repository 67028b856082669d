from __future__ import annotations

from django.apps import apps
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from sessionplus.backends.metadata import USER_AGENT_MAX_LENGTH
from sessionplus.identifiers import PUBLIC_ID_LENGTH

# The engines import this module at the first request. Without the app, Django's own error
# is about the model's app_label, and no system check of ours runs to say what is missing.
if not apps.is_installed("sessionplus"):
    raise ImproperlyConfigured(
        "The sessionplus db and cached_db engines keep sessions in the sessionplus.Session "
        "model: add 'sessionplus' to INSTALLED_APPS and run 'python manage.py migrate'."
    )


class Session(AbstractBaseSession):
    """A session row for the db and cached_db engines, with its metadata in columns."""

    # NULL, not "", means "anonymous" so the per-user index skips those rows.
    user_id = models.CharField(max_length=255, null=True, blank=True, db_index=True)  # noqa: DJ001
    ip = models.GenericIPAddressField(null=True, blank=True)
    # db_default: a row inserted by plain SQL with only Django's three columns (a session
    # moved in from django_session) is valid, with no user agent recorded.
    user_agent = models.CharField(
        max_length=USER_AGENT_MAX_LENGTH, blank=True, default="", db_default=""
    )
    created_at = models.DateTimeField(null=True, blank=True)
    last_activity = models.DateTimeField(null=True, blank=True)
    # public_id(session_key), written by the engines: the admin finds a row by the name it
    # shows through this index, never by the key. NULL only on a row written by other code.
    public_id = models.CharField(  # noqa: DJ001
        max_length=PUBLIC_ID_LENGTH, null=True, blank=True, editable=False, db_index=True
    )

    # django-stubs leaves out the Meta an abstract model keeps for its subclasses (Django's own
    # Session model inherits it the same way).
    class Meta(AbstractBaseSession.Meta):  # type: ignore[name-defined,misc]
        db_table = "sessionplus_session"

    @classmethod
    def get_session_store_class(cls) -> type[SessionBase]:
        from sessionplus.backends.db import SessionStore

        return SessionStore
