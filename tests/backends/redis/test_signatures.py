"""The redis engine's field signatures: framed so that no value verifies under another field."""

from __future__ import annotations

import hashlib
import hmac
import os
from base64 import urlsafe_b64encode

import pytest
from django.conf import settings
from django.core.signing import b64_encode
from django.test import SimpleTestCase, override_settings

from sessionplus.backends.redis import SessionStore
from sessionplus.backends.redis.signatures import BadSignature, FieldSigner, signer
from tests.backends.redis.test_engine import redis, saved, stored
from tests.support.redis_layout import set_field

SALT = SessionStore().key_salt


def sign(field_signer: FieldSigner, field: str, payload: str) -> str:
    return field_signer.signed(field.encode(), payload.encode()).decode()


def unsign(field_signer: FieldSigner, field: str, text: str) -> str:
    return field_signer.verified(field.encode(), text.encode()).decode()


def payload(serialized: bytes) -> str:
    return b64_encode(serialized).decode()


def hmac_signed(field: str, payload: str, secret: str | bytes | None = None) -> str:
    """Sign as hmac.new() does: what every release since the length prefix stored."""
    secret = settings.SECRET_KEY if secret is None else secret
    secret = secret if isinstance(secret, bytes) else secret.encode()
    key = hashlib.sha256(SALT.encode() + b"redis-field-v2" + secret).digest()
    message = b"%d:%b:%b" % (len(field.encode()), field.encode(), payload.encode())
    mac = hmac.new(key, message, hashlib.sha256).digest()
    return f"{payload}:{urlsafe_b64encode(mac).rstrip(b'=').decode()}"


class FieldSignerTests(SimpleTestCase):
    def test_signatures_are_hmac_sha256_as_hmac_new_computes_them(self):
        # Any field name, payload length (one hash block, several) and kind of secret.
        for secret in ("s", "a-longer-secret-key-" * 8, b"\xffbytes"):
            field_signer = FieldSigner(SALT, secret)
            for field in ("d:a", "m:created_at", "d:ключ", "d:" + "k" * 200):
                for serialized in (b"1", b'"x"' * 30, os.urandom(3000)):
                    expected = hmac_signed(field, payload(serialized), secret)
                    assert sign(field_signer, field, payload(serialized)) == expected
                    assert unsign(field_signer, field, expected) == payload(serialized)

    def test_a_fallback_key_verifies_and_the_current_key_signs(self):
        old = hmac_signed("d:a", payload(b"1"), "old-secret")
        rotated = FieldSigner(SALT, "new-secret", ("older-secret", "old-secret"))
        assert unsign(rotated, "d:a", old) == payload(b"1")
        signed = sign(rotated, "d:a", payload(b"1"))
        assert signed == hmac_signed("d:a", payload(b"1"), "new-secret")
        with pytest.raises(BadSignature):
            unsign(FieldSigner(SALT, "new-secret"), "d:a", old)

    def test_the_signer_is_made_once_per_secret(self):
        current = signer(SALT)
        assert signer(SALT) is current
        text = sign(current, "d:a", payload(b"1"))
        with override_settings(SECRET_KEY="rotated-secret-" * 4):
            rotated = signer(SALT)
            assert rotated is not current
            with pytest.raises(BadSignature):
                unsign(rotated, "d:a", text)
        assert unsign(signer(SALT), "d:a", text) == payload(b"1")

    def test_bytes_and_text_verify_alike(self):
        field_signer = signer(SALT)
        text = sign(field_signer, "d:a", payload(b"[1]"))
        assert field_signer.verified(b"d:a", text.encode()) == payload(b"[1]").encode()
        assert field_signer.signed(b"d:a", payload(b"[1]").encode()) == text.encode()
        with pytest.raises(BadSignature):
            field_signer.verified(b"d:a", b"\xff\xfe:" + text.encode().rpartition(b":")[2])

    def test_a_value_signed_for_a_field_with_a_colon_does_not_verify_under_its_prefix(self):
        # Unframed, "d:a:b" + ":" + P equals "d:a" + ":" + "b:P": the same signed message.
        field_signer = signer(SALT)
        admin, signature = sign(field_signer, "d:a:b", payload(b'"admin"')).split(":")
        with pytest.raises(BadSignature):
            unsign(field_signer, "d:a", f"b:{admin}:{signature}")
        assert unsign(field_signer, "d:a:b", f"{admin}:{signature}") == admin

    def test_a_value_signed_for_one_field_does_not_verify_under_any_other(self):
        field_signer = signer(SALT)
        text = sign(field_signer, "d:role", payload(b'"admin"'))
        for other in ("d:rol", "d:rolee", "m:role", "d:role:", "2:d:role", ""):
            with pytest.raises(BadSignature):
                unsign(field_signer, other, text)

    def test_a_payload_outside_the_base64_alphabet_never_verifies(self):
        field_signer = signer(SALT)
        text = sign(field_signer, "d:a", payload(b"1"))
        one, signature = text.split(":")
        for bad in (f"{one}=:{signature}", f"x:{text}", f":{signature}", f".:{signature}"):
            with pytest.raises(BadSignature):
                unsign(field_signer, "d:a", bad)

    def test_a_value_signed_in_the_earlier_unframed_form_never_verifies(self):
        # Over "<field name>:<payload>", under a key of its own: a form "d:a:b" + P and
        # "d:a" + "b:P" shared, so that a value could be moved across fields.
        serialized_payload = payload(b'["apple"]')
        key = hashlib.sha256(f"{SALT}redis-field{settings.SECRET_KEY}".encode()).digest()
        mac = hmac.new(key, f"d:cart:{serialized_payload}".encode(), hashlib.sha256).digest()
        unframed = f"{serialized_payload}:{b64_encode(mac).decode()}"
        with pytest.raises(BadSignature):
            unsign(signer(SALT), "d:cart", unframed)


@pytest.mark.usefixtures("redis_db")
class StoredSignatureTests(SimpleTestCase):
    def test_a_value_moved_under_a_shorter_field_name_is_no_session_and_logged(self):
        key = saved(**{"a:b": "admin", "a": "guest"}).session_key
        forged = b"b:" + stored(key)["d:a:b"]
        set_field(redis(), SessionStore.redis_key(key), "d:a", forged)
        with self.assertLogs("django.security.SuspiciousSession", "WARNING") as logs:
            assert list(SessionStore(key).keys()) == []
        assert "signature" in logs.output[0]
