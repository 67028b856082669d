"""
The redis engine's per-field signatures: one HMAC-SHA256 per hash value, keys derived once.

A stored value is ``<payload>:<signature>``, the payload being what the codec made of the
value (URL-safe base64, with the compressor's marker in front when compressed); anything
else is refused before any signature is computed. The signature is the URL-safe base64
HMAC-SHA256 of ``<length of the field name>:<field name>:<payload>``: the length prefix
frames the field name whatever characters it holds, so a value signed for one field never
verifies under another. Its key is derived from the store's salt and ``SECRET_KEY`` once
per process, not once per value as ``django.core.signing`` does; ``SECRET_KEY_FALLBACKS``
still verify.

Values written before the length prefix (signed over ``<field name>:<payload>`` under a
key of their own) still verify: with the payload checked to hold no ``:``, that message
too names exactly one field. Each is rewritten in the current form when its value changes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from binascii import b2a_base64

from django.conf import settings
from django.core.signing import BadSignature
from django.utils.encoding import force_bytes

__all__ = ["BadSignature", "FieldSigner"]

_PAYLOAD_RE = re.compile(r"\.?[A-Za-z0-9_-]+")
# Separate keys for the two message forms: one form's signature is never the other's.
_FRAMED = b"redis-field-v2"
_LEGACY = b"redis-field"


@functools.lru_cache(maxsize=64)
def _key(salt: str, secret: str | bytes, form: bytes) -> hmac.HMAC:
    # Bounded by store classes x secrets x forms: the field name is in the message. Keyed
    # once: copying it skips the key schedule every value would otherwise pay.
    key = hashlib.sha256(force_bytes(salt) + form + force_bytes(secret)).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _signature(key: hmac.HMAC, message: bytes) -> bytes:
    mac = key.copy()
    mac.update(message)
    # binascii without base64.py's wrappers: this runs for every value read. 32 bytes are
    # 43 characters and one "=".
    return b2a_base64(mac.digest(), newline=False)[:-1].translate(_URLSAFE)


def _framed(field: str, payload: str) -> bytes:
    name = field.encode()
    return b"%d:%b:%b" % (len(name), name, payload.encode())


def signer(salt: str) -> FieldSigner:
    """Return the signer of a salt under the current ``SECRET_KEY`` and fallbacks."""
    return _signer(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


@functools.lru_cache(maxsize=64)
def _signer(salt: str, secret: str | bytes, fallbacks: tuple[str | bytes, ...]) -> FieldSigner:
    return FieldSigner(salt, secret, fallbacks)


class FieldSigner:
    """Signs and verifies the fields of one hash under one secret key and its fallbacks."""

    def __init__(
        self, salt: str, secret: str | bytes, fallbacks: tuple[str | bytes, ...] = ()
    ) -> None:
        secrets = (secret, *fallbacks)
        self._signing = _key(salt, secret, _FRAMED)
        self._verifying = [_key(salt, secret, _FRAMED) for secret in secrets]
        self._legacy = [_key(salt, secret, _LEGACY) for secret in secrets]

    def sign(self, field: str, payload: str) -> str:
        """Return ``payload`` as the signed text stored in hash field ``field``."""
        return f"{payload}:{_signature(self._signing, _framed(field, payload)).decode()}"

    def unsign(self, field: str, text: str) -> str:
        """Return the payload ``sign()`` stored; raise BadSignature if it did not."""
        payload, colon, signature = text.rpartition(":")
        if not colon:
            raise BadSignature("No signature.")
        if _PAYLOAD_RE.fullmatch(payload) is None:
            raise BadSignature("Malformed payload.")
        given = signature.encode()
        if not self._verifies(given, self._verifying, _framed(field, payload)):
            legacy = f"{field}:{payload}".encode()
            if not self._verifies(given, self._legacy, legacy):
                raise BadSignature("Signature does not match.")
        return payload

    @staticmethod
    def _verifies(given: bytes, keys: list[hmac.HMAC], message: bytes) -> bool:
        return any(hmac.compare_digest(given, _signature(key, message)) for key in keys)
