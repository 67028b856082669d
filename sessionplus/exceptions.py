from __future__ import annotations

from django.core.exceptions import PermissionDenied


class SessionStoreUnavailable(Exception):
    """
    The session store could not be reached.

    Raise it ``from`` the client's own error so the cause travels with it; the
    middleware turns it into an HTTP 503 and leaves the session cookie alone.
    """


class SessionTooLarge(ValueError):
    """
    The session data is larger or more deeply nested than sessionplus stores.

    Raised before anything is written, so the stored session stays as it was. The limits
    are ``SESSIONPLUS_MAX_SIZE`` (serialized bytes) and a fixed nesting depth.
    """


class SessionsNotEnumerable(Exception):
    """
    The session engine cannot list or end the sessions of a user.

    Only engines that keep a per-user index can: ``sessionplus.backends.db``,
    ``cached_db`` and ``redis``. Raised by ``sessionplus.sessions`` and its pages.
    """


class TooManySessions(PermissionDenied):
    """
    A login refused: the user has ``SESSIONPLUS_MAX_SESSIONS_PER_USER`` sessions already.

    Raised from the login (``user_logged_in``) once the new session is ended, under
    ``SESSIONPLUS_MAX_SESSIONS_POLICY = "refuse"``. Django answers 403 and gives the
    message to the project's ``403.html`` as ``exception``.
    """
