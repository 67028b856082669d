"""Random text for keys and tokens: Django's get_random_string() with one OS call."""

from __future__ import annotations

import collections
from unittest import mock

import pytest
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.test import SimpleTestCase
from django.utils.crypto import RANDOM_STRING_CHARS

from sessionplus import randomness
from sessionplus.randomness import random_string


class RandomStringTests(SimpleTestCase):
    def test_length_and_alphabet_are_those_asked_for(self):
        for length, alphabet in ((32, VALID_KEY_CHARS), (8, RANDOM_STRING_CHARS), (100, "ab")):
            text = random_string(length, alphabet)
            assert len(text) == length
            assert set(text) <= set(alphabet)
        assert set(random_string(500)) <= set(RANDOM_STRING_CHARS)

    def test_keys_do_not_repeat(self):
        keys = {random_string(32, VALID_KEY_CHARS) for _ in range(2000)}
        assert len(keys) == 2000

    def test_every_character_is_about_equally_likely(self):
        # 36 characters: bytes 252-255 would make the first four likelier if folded in.
        counts = collections.Counter(random_string(36 * 4000, VALID_KEY_CHARS))
        assert set(counts) == set(VALID_KEY_CHARS)
        # 4000 expected each; 5.5 standard deviations (about 340) either way.
        assert max(counts.values()) - min(counts.values()) < 700, counts

    def test_bytes_that_would_bias_the_alphabet_are_dropped_and_replaced(self):
        # A fault the OS never produces on demand: a draw of only unusable bytes first.
        draws = iter([bytes([255]) * 40, bytes(range(40))])
        with mock.patch.object(randomness.secrets, "token_bytes", lambda n: next(draws)[:n]):
            text = random_string(32, VALID_KEY_CHARS)
        assert text == VALID_KEY_CHARS[:32]

    def test_an_alphabet_that_cannot_be_drawn_from_is_refused(self):
        for alphabet in ("", "a", "é" * 10, "a" * 257):
            with pytest.raises(ValueError, match="2 to 256 ASCII"):
                random_string(4, alphabet)
