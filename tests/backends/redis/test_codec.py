"""The redis engine's field codec: serializer, then compressor, then signature."""

from __future__ import annotations

import json
import os
import zlib
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.serializers import JSONSerializer
from django.core.signing import b64_encode
from django.test import SimpleTestCase, override_settings

from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis.codec import FieldCodec, codec_for
from sessionplus.backends.redis.compressors import BaseCompressor, ZlibCompressor
from sessionplus.backends.redis.signatures import BadSignature, signer
from tests.backends.redis.test_signatures import hmac_signed

VALUES: list[Any] = [
    0,
    -1.5e300,
    True,
    None,
    "",
    "ünïcødé \u2028 \U0001f600 \x00",
    ["a", {"b": [1, 2.0, None]}],
    {"nested": {"k": "v" * 500}},
    "the same words again " * 200,  # compressed
]


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
        assert codec().decode("d:cart", text) == (["apple"], b'["apple"]')

    def test_a_large_value_that_compresses_is_stored_compressed(self):
        value = "the same words again " * 200
        text = codec().dumps("d:text", value)
        assert text.startswith(b".")
        assert len(text) < len(value) // 4
        assert codec().loads("d:text", text) == value

    def test_a_large_value_that_does_not_compress_is_stored_as_it_is(self):
        serialized = os.urandom(2000)
        text = codec().encode(b"d:blob", serialized)
        assert not text.startswith(b".")
        assert codec().signer.verified(b"d:blob", text)[:1] != b"."

    def test_a_small_value_is_never_compressed(self):
        assert ZlibCompressor().compress(b"a" * ZlibCompressor.min_length) is None

    def test_another_compressor_plugs_in_with_its_marker(self):
        text = codec(ReversedCompressor()).dumps("d:a", "xyz")
        assert text.startswith(b".")
        assert codec(ReversedCompressor()).loads("d:a", text) == "xyz"
        assert codec().loads("d:a", codec().dumps("d:a", "xyz")) == "xyz"
        with pytest.raises(zlib.error):
            codec().loads("d:a", text)  # zlib cannot read what another compressor wrote

    def test_a_value_under_another_field_fails_its_signature(self):
        text = codec().dumps("d:role", "admin")
        with pytest.raises(BadSignature):
            codec().loads("d:rol", text)

    def test_stored_text_holds_a_value_when_its_payload_is_that_values(self):
        for value in VALUES:
            text = codec().dumps("d:v", value)
            serialized = codec().serialize(value)
            assert codec().stores(text, serialized)
            # The signature is not what is compared: any, or none valid, will do.
            assert codec().stores(text.rpartition(b":")[0] + b":forged", serialized)
            assert not codec().stores(text, codec().serialize(["something", "else"]))
        assert not codec().stores(b"no signature at all", b'"no signature at all"')

    def test_the_base_compressor_is_abstract(self):
        with pytest.raises(NotImplementedError):
            BaseCompressor().compress(b"")
        with pytest.raises(NotImplementedError):
            BaseCompressor().decompress(b"")


class DecodedTextTests(SimpleTestCase):
    def test_a_text_read_again_gives_the_same_text_or_number_and_a_list_of_its_own(self):
        field_codec = codec()
        for value in ("x" * 40, 1.5, None):
            text = field_codec.dumps("d:v", value)
            first, second = field_codec.decode("d:v", text), field_codec.decode("d:v", text)
            assert first == second == (value, JSONSerializer().dumps(value))
            assert first[0] is second[0]
        text = field_codec.dumps("d:v", ["a"])
        first_list, second_list = (field_codec.loads("d:v", text) for _ in range(2))
        assert first_list == second_list == ["a"]
        assert first_list is not second_list

    def test_a_remembered_text_under_another_field_or_changed_still_fails(self):
        field_codec = codec()
        text = field_codec.dumps("d:v", "value")
        assert field_codec.loads("d:v", text) == "value"
        with pytest.raises(BadSignature):
            field_codec.loads("d:w", text)
        with pytest.raises(BadSignature):
            field_codec.loads("d:v", text[:-1] + (b"A" if text[-1:] != b"A" else b"B"))


