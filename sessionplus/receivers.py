"""
What sessionplus does as a user logs in or changes password (connected in ``apps.ready()``).

- ``SESSIONPLUS_MAX_SESSIONS_PER_USER``: at login the new session is written to the user's
  index first and the user's sessions are counted after. Of logins racing each other, the
  one that counts last sees every other: the user never ends up above the cap, on any
  engine, without locks.
- ``SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE``: a saved password change ends every
  session of the user in the store. ``update_session_auth_hash()``, which Django's views
  call next, moves the changing request's session to a new key: that one stays signed in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest

from sessionplus.backends.base import SessionPlusBase, UpdateError
from sessionplus.client import client_ip, user_agent
from sessionplus.conf import conf
from sessionplus.exceptions import SessionsNotEnumerable, TooManySessions
from sessionplus.sessions import end_all_sessions, end_keys, enumerable_engine, newest_first


def end_sessions_on_password_change(
    sender: type, instance: Any, created: bool, **kwargs: Any
) -> None:
    """End every session of a user whose new password (``set_password()``) was just saved."""
    # AbstractBaseUser.save() sends post_save before it forgets the raw password it has
    # held since set_password(): the one sign, on every path (views, admin,
    # changepassword, a shell), that this save changed the password.
    if created or getattr(instance, "_password", None) is None:
        return
    if not conf.SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE:
        return
    try:
        end_all_sessions(instance)
    except SessionsNotEnumerable:  # check W070 says so; the password change must go on
        return


def cap_sessions_at_login(sender: type, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Keep the user within ``SESSIONPLUS_MAX_SESSIONS_PER_USER`` as they log in."""
    cap = conf.SESSIONPLUS_MAX_SESSIONS_PER_USER
    session = getattr(request, "session", None)
    if cap is None or not isinstance(session, SessionPlusBase):
        return
    try:
        engine = enumerable_engine()
    except SessionsNotEnumerable:  # check W070 says so
        return
    user_id = session[SESSION_KEY]
    # Indexed before counting (see the module docstring); the middleware's save at the
    # end of the request writes the same values again.
    session.update_metadata(user_id=user_id, ip=client_ip(request), user_agent=user_agent(request))
    try:
        session.save()
    except UpdateError:
        # A racing login of the same user counted this session and ended it: this login
        # lost, and the middleware answers the request as Django does when a session
        # ends mid-request.
        return
    found = engine.user_session_metadata(user_id)
    if conf.SESSIONPLUS_MAX_SESSIONS_POLICY == "refuse":
        others = len(found.keys() - {session.session_key})
        if others >= cap:
            logout(request)
            raise TooManySessions(
                f"You are signed in on {others} devices, the most allowed is {cap}. Sign out "
                "on one of them, then sign in here again."
            )
        return
    # Every racing login orders the sessions by creation, which no save changes, and keeps
    # the newest, so they agree on which to end. (Last activity moves as racing requests
    # save: logins ordering by it could disagree and end every session between them.)
    end_keys(engine, newest_first(found, by="created_at")[cap:], "evicted", request)
