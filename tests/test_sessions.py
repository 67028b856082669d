"""sessionplus.sessions on every engine that can list a user's sessions, signed in for real."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.test import TestCase, override_settings
from django_redis import get_redis_connection

from sessionplus import sessions
from sessionplus.backends.redis import SessionStore as RedisStore
from sessionplus.exceptions import SessionsNotEnumerable
from sessionplus.identifiers import public_id
from tests.backends.contract import Calls, with_twins
from tests.support.counting import count_storage
from tests.support.engines import ENGINES, engine_matrix
from tests.support.redis_cluster import PrivateRedisCluster, engine_on
from tests.support.redis_layout import set_field
from tests.support.signed_in import FIREFOX, IPHONE, SignedInMixin


@with_twins
class UserSessionsContract(SignedInMixin):
    """Each behaviour through the sync functions and their async twins (``call``)."""

    def both_lists_each_signed_in_device_of_the_user_with_what_was_recorded(self, call: Calls):
        laptop = self.signed_in(self.alice, FIREFOX)
        phone = self.signed_in(self.alice, IPHONE, REMOTE_ADDR="10.1.2.3")
        self.signed_in(self.bob)
        listed = call(sessions, "user_sessions", self.alice, self.request_of(phone, self.alice))
        assert [record.id for record in listed] == [
            public_id(self.key_of(phone)),
            public_id(self.key_of(laptop)),
        ]
        current, other = listed
        assert current.is_current
        assert not other.is_current
        assert (current.ip, current.user_agent) == ("10.1.2.3", IPHONE)
        assert current.device == "Mobile Safari 17 on iOS 17"
        assert other.device == "Firefox 120 on Ubuntu"
        assert other.ip == "127.0.0.1"
        assert other.created_at is not None
        assert other.last_activity >= other.created_at
        # The key appears nowhere in what the listing returns.
        assert self.key_of(phone) not in repr(listed)

    def both_without_a_request_no_session_is_current_and_the_most_recent_comes_first(
        self, call: Calls
    ):
        first = self.signed_in(self.alice)
        second = self.signed_in(self.alice)
        listed = call(sessions, "user_sessions", self.alice)
        assert [record.id for record in listed] == [
            public_id(self.key_of(second)),
            public_id(self.key_of(first)),
        ]
        assert not any(record.is_current for record in listed)

    def both_an_anonymous_user_has_no_sessions_and_nothing_to_end(self, call: Calls):
        self.signed_in(self.alice)
        assert call(sessions, "user_sessions", AnonymousUser()) == []
        assert call(sessions, "end_all_sessions", AnonymousUser()) == 0
        assert self.ended == []

    def both_end_session_signs_that_device_out_and_sends_revoked(self, call: Calls):
        laptop, phone = self.signed_in(self.alice), self.signed_in(self.alice, IPHONE)
        identifier = public_id(self.key_of(phone))
        assert call(sessions, "end_session", self.alice, identifier) is True
        assert self.who(phone) == "anonymous"
        assert self.who(laptop) == "alice"
        assert [(e["session_key"], e["reason"]) for e in self.ended] == [
            (self.key_of(phone), "revoked")
        ]
        assert call(sessions, "end_session", self.alice, identifier) is False

    def both_end_session_refuses_another_users_identifier(self, call: Calls):
        alices = self.signed_in(self.alice)
        bobs = self.signed_in(self.bob)
        assert call(sessions, "end_session", self.alice, public_id(self.key_of(bobs))) is False
        # A session key is no identifier.
        assert call(sessions, "end_session", self.alice, self.key_of(alices)) is False
        assert (self.who(alices), self.who(bobs)) == ("alice", "bob")
        assert self.ended == []

    def both_end_other_sessions_keeps_only_the_requests_own(self, call: Calls):
        here, there, elsewhere = (self.signed_in(self.alice) for _ in range(3))
        bobs = self.signed_in(self.bob)
        request = self.request_of(here, self.alice)
        assert call(sessions, "end_other_sessions", request) == 2
        assert [self.who(c) for c in (here, there, elsewhere, bobs)] == [
            "alice",
            "anonymous",
            "anonymous",
            "bob",
        ]
        assert {e["reason"] for e in self.ended} == {"revoked"}
        assert all(e["request"] is request for e in self.ended)

    def both_end_all_sessions_signs_the_user_out_everywhere(self, call: Calls):
        clients = [self.signed_in(self.alice) for _ in range(2)]
        bobs = self.signed_in(self.bob)
        assert call(sessions, "end_all_sessions", self.alice) == 2
        assert [self.who(c) for c in clients] == ["anonymous", "anonymous"]
        assert self.who(bobs) == "bob"
        assert call(sessions, "user_sessions", self.alice) == []

    def test_listing_costs_one_read_for_the_index_and_at_most_one_per_session(self):
        for _ in range(3):
            self.signed_in(self.alice)
        with count_storage(redis=self.engine.on_redis) as count:
            assert len(sessions.user_sessions(self.alice)) == 3
        assert count.total_writes == 0, count.log
        assert count.total <= 1 + 3, count.log
        self.assert_listing_budget(count)

    def assert_listing_budget(self, count: Any) -> None:
        # db and cached_db: the index is a column, so one SELECT reads every session.
        assert count.total == count.reads["sql"] == 1, count.log


engine_matrix(globals(), "UserSessionsTests", (UserSessionsContract, TestCase), ["db", "cached_db"])


@pytest.mark.usefixtures("redis_db")
class RedisUserSessionsTests(UserSessionsContract, TestCase):
    engine = ENGINES["redis"]

    def assert_listing_budget(self, count: Any) -> None:
        # SMEMBERS, then one pipelined GET per session in a single round trip.
        assert count.reads["redis"] == 4, count.log

    def test_a_session_that_expired_or_was_tampered_with_is_not_listed(self):
        kept, expired, tampered = (self.signed_in(self.alice) for _ in range(3))
        connection = get_redis_connection("redis")
        connection.delete(RedisStore.redis_key(self.key_of(expired)))
        set_field(connection, RedisStore.redis_key(self.key_of(tampered)), "m:ip", b"forged")
        listed = sessions.user_sessions(self.alice)
        assert [record.id for record in listed] == [public_id(self.key_of(kept))]


class RedisClusterUserSessionsTests(SignedInMixin, TestCase):
    """The index, the listing pipeline and the ends work across a real cluster's slots."""

    engine = ENGINES["redis"]

    @pytest.fixture(autouse=True)
    def on_the_cluster(self, redis_cluster: PrivateRedisCluster) -> Iterator[None]:
        with engine_on(redis_cluster):
            yield

    def test_lists_and_ends_sessions_on_redis_cluster(self):
        clients = [self.signed_in(self.alice) for _ in range(4)]
        request = self.request_of(clients[0], self.alice)
        listed = sessions.user_sessions(self.alice, request)
        assert {record.id for record in listed} == {public_id(self.key_of(c)) for c in clients}
        assert async_to_sync(sessions.auser_sessions)(self.alice, request)[0].is_current
        assert sessions.end_session(self.alice, listed[1].id) is True
        assert sessions.end_other_sessions(request) == 2
        assert [self.who(c) for c in clients] == ["alice"] + ["anonymous"] * 3


