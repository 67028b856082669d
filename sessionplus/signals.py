from __future__ import annotations

from django.dispatch import Signal

# Sent with session_key and request once a new session has been written for the first time.
session_created = Signal()

# Sent with session_key, reason and request when a session ends. reason is one of "logout"
# (flush()), "idle" and "absolute" (timeouts), "hijack" (SESSIONPLUS_BIND), "revoked" when
# ended through sessionplus.sessions (by the user, from another of their sessions, by staff
# or a password change), and "evicted" when a login went over SESSIONPLUS_MAX_SESSIONS_PER_USER.
session_ended = Signal()
