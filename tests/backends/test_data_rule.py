"""
The data rule every engine inherits: keys checked at assignment, everything else at save.

``DataRuleChecks`` runs on every engine: a refused value raises before anything is written,
with the same error everywhere.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import SimpleTestCase, TestCase, override_settings

from sessionplus.backends.base import SessionPlusBase
from sessionplus.exceptions import SessionTooLarge
from tests.backends.contract import Calls, with_twins
from tests.support.engines import ENGINES, SERVER_SIDE, EngineTestMixin, engine_matrix


def nested(depth: int) -> list:
    """Return a list holding ``depth`` levels of lists in all."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


UNSERIALIZABLE = [object(), {1, 2}, b"bytes", Decimal("1.5"), datetime(2020, 1, 1), len]


def encode(session: SessionPlusBase) -> str:
    """Encode the session as a save does: the data rule's full check."""
    return session.encode(dict(session.items()))


@with_twins
class DataRuleTests(SimpleTestCase):
    """Keys' types are checked when they are set, everything else when the session is encoded."""

    def store(self, **data) -> SessionPlusBase:
        session = SessionPlusBase()
        session.update(data)
        return session

    def test_unserializable_value_is_refused_at_save_naming_the_key(self):
        for value in UNSERIALIZABLE:
            session = self.store(kept=1)
            session["bad"] = value
            with pytest.raises(TypeError, match="'bad'"):
                encode(session)

    def both_setdefault_with_an_unserializable_default_is_refused_at_save(
        self, call: Calls
    ) -> None:
        session = self.store()
        call(session, "setdefault", "bad", object())
        with pytest.raises(TypeError, match="'bad'"):
            encode(session)

    def both_update_with_one_key_of_the_wrong_type_changes_nothing(self, call: Calls) -> None:
        session = self.store(kept=1)
        session.modified = False
        with pytest.raises(TypeError, match="str"):
            call(session, "update", {"good": 2, 3: "bad", "later": 3})
        assert dict(call(session, "items")) == {"kept": 1}
        assert session.modified is False

    def both_update_takes_key_value_pairs_as_django_does_and_checks_them(self, call: Calls) -> None:
        session = self.store()
        call(session, "update", [("a", 1), ("b", 2)])
        assert dict(call(session, "items")) == {"a": 1, "b": 2}
        with pytest.raises(TypeError, match="str"):
            call(session, "update", [("c", 3), (4, "bad")])
        assert dict(call(session, "items")) == {"a": 1, "b": 2}

    def both_refused_set_leaves_the_session_unmodified(self, call: Calls) -> None:
        session = self.store()
        session.modified = False
        with pytest.raises(TypeError, match="str"):
            call(session, "set", 1, "value")
        assert session.modified is False
        assert dict(call(session, "items")) == {}

    def both_non_string_keys_are_refused_everywhere(self, call: Calls) -> None:
        session = self.store()
        for key in (1, None, ("a",), b"a"):
            with pytest.raises(TypeError, match="str"):
                call(session, "set", key, 1)
            with pytest.raises(TypeError, match="str"):
                call(session, "update", {key: 1})
        assert list(call(session, "keys")) == []

    def test_keys_reserved_for_sessionplus_are_refused_at_save(self):
        for key in ("_sessionplus", "_sessionplus_anything"):
            session = self.store(ok=1)
            session[key] = 1
            with pytest.raises(ValueError, match="reserved"):
                encode(session)
            with pytest.raises(ValueError, match="reserved"):
                encode(self.store(**{"ok": 1, key: 1}))

    def test_keys_that_are_not_valid_unicode_text_are_refused_at_save(self):
        session = self.store()
        session["\ud800"] = 1
        with pytest.raises(ValueError, match="not valid Unicode text"):
            session.serialize_data(dict(session.items()))
        session = self.store(**{"snow ☃ \x00": 1})
        assert session.decode(encode(session)) == {"snow ☃ \x00": 1}

    def test_deep_nesting_the_serializer_can_encode_is_stored(self):
        session = self.store(deep=nested(200))
        assert session.decode(encode(session)) == {"deep": nested(200)}

    def test_nesting_too_deep_for_the_serializer_is_refused_at_save_naming_the_key(self):
        session = self.store(deep=nested(100_000))
        with pytest.raises(SessionTooLarge, match="'deep' nests too deeply"):
            encode(session)

    def test_a_value_that_contains_itself_is_refused_not_looped_on(self):
        loop: list = []
        loop.append(loop)
        session = self.store(loop=loop)
        with pytest.raises(TypeError, match="'loop'"):
            encode(session)

    @override_settings(SESSIONPLUS_MAX_SIZE=100)
    def test_a_value_larger_than_the_max_size_is_refused_at_save(self):
        session = self.store()
        session["big"] = "x" * 100
        with pytest.raises(SessionTooLarge, match="SESSIONPLUS_MAX_SIZE \\(100\\)"):
            encode(session)

    @override_settings(SESSIONPLUS_MAX_SIZE=100)
    def test_a_short_string_that_json_escapes_past_the_max_size_is_refused_at_save(self):
        session = self.store(e="\N{GRINNING FACE}" * 8)  # 8 characters, 96 bytes of \uXXXX escapes
        with pytest.raises(SessionTooLarge, match="SESSIONPLUS_MAX_SIZE \\(100\\)"):
            encode(session)
        session["e"] = "\N{GRINNING FACE}" * 7
        assert session.decode(encode(session)) == {"e": "\N{GRINNING FACE}" * 7}

    def test_an_int_too_large_for_json_is_refused_at_save_naming_the_key(self):
        session = self.store(huge=10**5000)
        with pytest.raises(TypeError, match="'huge'"):
            encode(session)
        session = self.store(large=2**63 - 1)
        assert session.decode(encode(session)) == {"large": 2**63 - 1}

    @override_settings(SESSIONPLUS_MAX_SIZE=100)
    def test_values_that_grow_too_large_together_are_refused_at_encode_time(self):
        session = self.store(a="x" * 40, b="y" * 40)
        session["c"] = "z" * 40
        with pytest.raises(SessionTooLarge, match="bytes, more than SESSIONPLUS_MAX_SIZE"):
            session.encode(dict(session.items()))

    def test_the_max_size_counts_serialized_bytes_before_compression(self):
        session = self.store(text="a" * 2000)
        with override_settings(SESSIONPLUS_MAX_SIZE=2000), pytest.raises(SessionTooLarge):
            session.encode(dict(session.items()))
        assert len(session.encode(dict(session.items()))) < 200  # compression would hide it

    def test_default_max_size_is_256_kib(self):
        session = self.store(big="x" * (256 * 1024 - 20))
        encode(session)
        session["more"] = "x" * 20
        with pytest.raises(SessionTooLarge):
            encode(session)

    def test_in_place_mutation_is_caught_at_encode_time_naming_the_key(self):
        session = self.store(cart=["apple"], other=1)
        session["cart"].append(object())
        session.modified = True
        with pytest.raises(TypeError, match="'cart'"):
            session.encode(dict(session.items()))

    def test_in_place_nesting_is_caught_at_encode_time(self):
        session = self.store(tree=[])
        session["tree"].append(nested(100_000))
        with pytest.raises(SessionTooLarge, match="'tree'"):
            session.encode(dict(session.items()))

    def test_validate_for_write_checks_the_session_in_memory(self):
        session = self.store(cart=[])
        session.validate_for_write()
        session["cart"].append({1})
        with pytest.raises(TypeError, match="'cart'"):
            session.validate_for_write()

    def test_serialize_data_returns_what_the_serializer_makes(self):
        session = self.store()
        assert session.serialize_data({"a": [1, "b"]}) == b'{"a":[1,"b"]}'

    def both_expiry_key_set_directly_must_be_a_valid_expiry(self, call: Calls) -> None:
        # Checked at once: the middleware reads it for the cookie before the save.
        session = self.store()
        for value in ("garbage", True, [], math.nan, 10**20):
            with pytest.raises(ValueError, match="set_expiry"):
                call(session, "set", "_session_expiry", value)
            with pytest.raises(ValueError, match="set_expiry"):
                call(session, "update", {"_session_expiry": value})
        call(session, "set", "_session_expiry", 60)
        assert call(session, "get_expiry_age") == 60


