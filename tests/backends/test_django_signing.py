"""Django's signed format with keys derived once: byte for byte what django.core.signing does."""

from __future__ import annotations

import json
import os

import pytest
from django.core import signing
from django.test import SimpleTestCase, override_settings
from freezegun import freeze_time

from sessionplus.backends.db import SessionStore
from sessionplus.backends.django_signing import (
    COMPRESS_MIN_LENGTH,
    BadSignature,
    b64_decode,
    b64_encode,
    json_loads,
    kept_until_secrets_change,
    signer,
)

SALT = "tests.django_signing"
# Compresses well, and is longer than the threshold.
LARGE = {"text": "abc" * COMPRESS_MIN_LENGTH}
SMALL = {"a": 1, "b": [1, 2, {"c": None}], "é": "ü"}


def serialized(data: dict) -> bytes:
    return signing.JSONSerializer().dumps(data)


class ReverseSerializer:
    """A SESSION_SERIALIZER that is not Django's JSON one: JSON, stored backwards."""

    def dumps(self, obj: object) -> bytes:
        return json.dumps(obj).encode()[::-1]

    def loads(self, data: bytes) -> object:
        return json.loads(data[::-1])


@freeze_time("2026-12-06 01:02:03")
class SignTests(SimpleTestCase):
    def test_with_djangos_rule_the_text_is_djangos_byte_for_byte(self):
        for data in (SMALL, LARGE):
            assert signer(SALT).dumps(serialized(data), 0) == signing.dumps(
                data, salt=SALT, compress=True
            )

    def test_data_under_the_threshold_is_stored_uncompressed_and_django_reads_it(self):
        text = signer(SALT).dumps(serialized(SMALL))
        assert not text.startswith(".")
        assert text == signing.dumps(SMALL, salt=SALT, compress=False)
        assert signing.loads(text, salt=SALT) == SMALL

    def test_larger_data_is_compressed_as_django_compresses_it(self):
        text = signer(SALT).dumps(serialized(LARGE))
        assert text.startswith(".")
        assert text == signing.dumps(LARGE, salt=SALT, compress=True)

    def test_data_that_does_not_shrink_stays_uncompressed(self):
        random_bytes = os.urandom(2 * COMPRESS_MIN_LENGTH)
        text = signer(SALT).dumps(random_bytes)
        assert not text.startswith(".")
        assert b64_decode(signer(SALT).unsign(text)[0]) == random_bytes

    def test_plain_signs_a_json_object_as_it_is(self):
        data = serialized(SMALL)
        text = signer(SALT).dumps(data, plain=True)
        assert text.rsplit(":", 2)[0].encode() == data
        assert signer(SALT).loads(text, signing.JSONSerializer) == SMALL

    def test_plain_keeps_djangos_form_for_anything_else(self):
        other_serializer = ReverseSerializer().dumps(SMALL)  # not a JSON object
        not_ascii = '{"é": 1}'.encode()
        for data in (other_serializer, not_ascii, serialized(LARGE)):
            assert signer(SALT).dumps(data, plain=True) == signer(SALT).dumps(data), data[:10]
        assert signer(SALT).dumps(serialized(LARGE), plain=True).startswith(".")


