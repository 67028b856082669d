"""
Hostile, replayed and random session cookies, through the middleware and a real store.

Each hostile input reaches no storage, costs no 5xx, and gets the response an anonymous
first visit gets; a well-formed key nobody issued is read (once) but never created or
adopted. After logout the old cookie is worth nothing on engines that keep a record.
Hypothesis checks that whatever the ``Cookie`` header, no response is a 5xx and nothing
is written to storage unless the view writes (examples are drawn deterministically: the
"ci" profile in ``conftest``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from http.cookies import Morsel
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.http import HttpResponseBase
from django.test import AsyncClient, TestCase
from django.utils import timezone
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import django as hypothesis_django

from tests.backends.contract import Calls, with_twins
from tests.support.counting import StorageCount, count_storage
from tests.support.engines import (
    ENGINES,
    SERVER_SIDE,
    SHIPPED,
    UNKNOWN_KEY,
    EngineTestMixin,
    engine_matrix,
)
from tests.support.properties import per_engine
from tests.support.signed_in import replayed_after_logout


def hostile_cookie_headers(real: str, other_real: str) -> dict[str, str]:
    """
    Return each hostile session cookie as the raw ``Cookie`` header a client sends.

    ``real`` and ``other_real`` are the cookie values of two live sessions: several
    inputs are near misses of one, which must not load it either.
    """
    name = settings.SESSION_COOKIE_NAME

    def cookie(value: str) -> str:
        return f"{name}={value}"

    return {
        "empty value": cookie(""),
        "empty quoted value": cookie('""'),
        "31 characters": cookie("a" * 31),
        "33 characters": cookie("a" * 33),
        "one character cut off a real key": cookie(real[:-1]),
        "a real key with one character more": cookie(real + "a"),
        "upper-case variant of a real key": cookie(real.upper()),
        "a real key with a trailing space": cookie(f'"{real} "'),
        "a real key with a leading space": cookie(f'" {real}"'),
        # What a WSGI server hands over for UTF-8 bytes: each byte as one latin-1 character.
        "non-ASCII": cookie(f"{'a' * 31}é".encode().decode("latin-1")),
        "non-ASCII after a real key": cookie(f"{real}☃".encode().decode("latin-1")),
        "NUL by quoted octal escape": cookie(f'"{real[:31]}\\000"'),
        "NUL after a real key": cookie(f'"{real}\\000"'),
        "CR LF by quoted octal escapes": cookie(f'"{real[:30]}\\015\\012"'),
        "CR LF after a real key": cookie(f'"{real}\\015\\012"'),
        "path traversal": cookie("../../etc/passwd"),
        "path traversal of key length": cookie("../../../../../../../etc/passwd"),
        "Windows path traversal": cookie('"..\\\\..\\\\..\\\\..\\\\windows\\\\win.ini"'),
        "percent-encoded traversal": cookie("%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        "separators": cookie('"abc/def\\\\ghi:jkl,mno=pqr@stu.vwxyz"'),
        "a real key behind a separator": cookie(f"x/{real}"),
        "Redis glob star": cookie("*"),
        "Redis glob of key length": cookie("[a-z]" * 6 + "??"),
        "Redis glob after a real prefix": cookie(real[:31] + "*"),
        "Redis hash tag": cookie("{" + real[:30] + "}"),
        "Redis command injection": cookie('"x\\015\\012FLUSHALL\\015\\012"'),
        "20 kB value": cookie("a" * 20_000),
    }


def duplicated_cookie_headers(real: str, other_real: str) -> dict[str, str]:
    """
    Return ``Cookie`` headers that carry the session cookie more than once.

    A browser sends two cookies of one name when another site on a parent domain or path
    planted one (cookie tossing); which of them is the user's cannot be told.
    """
    name = settings.SESSION_COOKIE_NAME
    return {
        "the same cookie twice": f"{name}={real}; {name}={real}",
        "two different session cookies": f"{name}={real}; {name}={other_real}",
        "a hostile and a real cookie": f"{name}=../../etc/passwd; {name}={real}",
        "a real and an empty cookie": f"{name}={real}; {name}=",
    }


@dataclass(frozen=True)
class Outcome:
    """What a client sees of a response, fresh session keys left out."""

    status: int
    body: bytes
    session_cookie: str  # "none", "deleted" or "issued"
    cookie_attributes: tuple[tuple[str, str], ...]


def outcome(response: HttpResponseBase) -> Outcome:
    morsel: Morsel | None = response.cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return Outcome(response.status_code, response.content, "none", ())
    if morsel.value == "" and str(morsel["max-age"]) == "0":
        return Outcome(response.status_code, response.content, "deleted", ())
    # "expires" moves with the clock; everything else must match a first visit's cookie.
    attributes = tuple(sorted((k, str(v)) for k, v in morsel.items() if k != "expires"))
    return Outcome(response.status_code, response.content, "issued", attributes)


def cookie_value(response: HttpResponseBase) -> str:
    return response.cookies[settings.SESSION_COOKIE_NAME].value


class RawCookieAsyncClient(AsyncClient):
    """
    An AsyncClient that sends the ``Cookie`` header a test gives, exactly.

    AsyncClient adds a ``cookie`` header of its own, empty when its jar is, which Django's
    ASGI handler joins to the given one with a comma: the last cookie's value ended in ",".
    """

    def _base_scope(self, **request: Any) -> dict[str, Any]:
        scope = super()._base_scope(**request)
        scope["headers"] = [(name, value) for name, value in scope["headers"] if value]
        return scope


class RawCookieRequests(EngineTestMixin):
    """Requests that send a ``Cookie`` header exactly as given, sync or async, counted."""

    async_client_class = RawCookieAsyncClient

    def request(
        self, path: str, cookie_header: str | None, mode: str = "sync"
    ) -> tuple[HttpResponseBase, StorageCount]:
        if mode == "async":
            return async_to_sync(self.arequest)(path, cookie_header)
        self.client.cookies.clear()
        extra = {} if cookie_header is None else {"HTTP_COOKIE": cookie_header}
        with count_storage(redis=self.engine.on_redis) as count:
            response = self.client.get(path, **extra)
        return response, count

    async def arequest(
        self, path: str, cookie_header: str | None
    ) -> tuple[HttpResponseBase, StorageCount]:
        self.async_client.cookies.clear()
        headers = {} if cookie_header is None else {"cookie": cookie_header}
        async with count_storage(redis=self.engine.on_redis) as count:
            response = await self.async_client.get(path, headers=headers)
        return response, count


@with_twins
class HostileCookieChecks(RawCookieRequests):
    """What every engine does with hostile session cookies. Set ``engine``."""

    def setUp(self) -> None:
        super().setUp()
        self.real = self.live_session_cookie()
        self.other_real = self.live_session_cookie()

    def live_session_cookie(self) -> str:
        """Create a session the way a login would and return its cookie value."""
        self.client.cookies.clear()
        response = self.client.get("/write/")
        assert response.status_code == 200
        return cookie_value(response)

    def hostile(self) -> dict[str, str]:
        return hostile_cookie_headers(self.real, self.other_real)

    def duplicated(self) -> dict[str, str]:
        return duplicated_cookie_headers(self.real, self.other_real)

    # Reading views -------------------------------------------------------------------

    def reading_view_problems(
        self, name: str, response: HttpResponseBase, count: StorageCount, first_visit: Outcome
    ) -> list[str]:
        problems = []
        if count.total:
            problems.append(f"{name}: reached storage: {count.log}")
        seen = outcome(response)
        if seen.status != first_visit.status or seen.body != first_visit.body:
            problems.append(f"{name}: {seen.status} {seen.body[:80]!r}")
        if seen.session_cookie not in ("none", "deleted"):
            problems.append(f"{name}: a session cookie was issued")
        return problems

    def check_reading_view(self, headers: dict[str, str], mode: str = "sync") -> None:
        first_visit = outcome(self.request("/read/", None, mode)[0])
        assert first_visit.body == b"authenticated=False keys="
        problems = []
        for name, header in headers.items():
            response, count = self.request("/read/", header, mode)
            problems += self.reading_view_problems(name, response, count, first_visit)
        assert not problems, "\n".join(problems)

    def both_hostile_cookies_reach_no_storage_from_a_reading_view(self, call: Calls) -> None:
        self.check_reading_view(self.hostile(), call.mode)

    def test_duplicated_session_cookies_reach_no_storage_from_a_reading_view(self):
        self.check_reading_view(self.duplicated())

    # Writing views -------------------------------------------------------------------

    def writing_view_problems(
        self,
        name: str,
        response: HttpResponseBase,
        count: StorageCount,
        first_visit: tuple[Outcome, StorageCount],
    ) -> list[str]:
        problems = []
        expected, expected_count = first_visit
        if (count.reads, count.writes) != (expected_count.reads, expected_count.writes):
            problems.append(f"{name}: storage {count.log} != first visit {expected_count.log}")
        if outcome(response) != expected:
            problems.append(f"{name}: {outcome(response)} != first visit {expected}")
        elif self.engine.server_side and cookie_value(response) in (self.real, self.other_real):
            # (A signed cookie holding the same data, signed in the same second, is the
            # same value: there "visits=1" in the body shows nothing was adopted.)
            problems.append(f"{name}: a live session was adopted")
        return problems

    def check_writing_view(self, headers: dict[str, str], mode: str = "sync") -> None:
        response, count = self.request("/write/", None, mode)
        first_visit = (outcome(response), count)
        assert first_visit[0].body == b"visits=1"
        assert first_visit[0].session_cookie == "issued"
        problems = []
        for name, header in headers.items():
            response, count = self.request("/write/", header, mode)
            problems += self.writing_view_problems(name, response, count, first_visit)
        assert not problems, "\n".join(problems)

    def both_hostile_cookies_get_what_a_first_visit_gets_from_a_writing_view(
        self, call: Calls
    ) -> None:
        self.check_writing_view(self.hostile(), call.mode)

    def test_duplicated_session_cookies_get_what_a_first_visit_gets_from_a_writing_view(self):
        self.check_writing_view(self.duplicated())

    def test_live_sessions_are_untouched_by_the_hostile_requests(self):
        for header in self.hostile().values():
            self.request("/write/", header)
            self.request("/read/", header)
        for value in (self.real, self.other_real):
            response, _ = self.request("/read/", f"{settings.SESSION_COOKIE_NAME}={value}")
            assert response.content == b"authenticated=False keys=visits"
            response, _ = self.request("/write/", f"{settings.SESSION_COOKIE_NAME}={value}")
            assert response.content == b"visits=2"

    # Views that ignore the session -----------------------------------------------------

    def test_a_view_that_ignores_the_session_costs_nothing_whatever_the_cookie(self):
        for name, header in self.hostile().items():
            response, count = self.request("/untouched/", header)
            assert response.status_code == 200, name
            assert count.total == 0, (name, count.log)
            # Deleting a cookie that can never be a session costs nothing either.
            assert outcome(response).session_cookie in ("none", "deleted"), name
        response, count = self.request("/untouched/", f"{settings.SESSION_COOKIE_NAME}={self.real}")
        assert count.total == 0, count.log
        assert outcome(response).session_cookie == "none"


@with_twins
class ServerSideCookieChecks(HostileCookieChecks):
    """Unknown well-formed keys, on engines that keep a record per key."""

    def unknown_cookie(self) -> str:
        return f"{settings.SESSION_COOKIE_NAME}={UNKNOWN_KEY}"

    def test_an_unknown_key_is_read_but_nothing_is_written(self):
        response, count = self.request("/read/", self.unknown_cookie())
        assert response.content == b"authenticated=False keys="
        assert count.total >= 1
        assert count.total_writes == 0, count.log
        assert outcome(response).session_cookie in ("none", "deleted")
        assert self.engine.store_class().exists(UNKNOWN_KEY) is False

    def both_an_unknown_key_is_never_adopted_even_when_the_view_writes(self, call: Calls) -> None:
        response, count = self.request("/read/", self.unknown_cookie(), call.mode)
        assert count.total_writes == 0, count.log
        response, _ = self.request("/write/", self.unknown_cookie(), call.mode)
        assert response.content == b"visits=1"
        issued = cookie_value(response)
        assert issued != UNKNOWN_KEY
        assert len(issued) == 32
        assert call(self.engine.store_class(), "exists", UNKNOWN_KEY) is False
        assert call(self.engine.store_class(), "exists", issued) is True
        response, _ = self.request("/read/", f"{settings.SESSION_COOKIE_NAME}={issued}", call.mode)
        assert response.content == b"authenticated=False keys=visits"


engine_matrix(globals(), "HostileCookieTests", (ServerSideCookieChecks, TestCase), SERVER_SIDE)
engine_matrix(globals(), "HostileCookieTests", (HostileCookieChecks, TestCase), ["signed_cookies"])


# Replaying a cookie after logout ----------------------------------------------------


@with_twins
class LogoutChecks(EngineTestMixin):
    """After logout, the old cookie is worth nothing on engines that keep a record."""

    def setUp(self) -> None:
        super().setUp()
        self.user = User.objects.create_user("alice", password="secret")

    def both_replaying_the_cookie_after_logout_is_anonymous(self, call: Calls) -> None:
        client = call.client(self)
        call(client, "force_login", self.user)
        old = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert call.get(client, "/read/").content.startswith(b"authenticated=True")
        response = replayed_after_logout(call, client, old)
        assert response.content == b"authenticated=False keys="
        assert call(self.store(), "exists", old) is False

    def test_replaying_the_cookie_after_logout_cannot_write_into_it(self):
        self.client.force_login(self.user)
        old = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        self.client.get("/logout/")
        self.client.cookies[settings.SESSION_COOKIE_NAME] = old
        response = self.client.get("/write/")
        assert response.cookies[settings.SESSION_COOKIE_NAME].value != old
        assert self.store().exists(old) is False


engine_matrix(globals(), "LogoutTests", (LogoutChecks, TestCase), SERVER_SIDE)


class SignedCookiesLogoutTests(EngineTestMixin, TestCase):
    engine = ENGINES["signed_cookies"]

    def test_replaying_a_cookie_after_logout_works_until_it_expires(self):
        # The documented limit of cookie-held sessions: nothing on the server to revoke.
        user = User.objects.create_user("alice", password="secret")
        self.client.force_login(user)
        old = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        self.client.get("/logout/")
        self.client.cookies[settings.SESSION_COOKIE_NAME] = old
        assert self.client.get("/read/").content.startswith(b"authenticated=True")
        later = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE + 1)
        with freeze_time(later):
            self.client.cookies[settings.SESSION_COOKIE_NAME] = old
            assert self.client.get("/read/").content == b"authenticated=False keys="


# Random cookies (hypothesis) ------------------------------------------------------------


def _as_wsgi(text: str) -> str:
    # A WSGI server hands header bytes over as latin-1 characters; a client sends UTF-8.
    return text.encode("utf-8", "surrogatepass").decode("latin-1")


def cookie_values() -> st.SearchStrategy[str]:
    """Values a client may put in a cookie: anything, near-keys, quoted, escaped."""
    near_key = st.text(alphabet=VALID_KEY_CHARS + "AZ -_.:/\\*?[]{}%\"'", min_size=30, max_size=34)
    quoted = st.builds(
        lambda inner: f'"{inner}"',
        st.text(alphabet=st.sampled_from([*VALID_KEY_CHARS, "\\", "0", "1", "5", '"', " "])),
    )
    return st.one_of(
        st.text(max_size=80),
        st.text(alphabet=VALID_KEY_CHARS, min_size=32, max_size=32),
        near_key,
        quoted,
    )


def cookie_headers() -> st.SearchStrategy[str]:
    """Whole ``Cookie`` headers: session cookies, others, repeats, raw bytes."""
    name = st.sampled_from(["sessionid", "csrftoken", "", "sessionid ", "SESSIONID"])
    pairs = st.lists(st.tuples(name, cookie_values()), min_size=1, max_size=3).map(
        lambda items: "; ".join(f"{key}={value}" for key, value in items)
    )
    raw = st.binary(max_size=200).map(lambda data: data.decode("latin-1"))
    return st.one_of(pairs.map(_as_wsgi), raw)


class CookiePropertyChecks(RawCookieRequests):
    """Property (a), for one engine, through the sync and the async stack. Set ``engine``."""

    def no_cookie_costs_a_5xx_or_a_write_unless_the_view_writes(
        self, header: str, mode: str
    ) -> None:
        response, count = self.request("/untouched/", header, mode)
        assert response.status_code == 200
        assert count.total == 0, count.log
        response, count = self.request("/read/", header, mode)
        assert response.status_code == 200
        assert response.content == b"authenticated=False keys="
        assert count.total_writes == 0, count.log
        response, count = self.request("/write/", header, mode)
        assert response.status_code == 200
        assert response.content == b"visits=1"
        issued = response.cookies[settings.SESSION_COOKIE_NAME].value
        assert issued
        assert issued not in header

    # Hypothesis runs each example in a transaction of its own only for a method it
    # decorates: the two modes are two such methods, not one generated pair.
    @per_engine
    @given(header=cookie_headers())
    def test_no_cookie_costs_a_5xx_or_a_write_unless_the_view_writes(self, header):
        self.no_cookie_costs_a_5xx_or_a_write_unless_the_view_writes(header, "sync")

    @per_engine
    @given(header=cookie_headers())
    def test_async_no_cookie_costs_a_5xx_or_a_write_unless_the_view_writes(self, header):
        self.no_cookie_costs_a_5xx_or_a_write_unless_the_view_writes(header, "async")


engine_matrix(
    globals(), "CookiePropertyTests", (CookiePropertyChecks, hypothesis_django.TestCase), SHIPPED
)
