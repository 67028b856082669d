"""What every engine inherits from ``SessionPlusBase``: the key's shape, encoding, decoding."""

from __future__ import annotations

from django.contrib.sessions.backends.base import SessionBase
from django.test import SimpleTestCase

from sessionplus.backends.base import SessionPlusBase, is_valid_session_key


class SessionKeyTests(SimpleTestCase):
    def test_only_the_exact_shape_of_a_key_django_generates_is_valid(self):
        assert is_valid_session_key("a1" * 16)
        for key in (None, 1, "a1" * 15, "a1" * 17, "A1" * 16, "a-" * 16, "a1" * 15 + "a\n"):
            assert not is_valid_session_key(key), key

    def test_new_keys_have_that_shape(self):
        session = SessionPlusBase()
        keys = {session._get_new_session_key() for _ in range(10)}
        assert len(keys) == 10
        assert all(is_valid_session_key(key) for key in keys)


class EncodingTests(SimpleTestCase):
    def test_encoded_data_is_what_django_would_encode(self):
        # The same signing format as Django's SessionBase, so either decodes the other's.
        session = SessionPlusBase()
        encoded = session.encode({"a": 1})
        assert SessionBase.decode(session, encoded) == {"a": 1}
        assert session.decode(SessionBase.encode(session, {"b": 2})) == {"b": 2}

    def test_data_that_fails_its_signature_decodes_to_nothing_and_is_logged(self):
        session = SessionPlusBase()
        encoded = session.encode({"a": 1})
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            assert session.decode(encoded[:-1] + ("A" if encoded[-1] != "A" else "B")) == {}
        assert "Session data corrupted: failed its signature check" in logs.output[0]