class LoadTests(SimpleTestCase):
    def test_a_changed_byte_of_a_plain_payload_fails_the_signature(self):
        text = signer(SALT).dumps(serialized({"a": 1}), plain=True)
        assert signer(SALT).loads(text, signing.JSONSerializer) == {"a": 1}
        with pytest.raises(BadSignature, match="does not match"):
            signer(SALT).loads(text.replace('"a":1', '"a":2'), signing.JSONSerializer)

    def test_reads_what_django_signed_compressed_or_not(self):
        for data in (SMALL, LARGE):
            for compress in (True, False):
                text = signing.dumps(data, salt=SALT, compress=compress)
                assert signer(SALT).loads(text, signing.JSONSerializer) == data

    def test_another_serializer_is_called_for_the_data(self):
        text = signer(SALT).dumps(ReverseSerializer().dumps(SMALL))
        assert signer(SALT).loads(text, ReverseSerializer) == SMALL

    def test_another_salt_or_a_changed_byte_fails_the_signature(self):
        text = signing.dumps(SMALL, salt=SALT)
        with pytest.raises(BadSignature, match="does not match"):
            signer("another salt").loads(text, signing.JSONSerializer)
        payload, rest = text.split(":", 1)
        with pytest.raises(BadSignature):
            signer(SALT).loads(payload[:-1] + "A" + ":" + rest, signing.JSONSerializer)

    def test_text_without_a_separator_or_a_timestamp_is_refused(self):
        with pytest.raises(BadSignature, match="No"):
            signer(SALT).unsign("no separator at all")
        # Signed, but by a Signer without a timestamp.
        untimed = signing.Signer(salt=SALT).sign("payload")
        with pytest.raises(BadSignature, match="No timestamp"):
            signer(SALT).unsign(untimed)

    def test_unsign_returns_the_payload_and_djangos_timestamp(self):
        with freeze_time("2026-12-06 01:02:03"):
            text = signing.dumps(SMALL, salt=SALT, compress=False)
            payload, timestamp = signer(SALT).unsign(text)
        assert json.loads(b64_decode(payload)) == SMALL
        assert signing.b62_decode(timestamp.decode()) == 1796518923


class SecretsTests(SimpleTestCase):
    def test_a_fallback_key_still_verifies_and_a_removed_one_does_not(self):
        with override_settings(SECRET_KEY="old-secret-" * 5):
            text = signer(SALT).dumps(serialized(SMALL))
        with override_settings(
            SECRET_KEY="new-secret-" * 5, SECRET_KEY_FALLBACKS=["old-secret-" * 5]
        ):
            assert signer(SALT).loads(text, signing.JSONSerializer) == SMALL
            assert signing.loads(signer(SALT).dumps(serialized(SMALL)), salt=SALT) == SMALL
        with override_settings(SECRET_KEY="new-secret-" * 5), pytest.raises(BadSignature):
            signer(SALT).loads(text, signing.JSONSerializer)


class KeptUntilSecretsChangeTests(SimpleTestCase):
    def test_a_result_is_computed_once_until_a_secret_setting_changes(self):
        computed = []

        @kept_until_secrets_change(maxsize=8)
        def derived(salt: str) -> tuple[str, int]:
            computed.append(salt)
            return salt, len(computed)

        assert derived("a") is derived("a")
        assert computed == ["a"]
        with override_settings(SECRET_KEY="another-secret-" * 4):
            assert derived("a") == ("a", 2)
        with override_settings(SECRET_KEY_FALLBACKS=["an-old-secret-" * 4]):
            assert derived("a") == ("a", 3)
        # The end of an override changes the setting back: computed anew.
        restored = derived("a")
        assert restored == ("a", 4)
        with override_settings(DEBUG=True):
            assert derived("a") is restored  # another setting's change leaves it be
        assert computed == ["a"] * 4

    def test_the_signer_and_its_keys_follow_the_secret(self):
        before = signer(SALT)
        assert signer(SALT) is before
        with override_settings(SECRET_KEY="rotated-secret-" * 4):
            rotated = signer(SALT)
            assert rotated is not before
            assert signing.loads(rotated.dumps(serialized(SMALL)), salt=SALT) == SMALL


class Base64Tests(SimpleTestCase):
    def test_matches_djangos_urlsafe_unpadded_base64(self):
        for length in range(0, 70):
            data = bytes(range(256))[:length] * 3
            assert b64_encode(data) == signing.b64_encode(data)
            assert b64_decode(b64_encode(data)) == data