class UnsupportedEngineTests(SignedInMixin, TestCase):
    def test_engines_without_a_user_index_raise_a_clear_error(self):
        for name in ("cache", "file", "signed_cookies"):
            with override_settings(SESSION_ENGINE=ENGINES[name].module):
                with pytest.raises(SessionsNotEnumerable, match="cannot list the sessions"):
                    sessions.user_sessions(self.alice)
                with pytest.raises(SessionsNotEnumerable):
                    sessions.end_all_sessions(self.alice)
                with pytest.raises(SessionsNotEnumerable):
                    async_to_sync(sessions.aend_all_sessions)(self.alice)


class DescribeDeviceTests(TestCase):
    def test_names_browser_and_os(self):
        assert sessions.describe_device(FIREFOX) == "Firefox 120 on Ubuntu"

    def test_falls_back_to_the_user_agent_it_cannot_parse(self):
        assert sessions.describe_device("curl/8.4.0") == "curl 8"
        assert sessions.describe_device("not a browser") == "not a browser"
        assert sessions.describe_device("") == ""
        assert sessions.describe_device(None) == ""

    def test_falls_back_to_the_user_agent_without_the_ua_extra(self):
        # Uninstalling a package mid-run is not possible: a None entry in sys.modules makes
        # the import fail as it does where sessionplus[ua] is not installed.
        with mock.patch.dict(sys.modules, {"ua_parser": None}):
            assert sessions.describe_device(FIREFOX) == FIREFOX
