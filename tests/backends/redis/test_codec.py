"""The redis engine's field codec: serializer, then compressor, then signature."""

from __future__ import annotations

import os
import zlib

import pytest
from django.contrib.sessions.serializers import JSONSerializer
from django.test import SimpleTestCase

from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis.codec import FieldCodec
from sessionplus.backends.redis.compressors import BaseCompressor, ZlibCompressor
from sessionplus.backends.redis.signatures import BadSignature, signer


def codec(compressor: BaseCompressor | None = None) -> FieldCodec:
    field_signer = signer(SessionStore().key_salt)
    return FieldCodec(JSONSerializer(), field_signer, compressor or ZlibCompressor())


class ReversedCompressor(BaseCompressor):
    """A compressor of another kind: proves the codec takes any."""

    marker = "."

    def compress(self, value: bytes) -> bytes | None:
        return value[::-1]

    def decompress(self, value: bytes) -> bytes:
        return value[::-1]


class FieldCodecTests(SimpleTestCase):
    def test_a_value_reads_back_with_its_serialized_form(self):
        text = codec().dumps("d:cart", ["apple"])
        assert codec().decode("d:cart", text.encode()) == (["apple"], b'["apple"]')

    def test_a_large_value_that_compresses_is_stored_compressed(self):
        value = "the same words again " * 200
        text = codec().dumps("d:text", value)
        assert text.startswith(".")
        assert len(text) < len(value) // 4
        assert codec().loads("d:text", text) == value

    def test_a_large_value_that_does_not_compress_is_stored_as_it_is(self):
        serialized = os.urandom(2000)
        text = codec().encode("d:blob", serialized)
        assert not text.startswith(".")
        assert codec().signer.unsign("d:blob", text)[0] != "."

    def test_a_small_value_is_never_compressed(self):
        assert ZlibCompressor().compress(b"a" * ZlibCompressor.min_length) is None

    def test_another_compressor_plugs_in_with_its_marker(self):
        text = codec(ReversedCompressor()).dumps("d:a", "xyz")
        assert text.startswith(".")
        assert codec(ReversedCompressor()).loads("d:a", text) == "xyz"
        assert codec().loads("d:a", codec().dumps("d:a", "xyz")) == "xyz"
        with pytest.raises(zlib.error):
            codec().loads("d:a", text)  # zlib cannot read what another compressor wrote

    def test_a_value_under_another_field_fails_its_signature(self):
        text = codec().dumps("d:role", "admin")
        with pytest.raises(BadSignature):
            codec().loads("d:rol", text)

    def test_the_base_compressor_is_abstract(self):
        with pytest.raises(NotImplementedError):
            BaseCompressor().compress(b"")
        with pytest.raises(NotImplementedError):
            BaseCompressor().decompress(b"")