class TaggedSerializer(JSONSerializer):
    """A serializer of its own: the codec calls it rather than json directly."""

    def dumps(self, obj: Any) -> bytes:
        return b"T" + super().dumps(obj)

    def loads(self, data: bytes) -> Any:
        assert data[:1] == b"T"
        return super().loads(data[1:])


class UnhashableCompressor(ZlibCompressor):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnhashableCompressor)

    __hash__ = None  # type: ignore[assignment]


class StoredTextTests(SimpleTestCase):
    def test_the_stored_text_is_json_then_zlib_then_hmac_signed_urlsafe_base64(self):
        # What every release stored, computed here with json, zlib, base64 and hmac.new().
        for value in VALUES:
            serialized = json.dumps(value, separators=(",", ":")).encode("latin-1")
            compressed = zlib.compress(serialized)
            if len(serialized) > ZlibCompressor.min_length and len(compressed) < len(serialized):
                expected = hmac_signed("d:v", "." + b64_encode(compressed).decode())
            else:
                expected = hmac_signed("d:v", b64_encode(serialized).decode())
            assert codec().dumps("d:v", value) == expected.encode()
            assert codec().serialize(value) == JSONSerializer().dumps(value)
            assert codec().decode("d:v", expected.encode()) == (value, serialized)
            assert codec().decode("d:v", expected) == (value, serialized)
        assert any(codec().dumps("d:v", value).startswith(b".") for value in VALUES)

    def test_json_values_read_as_json_loads_reads_them(self):
        for serialized in (b'{"a":1,"a":2}', b" [1] ", b'"\\ud800"', b"1e999", b"-Infinity"):
            text = codec().encode(b"d:v", serialized)
            assert codec().loads("d:v", text) == JSONSerializer().loads(serialized)
        for garbage in (b"[1] [2]", b"\xef\xbb\xbf1", b" ", b"{"):
            text = codec().encode(b"d:v", garbage)
            with pytest.raises(json.JSONDecodeError):
                JSONSerializer().loads(garbage)
            with pytest.raises(json.JSONDecodeError):
                codec().loads("d:v", text)

    def test_a_value_json_refuses_is_refused_alike(self):
        for value in ({1j}, object(), {(1, 2): 3}):
            with pytest.raises(TypeError):
                JSONSerializer().dumps(value)
            with pytest.raises(TypeError):
                codec().serialize(value)

    def test_another_serializer_is_called_for_every_value(self):
        tagged = FieldCodec(TaggedSerializer(), signer(SessionStore().key_salt), ZlibCompressor())
        assert tagged.serialize(["a"]) == b'T["a"]'
        assert tagged.decode("d:a", tagged.dumps("d:a", ["a"])) == (["a"], b'T["a"]')


class StoreCodecTests(SimpleTestCase):
    def test_a_store_codec_is_kept_until_the_secrets_change(self):
        salt, compressor = SessionStore().key_salt, SessionStore.compressor
        first = codec_for(JSONSerializer, salt, compressor)
        assert codec_for(JSONSerializer, salt, compressor) is first
        text = first.dumps("d:a", 1)
        old_secret = settings.SECRET_KEY
        with override_settings(SECRET_KEY="a-rotated-secret-key-for-this-test-only"):
            rotated = codec_for(JSONSerializer, salt, compressor)
            assert rotated.dumps("d:a", 1) != text
            with pytest.raises(BadSignature):
                rotated.loads("d:a", text)
            with override_settings(SECRET_KEY_FALLBACKS=["unrelated", old_secret]):
                assert codec_for(JSONSerializer, salt, compressor).loads("d:a", text) == 1
        assert codec_for(JSONSerializer, salt, compressor).dumps("d:a", 1) == text

    def test_an_unhashable_compressor_gets_a_codec_of_its_own(self):
        salt = SessionStore().key_salt
        unhashable = codec_for(JSONSerializer, salt, UnhashableCompressor())
        assert unhashable.loads("d:a", codec().dumps("d:a", "x" * 3000)) == "x" * 3000
