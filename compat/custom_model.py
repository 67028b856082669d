"""
The engine of Django's ``CustomDatabaseSessionTests``, on sessionplus's db engine.

Django's ``sessions_tests.models.SessionStore`` is its db engine with a project model and a
one-day cookie age; sessionplus's own project-model engine (``tests.custom_session``) plus
that cookie age is the same thing on sessionplus.
"""

from __future__ import annotations

from tests.custom_session.models import SessionStore as ProjectModelStore


class SessionStore(ProjectModelStore):
    def get_session_cookie_age(self) -> int:
        return 60 * 60 * 24  # what Django's test engine returns, and its tests expect