# On every engine, through its store ------------------------------------------------------

UNSERIALIZABLE_CART = re.escape(
    "The session value for key 'cart' cannot be serialized by "
    "django.contrib.sessions.serializers.JSONSerializer: "
    "Object of type object is not JSON serializable"
)
TOO_LARGE = r"The session data serializes to \d+ bytes, more than SESSIONPLUS_MAX_SIZE \(1000\)\."
TOO_DEEP = "The session value for key 'tree' nests too deeply for "
# Deeper than any session a site keeps, and far too deep for the JSON serializer.
TOO_DEEP_NESTING = 100_000


@with_twins
class DataRuleChecks(EngineTestMixin):
    """A refused value raises before anything is written, with the same error everywhere."""

    def saved_by(self, call: Calls, **data: Any) -> SessionPlusBase:
        session = self.store()
        call(session, "update", data)
        call(session, "save")
        return session

    def stored_by(self, call: Calls, session: SessionPlusBase) -> dict[str, Any]:
        return dict(call(self.store(session.session_key), "items"))

    def both_a_bad_value_is_refused_at_save_and_the_stored_session_kept(self, call: Calls) -> None:
        session = self.saved_by(call, a=1)
        session = self.store(session.session_key)
        call(session, "set", "a", 2)
        call(session, "set", "cart", object())
        with pytest.raises(TypeError, match=UNSERIALIZABLE_CART):
            call(session, "save")
        assert self.stored_by(call, session) == {"a": 1}

    def both_keys_every_engine_could_not_store_alike_are_refused_at_save(self, call: Calls) -> None:
        # Found by hypothesis: signed cookies lost a "_sessionplus" key, Redis failed to
        # save a key with a lone surrogate. Now every engine refuses both before writing.
        session = self.saved_by(call, a=1)
        for key, problem in (("_sessionplus", "reserved"), ("\udfff", "not valid Unicode text")):
            session = self.store(session.session_key)
            call(session, "set", "a", 2)
            call(session, "set", key, None)
            with pytest.raises(ValueError, match=problem):
                call(session, "save")
            assert self.stored_by(call, session) == {"a": 1}
        session = self.store(session.session_key)
        call(session, "set", "snow ☃", "\udfff")  # values are serialized: any str is fine
        call(session, "save")
        assert self.stored_by(call, session) == {"a": 1, "snow ☃": "\udfff"}

    def both_a_bad_value_put_in_place_is_refused_at_save_and_nothing_is_written(
        self, call: Calls
    ) -> None:
        session = self.store()
        call(session, "update", {"a": 1, "cart": []})
        call(session, "save")
        session = self.store(session.session_key)
        call(session, "get", "cart").append(object())
        session.modified = True
        call(session, "set", "a", 2)
        with pytest.raises(TypeError, match=UNSERIALIZABLE_CART):
            call(session, "save")
        assert dict(call(self.store(session.session_key), "items")) == {"a": 1, "cart": []}

    def both_a_new_session_with_a_bad_value_creates_nothing(self, call: Calls) -> None:
        session = self.store()
        call(session, "set", "cart", [])
        call(session, "get", "cart").append(object())
        with pytest.raises(TypeError, match=UNSERIALIZABLE_CART):
            call(session, "save")
        if self.engine.server_side:
            assert call(self.store(), "exists", session.session_key) is False

    @override_settings(SESSIONPLUS_MAX_SIZE=1000)
    def both_a_session_grown_past_the_max_size_is_refused_and_the_stored_one_kept(
        self, call: Calls
    ) -> None:
        session = self.saved_by(call, a="x" * 500)
        session = self.store(session.session_key)
        call(session, "set", "b", "y" * 600)
        with pytest.raises(SessionTooLarge, match=TOO_LARGE):
            call(session, "save")
        assert self.stored_by(call, session) == {"a": "x" * 500}

    def both_nesting_grown_in_place_past_the_limit_is_refused_and_the_stored_one_kept(
        self, call: Calls
    ) -> None:
        session = self.saved_by(call, tree=[])
        session = self.store(session.session_key)
        call(session, "get", "tree").append(nested(TOO_DEEP_NESTING))
        session.modified = True
        with pytest.raises(SessionTooLarge, match=TOO_DEEP):
            call(session, "save")
        assert self.stored_by(call, session) == {"tree": []}

    # Bytes of its own an engine puts in the serialized payload, counted against the limit.
    own_payload_bytes = 0

    def both_a_session_at_the_limits_is_stored_and_loads_back(self, call: Calls) -> None:
        limit = 4096
        room = limit - self.own_payload_bytes
        with override_settings(SESSIONPLUS_MAX_SIZE=limit):
            probe = self.store()
            deepest = nested(100)
            filler = "x" * (room - len(probe.serialize_data({"a": "", "tree": deepest})))
            session = self.saved_by(call, a=filler, tree=deepest)
            assert len(session.serialize_data(dict(call(session, "items")))) == room
            assert self.stored_by(call, session) == {"a": filler, "tree": deepest}
            call(session, "set", "a", filler + "x" * (self.own_payload_bytes + 1))
            with pytest.raises(SessionTooLarge):
                call(session, "save")


engine_matrix(globals(), "DataRuleTests", (DataRuleChecks, TestCase), SERVER_SIDE)


class SignedCookiesDataRuleTests(DataRuleChecks, TestCase):
    engine = ENGINES["signed_cookies"]
    # The cookie carries the session's creation time: ',"_sessionplus":{"created_at":N}'.
    own_payload_bytes = len(',"_sessionplus":{"created_at":1700000000}')
