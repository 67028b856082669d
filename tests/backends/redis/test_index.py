"""The redis engine's per-user index: upkeep at login, logout and cycle_key, queries, pruning."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import SimpleTestCase, override_settings

from sessionplus.backends.redis import SessionStore
from tests.backends.redis.test_engine import (
    alog_in,
    index_key,
    log_in,
    members,
    redis,
    saved,
    stored,
)


@pytest.mark.usefixtures("redis_db")
class RedisUserIndexTests(SimpleTestCase):
    def test_login_adds_the_session_to_its_users_index(self):
        session = log_in("7")
        assert members("7") == {session.session_key}
        assert "x:index" in stored(session.session_key)

    def test_the_index_lives_at_least_as_long_as_its_longest_member(self):
        short = SessionStore()
        short.set_expiry(60)
        log_in("7", short)
        long = SessionStore()
        long.set_expiry(7200)
        log_in("7", long)
        log_in("7", SessionStore())  # default age: two weeks
        longest = max(redis().pttl(SessionStore.redis_key(key)) for key in members("7"))
        assert redis().pttl(index_key("7")) >= longest

    def test_a_touch_that_outlives_the_index_extends_it(self):
        with override_settings(SESSION_COOKIE_AGE=100):
            session = log_in("7")
        assert redis().pttl(index_key("7")) <= 200_000
        session = SessionStore(session.session_key)
        session["cart"]
        session.touch()
        assert redis().pttl(index_key("7")) >= redis().pttl(
            SessionStore.redis_key(session.session_key)
        )

    def test_sessions_for_user_lists_live_sessions_and_prunes_expired_ones(self):
        first, second, other = log_in("7"), log_in("7"), log_in("8")
        redis().delete(SessionStore.redis_key(second.session_key))  # as if expired
        assert SessionStore.sessions_for_user("7") == [first.session_key]
        assert SessionStore.sessions_for_user(8) == [other.session_key]
        assert members("7") == {first.session_key}
        assert SessionStore.sessions_for_user("nobody") == []

    def test_end_sessions_for_user_ends_all_but_the_one_kept(self):
        kept, first, second, other = log_in("7"), log_in("7"), log_in("7"), log_in("8")
        redis().delete(SessionStore.redis_key(second.session_key))
        assert SessionStore.end_sessions_for_user("7", keep=kept.session_key) == 1
        assert SessionStore.sessions_for_user("7") == [kept.session_key]
        assert SessionStore().exists(first.session_key) is False
        assert SessionStore().exists(other.session_key) is True
        assert SessionStore.end_sessions_for_user("7") == 1
        assert SessionStore.end_sessions_for_user("7") == 0
        assert redis().exists(index_key("7")) == 0

    def test_logout_removes_the_session_from_the_index(self):
        session = SessionStore(log_in("7").session_key)
        session.flush()
        assert members("7") == set()

    def test_delete_by_key_removes_it_from_the_index(self):
        keep, gone = log_in("7"), log_in("7")
        SessionStore().delete(gone.session_key)
        assert members("7") == {keep.session_key}

    def test_cycle_key_moves_the_session_within_its_index(self):
        session = SessionStore(log_in("7").session_key)
        old_key = session.session_key
        session.cycle_key()
        assert members("7") == {session.session_key}
        assert old_key != session.session_key

    def test_logging_in_as_someone_else_moves_the_session_between_indexes(self):
        session = SessionStore(log_in("7").session_key)
        session[SESSION_KEY] = "8"
        session.save()
        assert (members("7"), members("8")) == (set(), {session.session_key})
        session = SessionStore(session.session_key)
        del session[SESSION_KEY]
        session.save()
        assert members("8") == set()
        assert "x:index" not in stored(session.session_key)

    def test_an_anonymous_session_is_in_no_index(self):
        saved(a=1)
        assert redis().keys(f"{SessionStore.user_index_key('')}*") == []

    def test_prune_user_indexes_removes_every_expired_member_and_counts_them(self):
        live, gone1, gone2 = log_in("7"), log_in("7"), log_in("8")
        for session in (gone1, gone2):
            redis().delete(SessionStore.redis_key(session.session_key))
        redis().sadd(index_key("9"), "not-a-session")
        assert SessionStore.prune_user_indexes() == 3
        assert members("7") == {live.session_key}
        assert redis().exists(index_key("8"), index_key("9")) == 0
        assert SessionStore.clear_expired() == 0

    @override_settings(SESSIONPLUS_REDIS_KEY_PREFIX="we*ird[")
    def test_pruning_matches_a_prefix_with_glob_characters_literally(self):
        gone = log_in("7")
        redis().delete(SessionStore.redis_key(gone.session_key))
        redis().sadd("weXird[user:1", "x" * 32)
        assert SessionStore.prune_user_indexes() == 1
        assert redis().exists("weXird[user:1") == 1

    async def test_async_index_upkeep_and_queries(self):
        kept, gone, ended = await alog_in("7"), await alog_in("7"), await alog_in("7")
        await SessionStore().adelete(gone.session_key)
        assert sorted(await SessionStore.asessions_for_user("7")) == sorted(
            [kept.session_key, ended.session_key]
        )
        assert await SessionStore.aend_sessions_for_user("7", keep=kept.session_key) == 1
        assert await SessionStore.aend_sessions_for_user("nobody") == 0
        session = SessionStore(kept.session_key)
        await session.acycle_key()
        assert members("7") == {session.session_key}
        redis().delete(SessionStore.redis_key(session.session_key))
        assert await SessionStore.aclear_expired() == 1
        assert await SessionStore.aprune_user_indexes() == 0

    def test_a_read_never_verifies_the_index_field_and_a_write_repairs_a_damaged_one(self):
        session = log_in("7")
        redis().hset(SessionStore.redis_key(session.session_key), "x:index", "garbage")
        redis().delete(index_key("7"))
        session = SessionStore(session.session_key)
        assert session[SESSION_KEY] == "7"  # a read: the damaged field goes unnoticed
        session["cart"] = ["apple"]
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            session.save()
        assert "index field that failed its signature check" in logs.output[0]
        assert members("7") == {session.session_key}
        assert stored(session.session_key)["x:index"] != b"garbage"