class JsonLoadsTests(SimpleTestCase):
    def test_reads_what_json_loads_reads_compact_or_not(self):
        for text in ('{"a":[1,2.5,null,true,"\\u00e9"]}', ' {"a": 1}\n', '"x"', "0", "null"):
            assert json_loads(text) == json.loads(text), text

    def test_refuses_what_json_loads_refuses_with_the_same_message(self):
        for text in ("", "{", '{"a":}', '{"a":1}x', "nul", "[1,]"):
            with pytest.raises(json.JSONDecodeError) as refused:
                json_loads(text)
            with pytest.raises(json.JSONDecodeError) as expected:
                json.loads(text)
            assert str(refused.value) == str(expected.value), text


class RememberedTextsTests(SimpleTestCase):
    def test_a_text_that_verified_is_remembered_and_a_changed_byte_still_fails(self):
        text = signer(SALT).dumps(serialized(SMALL), plain=True)
        assert signer(SALT).loads(text, signing.JSONSerializer) == SMALL
        assert text in signer(SALT)._verified
        assert signer(SALT).loads(text, signing.JSONSerializer) == SMALL
        changed = text.replace('"a":1', '"a":2')
        assert changed != text
        with pytest.raises(BadSignature):
            signer(SALT).loads(changed, signing.JSONSerializer)
        assert changed not in signer(SALT)._verified

    def test_a_remembered_text_verifies_no_more_once_its_secret_is_gone(self):
        with override_settings(SECRET_KEY="first-secret"):
            text = signer(SALT).dumps(serialized(SMALL))
            assert signer(SALT).loads(text, signing.JSONSerializer) == SMALL
            assert text in signer(SALT)._verified
        with override_settings(SECRET_KEY="second-secret"), pytest.raises(BadSignature):
            signer(SALT).loads(text, signing.JSONSerializer)

    def test_a_flat_session_decodes_once_and_each_load_gets_a_dict_of_its_own(self):
        flat = {"a": 1, "b": "two", "c": None, "d": 1.5, "e": True}
        text = signer(SALT).dumps(serialized(flat), plain=True)
        first = signer(SALT).loads(text, signing.JSONSerializer)
        assert (signing.JSONSerializer, text) in signer(SALT)._decoded
        second = signer(SALT).loads(text, signing.JSONSerializer)
        assert first == second == flat
        assert first is not second
        second["a"] = 2
        assert signer(SALT).loads(text, signing.JSONSerializer) == flat

    def test_a_session_holding_a_list_or_a_dict_is_decoded_at_each_load(self):
        text = signer(SALT).dumps(serialized(SMALL), plain=True)
        first = signer(SALT).loads(text, signing.JSONSerializer)
        assert (signing.JSONSerializer, text) not in signer(SALT)._decoded
        first["b"].append("changed")
        assert signer(SALT).loads(text, signing.JSONSerializer) == SMALL

    def test_a_text_is_decoded_again_under_another_serializer(self):
        flat = {"a": 1}
        text = signer(SALT).dumps(ReverseSerializer().dumps(flat), plain=True)
        assert signer(SALT).loads(text, ReverseSerializer) == flat
        with pytest.raises(json.JSONDecodeError):
            signer(SALT).loads(text, signing.JSONSerializer)

    def test_a_flat_session_a_store_encodes_is_remembered_decoded_for_json_only(self):
        flat = {"a": 1, "b": "two", "c": None, "d": -0.5, "e": False}
        store = SessionStore()
        text = store.encode(flat, plain=True)
        assert signer(store.key_salt)._decoded[(signing.JSONSerializer, text)] == flat
        loaded = signer(store.key_salt).loads(text, signing.JSONSerializer)
        assert loaded == flat
        assert json.loads(text.rpartition(":")[0].rpartition(":")[0]) == flat
        signer(store.key_salt).remember_decoded(text, ReverseSerializer, flat)
        assert (ReverseSerializer, text) not in signer(store.key_salt)._decoded
        nested = store.encode({"a": [1]}, plain=True)
        assert (signing.JSONSerializer, nested) not in signer(store.key_salt)._decoded
