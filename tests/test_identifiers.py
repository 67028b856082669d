from __future__ import annotations

from django.test import SimpleTestCase

from sessionplus.identifiers import PUBLIC_ID_LENGTH, log_id, public_id


class PublicIdTests(SimpleTestCase):
    def test_public_id_is_stable_for_a_key(self) -> None:
        assert public_id("a" * 32) == public_id("a" * 32)

    def test_public_id_differs_between_keys_and_never_contains_the_key(self) -> None:
        first, second = public_id("a" * 32), public_id("b" * 32)
        assert first != second
        assert "a" * 8 not in first
        assert len(first) == PUBLIC_ID_LENGTH


class LogIdTests(SimpleTestCase):
    def test_log_id_is_a_short_stable_digest_that_never_contains_the_key(self) -> None:
        assert log_id("a" * 32) == log_id("a" * 32)
        assert log_id("a" * 32) != log_id("b" * 32)
        assert len(log_id("a" * 32)) == 12
        assert "aaaa" not in log_id("a" * 32)
        assert len(log_id(None)) == 12
