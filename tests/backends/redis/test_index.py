"""The redis engine's per-user index: upkeep at login, logout and cycle_key, queries, pruning."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import SimpleTestCase, override_settings

from sessionplus.backends.redis import SessionStore
from tests.backends.contract import Calls, with_twins
from tests.backends.redis.test_engine import (
    index_key,
    log_in,
    members,
    redis,
    saved_by,
    stored,
)
from tests.support.redis_layout import set_field


@with_twins
@pytest.mark.usefixtures("redis_db")
class RedisUserIndexTests(SimpleTestCase):
    def both_login_adds_the_session_to_its_users_index(self, call: Calls) -> None:
        session = log_in("7", call=call)
        assert members("7") == {session.session_key}
        assert "x:index" in stored(session.session_key)

    def both_the_index_lives_at_least_as_long_as_its_longest_member(self, call: Calls) -> None:
        short = SessionStore()
        call(short, "set_expiry", 60)
        log_in("7", short, call)
        long = SessionStore()
        call(long, "set_expiry", 7200)
        log_in("7", long, call)
        log_in("7", SessionStore(), call)  # default age: two weeks
        longest = max(redis().pttl(SessionStore.redis_key(key)) for key in members("7"))
        assert redis().pttl(index_key("7")) >= longest

    def both_a_touch_that_outlives_the_index_extends_it(self, call: Calls) -> None:
        with override_settings(SESSION_COOKIE_AGE=100):
            session = log_in("7", call=call)
        assert redis().pttl(index_key("7")) <= 200_000
        session = SessionStore(session.session_key)
        call(session, "get", "cart")
        call(session, "touch")
        assert redis().pttl(index_key("7")) >= redis().pttl(
            SessionStore.redis_key(session.session_key)
        )

    def both_sessions_for_user_lists_live_sessions_and_prunes_expired_ones(
        self, call: Calls
    ) -> None:
        first, second = log_in("7", call=call), log_in("7", call=call)
        other = log_in("8", call=call)
        redis().delete(SessionStore.redis_key(second.session_key))  # as if expired
        assert call(SessionStore, "sessions_for_user", "7") == [first.session_key]
        assert call(SessionStore, "sessions_for_user", 8) == [other.session_key]
        assert members("7") == {first.session_key}
        assert call(SessionStore, "sessions_for_user", "nobody") == []

    def both_end_sessions_for_user_ends_all_but_the_one_kept(self, call: Calls) -> None:
        kept, first = log_in("7", call=call), log_in("7", call=call)
        second, other = log_in("7", call=call), log_in("8", call=call)
        redis().delete(SessionStore.redis_key(second.session_key))
        assert call(SessionStore, "end_sessions_for_user", "7", keep=kept.session_key) == 1
        assert call(SessionStore, "sessions_for_user", "7") == [kept.session_key]
        assert call(SessionStore(), "exists", first.session_key) is False
        assert call(SessionStore(), "exists", other.session_key) is True
        assert call(SessionStore, "end_sessions_for_user", "nobody") == 0
        assert call(SessionStore, "end_sessions_for_user", "7") == 1
        assert call(SessionStore, "end_sessions_for_user", "7") == 0
        assert redis().exists(index_key("7")) == 0

    def both_logout_removes_the_session_from_the_index(self, call: Calls) -> None:
        session = SessionStore(log_in("7", call=call).session_key)
        call(session, "flush")
        assert members("7") == set()

    def both_delete_by_key_removes_it_from_the_index(self, call: Calls) -> None:
        keep, gone = log_in("7", call=call), log_in("7", call=call)
        call(SessionStore(), "delete", gone.session_key)
        assert members("7") == {keep.session_key}
        assert call(SessionStore, "sessions_for_user", "7") == [keep.session_key]

    def both_cycle_key_moves_the_session_within_its_index(self, call: Calls) -> None:
        session = SessionStore(log_in("7", call=call).session_key)
        old_key = session.session_key
        call(session, "cycle_key")
        assert members("7") == {session.session_key}
        assert old_key != session.session_key

    def both_logging_in_as_someone_else_moves_the_session_between_indexes(
        self, call: Calls
    ) -> None:
        session = SessionStore(log_in("7", call=call).session_key)
        call(session, "set", SESSION_KEY, "8")
        call(session, "save")
        assert (members("7"), members("8")) == (set(), {session.session_key})
        session = SessionStore(session.session_key)
        call(session, "pop", SESSION_KEY)
        call(session, "save")
        assert members("8") == set()
        assert "x:index" not in stored(session.session_key)

    def both_an_anonymous_session_is_in_no_index(self, call: Calls) -> None:
        saved_by(call, a=1)
        assert redis().keys(f"{SessionStore.user_index_key('')}*") == []

    def both_prune_user_indexes_removes_every_expired_member_and_counts_them(
        self, call: Calls
    ) -> None:
        live, gone1, gone2 = log_in("7", call=call), log_in("7", call=call), log_in("8", call=call)
        for session in (gone1, gone2):
            redis().delete(SessionStore.redis_key(session.session_key))
        redis().sadd(index_key("9"), "not-a-session")
        assert call(SessionStore, "prune_user_indexes") == 3
        assert members("7") == {live.session_key}
        assert redis().exists(index_key("8"), index_key("9")) == 0
        assert call(SessionStore, "clear_expired") == 0
        # clear_expired() prunes the indexes too.
        redis().delete(SessionStore.redis_key(live.session_key))
        assert call(SessionStore, "clear_expired") == 1
        assert call(SessionStore, "prune_user_indexes") == 0

    @override_settings(SESSIONPLUS_REDIS_KEY_PREFIX="we*ird[")
    def both_pruning_matches_a_prefix_with_glob_characters_literally(self, call: Calls) -> None:
        gone = log_in("7", call=call)
        redis().delete(SessionStore.redis_key(gone.session_key))
        redis().sadd("weXird[user:1", "x" * 32)
        assert call(SessionStore, "prune_user_indexes") == 1
        assert redis().exists("weXird[user:1") == 1

    def both_a_read_never_verifies_the_index_field_and_a_write_repairs_a_damaged_one(
        self, call: Calls
    ) -> None:
        session = log_in("7", call=call)
        set_field(redis(), SessionStore.redis_key(session.session_key), "x:index", "garbage")
        redis().delete(index_key("7"))
        session = SessionStore(session.session_key)
        assert call(session, "get", SESSION_KEY) == "7"  # a read: the damaged field goes unnoticed
        call(session, "set", "cart", ["apple"])
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            call(session, "save")
        assert "index field that failed its signature check" in logs.output[0]
        assert members("7") == {session.session_key}
        assert stored(session.session_key)["x:index"] != b"garbage"
