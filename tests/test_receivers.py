"""Password change ends the other sessions; the per-user cap at login, sequential and racing."""

from __future__ import annotations

import threading
import unittest
from concurrent.futures import ThreadPoolExecutor

from django.contrib.auth.models import User, update_last_login
from django.contrib.auth.signals import user_logged_in
from django.db import connection
from django.http import HttpRequest
from django.test import Client, TestCase, TransactionTestCase, override_settings

from sessionplus.receivers import cap_sessions_at_login
from sessionplus.sessions import user_sessions
from tests.support.engines import ENGINES, engine_matrix
from tests.support.signed_in import PASSWORD, SignedInMixin
from tests.support.threads import close_thread_connections

NEW_PASSWORD = "a brand new passphrase 42"
CAP_UID = "sessionplus.cap_sessions_at_login"


def change_password(client: Client) -> None:
    response = client.post(
        "/password/",
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.content


class PasswordChangeContract(SignedInMixin):
    @override_settings(SESSIONPLUS_END_SESSIONS_ON_PASSWORD_CHANGE=True)
    def test_a_password_change_ends_every_other_session_at_once(self):
        here, *others = (self.signed_in(self.alice) for _ in range(3))
        bobs = self.signed_in(self.bob)
        old_keys = {self.key_of(c) for c in (here, *others)}
        change_password(here)
        assert self.who(here) == "alice"  # moved to a new key by update_session_auth_hash
        assert self.key_of(here) not in old_keys
        listed = user_sessions(self.alice)
        assert len(listed) == 1
        assert [self.who(c) for c in (*others, bobs)] == ["anonymous", "anonymous", "bob"]
        assert {(e["session_key"], e["reason"]) for e in self.ended} == {
            (key, "revoked") for key in old_keys
        }

    def test_by_default_the_other_sessions_stay_in_the_store(self):
        here = self.signed_in(self.alice)
        self.signed_in(self.alice)
        change_password(here)
        # Django signs the other out lazily (its password hash no longer matches) but leaves it
        # stored; sessionplus ends nothing unless asked to.
        assert len(user_sessions(self.alice)) == 2
        assert self.ended == []


engine_matrix(globals(), "PasswordChangeTests", (PasswordChangeContract, TestCase), ["db", "redis"])


class PasswordSaveTests(SignedInMixin, TestCase):
    def test_set_password_and_save_outside_a_request_ends_every_session(self):
        clients = [self.signed_in(self.alice) for _ in range(2)]
        self.alice.set_password(NEW_PASSWORD)
        self.alice.save()
        assert [self.who(c) for c in clients] == ["anonymous", "anonymous"]
        assert user_sessions(self.alice) == []

    def test_saves_that_do_not_change_the_password_end_nothing(self):
        client = self.signed_in(self.alice)
        self.alice.first_name = "Alice"
        self.alice.save()
        User.objects.create_user("carol", password=PASSWORD)
        assert self.who(client) == "alice"
        assert self.ended == []

    @override_settings(SESSION_ENGINE="sessionplus.backends.cache")
    def test_an_engine_that_cannot_list_sessions_still_lets_the_password_change(self):
        client = self.signed_in(self.alice)
        change_password(client)
        assert self.who(client) == "alice"
        assert User.objects.get(pk=self.alice.pk).check_password(NEW_PASSWORD)


class CapContract(SignedInMixin):
    @override_settings(SESSIONPLUS_MAX_SESSIONS_PER_USER=2)
    def test_a_login_over_the_cap_ends_the_least_recently_used_session(self):
        first, second = self.signed_in(self.alice), self.signed_in(self.alice)
        third = self.signed_in(self.alice)
        assert [self.who(c) for c in (first, second, third)] == ["anonymous", "alice", "alice"]
        assert [(e["session_key"], e["reason"]) for e in self.ended] == [
            (self.key_of(first), "evicted")
        ]
        assert len(user_sessions(self.alice)) == 2
        self.signed_in(self.bob)  # another user's sessions do not count
        assert (self.who(second), self.who(third)) == ("alice", "alice")

    @override_settings(
        SESSIONPLUS_MAX_SESSIONS_PER_USER=2, SESSIONPLUS_MAX_SESSIONS_POLICY="refuse"
    )
    def test_the_refuse_policy_turns_the_new_login_away_with_a_clear_message(self):
        first, second = self.signed_in(self.alice), self.signed_in(self.alice)
        third = Client()
        response = third.post("/login/", {"username": "alice", "password": PASSWORD})
        assert response.status_code == 403
        assert self.who(third) == "anonymous"
        assert [self.who(c) for c in (first, second)] == ["alice", "alice"]
        assert len(user_sessions(self.alice)) == 2
        assert [e["reason"] for e in self.ended] == ["logout"]


engine_matrix(globals(), "CapTests", (CapContract, TestCase), ["db", "cached_db", "redis"])


class CapEdgeTests(SignedInMixin, TestCase):
    @override_settings(SESSIONPLUS_MAX_SESSIONS_PER_USER=2)
    def test_a_login_whose_session_a_racing_login_ended_is_answered_as_interrupted(self):
        def racing_login_ends_it(request: HttpRequest, **kwargs: object) -> None:
            # What another login of the same user does when it counts this session and
            # ends it between Django's cycle_key() and the cap's own save.
            request.session.delete(request.session.session_key)

        # Receivers run in the order connected: put this one before the cap's.
        assert user_logged_in.disconnect(dispatch_uid=CAP_UID)
        user_logged_in.connect(racing_login_ends_it)
        user_logged_in.connect(cap_sessions_at_login, dispatch_uid=CAP_UID)
        self.addCleanup(user_logged_in.disconnect, racing_login_ends_it)
        client = Client()
        response = client.post("/login/", {"username": "alice", "password": PASSWORD})
        assert response.status_code == 400  # Django's SessionInterrupted
        assert self.who(client) == "anonymous"
        assert user_sessions(self.alice) == []

    def test_without_a_cap_logins_are_not_counted(self):
        clients = [self.signed_in(self.alice) for _ in range(5)]
        assert len(user_sessions(self.alice)) == len(clients)

    @override_settings(
        SESSIONPLUS_MAX_SESSIONS_PER_USER=1, SESSION_ENGINE="sessionplus.backends.signed_cookies"
    )
    def test_an_engine_that_cannot_list_sessions_leaves_logins_alone(self):
        assert self.who(self.signed_in(self.alice)) == "alice"
        assert self.who(self.signed_in(self.alice)) == "alice"


class RacingLoginsMixin(SignedInMixin):
    """Logins released together from a barrier, each thread on its own connections."""

    logins = 8
    cap = 2

    def setUp(self) -> None:
        super().setUp()
        # auth's receiver writes last_login: on SQLite those writes would lock each other
        # out; the race under test is the session store's, not the users table's.
        assert user_logged_in.disconnect(dispatch_uid="update_last_login")
        self.addCleanup(user_logged_in.connect, update_last_login, dispatch_uid="update_last_login")

    def race(self) -> list[Client]:
        barrier = threading.Barrier(self.logins)
        clients = [Client() for _ in range(self.logins)]

        def login(client: Client) -> int:
            try:
                barrier.wait()
                return client.post(
                    "/login/", {"username": "alice", "password": PASSWORD}
                ).status_code
            finally:
                close_thread_connections()

        with ThreadPoolExecutor(self.logins) as pool:
            # 200, or 400 for a login whose session a racing login ended before it was saved.
            assert set(pool.map(login, clients)) <= {200, 400}
        return clients

    def test_racing_logins_never_leave_more_sessions_than_the_cap(self):
        with override_settings(SESSIONPLUS_MAX_SESSIONS_PER_USER=self.cap):
            clients = self.race()
        live = len(user_sessions(self.alice))
        signed_in = [self.who(c) for c in clients].count("alice")
        assert 1 <= live <= self.cap
        assert signed_in == live
        # Two racing logins may both end the same session: count sessions, not signals.
        assert len({e["session_key"] for e in self.ended}) == self.logins - live


@unittest.skipIf(connection.vendor == "sqlite", "SQLite serialises all writers")
class DbRacingLoginsTests(RacingLoginsMixin, TransactionTestCase):
    engine = ENGINES["db"]


engine_matrix(globals(), "RacingLoginsTests", (RacingLoginsMixin, TransactionTestCase), ["redis"])
