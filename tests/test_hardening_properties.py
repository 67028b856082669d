"""
Properties hypothesis checks on every engine.

(a) Whatever the ``Cookie`` header, no response is a 5xx and nothing is written to
    storage unless the view writes; (b) whatever JSON-able data a session holds, what was
    saved is what loads, through a first save and a delta save.

Examples are drawn deterministically (the "ci" profile in ``conftest``).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from sessionplus.backends.data_rule import RESERVED_KEY_PREFIX
from sessionplus.backends.expiry import EXPIRY_KEY
from sessionplus.exceptions import SessionTooLarge
from tests.support.counting import count_storage
from tests.support.engines import SHIPPED, EngineTestMixin, engine_matrix


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


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
session_keys = st.text(max_size=12).filter(
    lambda key: key != EXPIRY_KEY and not key.startswith(RESERVED_KEY_PREFIX)
)
session_data = st.dictionaries(session_keys, json_values, max_size=6)

# Each test runs once per engine class from one mixin: the same function on different
# instances is what that health check is about, and is what is meant here.
per_engine = settings(suppress_health_check=[HealthCheck.differing_executors])


class CookiePropertyChecks(EngineTestMixin):
    """Property (a), for one engine. Set ``engine``."""

    def request(self, path: str, header: str) -> tuple[Any, Any]:
        self.client.cookies.clear()
        with count_storage(redis=self.engine.on_redis) as count:
            response = self.client.get(path, HTTP_COOKIE=header)
        return response, count

    @per_engine
    @given(header=cookie_headers())
    def test_no_cookie_costs_a_5xx_or_a_write_unless_the_view_writes(self, header):
        response, count = self.request("/untouched/", header)
        assert response.status_code == 200
        assert count.total == 0, count.log
        response, count = self.request("/read/", header)
        assert response.status_code == 200
        assert response.content == b"authenticated=False keys="
        assert count.total_writes == 0, count.log
        response, count = self.request("/write/", header)
        assert response.status_code == 200
        assert response.content == b"visits=1"
        issued = response.cookies[django_settings.SESSION_COOKIE_NAME].value
        assert issued
        assert issued not in header

    @per_engine
    @given(header=cookie_headers())
    def test_async_no_cookie_costs_a_5xx_or_a_write_unless_the_view_writes(self, header):
        @async_to_sync
        async def read() -> tuple[Any, Any]:
            self.async_client.cookies.clear()
            async with count_storage(redis=self.engine.on_redis) as count:
                response = await self.async_client.get("/read/", headers={"cookie": header})
            return response, count

        response, count = read()
        assert response.status_code == 200
        assert response.content == b"authenticated=False keys="
        assert count.total_writes == 0, count.log


class RoundTripPropertyChecks(EngineTestMixin):
    """Property (b), for one engine. Set ``engine``."""

    def save(self, session: Any) -> None:
        try:
            session.save()
        except SessionTooLarge:
            # Only a cookie can be too small for a small session (4 kB, signed, base64).
            if not self.engine.server_side:
                reject()
            raise

    @per_engine
    @given(first=session_data, second=session_data, data=st.data())
    def test_what_is_saved_is_what_loads(self, first, second, data):
        session = self.store()
        session.update(first)
        self.save(session)
        assert self.stored(session) == first

        session = self.store(session.session_key)
        dropped = data.draw(st.sets(st.sampled_from(sorted(first))) if first else st.just(set()))
        for key in dropped:
            del session[key]
        session.update(second)
        self.save(session)
        expected = {key: value for key, value in first.items() if key not in dropped}
        expected.update(second)
        assert self.stored(session) == expected

    @per_engine
    @given(first=session_data)
    def test_async_what_is_saved_is_what_loads(self, first):
        @async_to_sync
        async def round_trip() -> dict[str, Any]:
            session = self.store()
            await session.aupdate(first)
            await session.asave()
            return dict(await self.store(session.session_key).aitems())

        try:
            loaded = round_trip()
        except SessionTooLarge:
            if not self.engine.server_side:
                reject()
            raise
        assert loaded == first


engine_matrix(
    globals(), "PropertyTests", (CookiePropertyChecks, RoundTripPropertyChecks, TestCase), SHIPPED
)
