"""
The Redis engine's per-field signatures: one HMAC-SHA256 per hash value, keys derived once.

A stored value is ``<payload>:<signature>``. The payload is the serialized value in
URL-safe base64, or ``.`` and the base64 of its zlib compression when the value is larger
than ``COMPRESS_ABOVE`` bytes and compression makes it shorter; anything else is refused
before any signature is computed. The signature is the URL-safe base64 HMAC-SHA256 of
``<length of the field name>:<field name>:<payload>``: the length prefix frames the field
name whatever characters it holds, so a value signed for one field never verifies under
another. Its key is derived from the store's salt and ``SECRET_KEY`` once per process, not
once per value as ``django.core.signing`` does; ``SECRET_KEY_FALLBACKS`` still verify.

Values written before the length prefix (signed over ``<field name>:<payload>`` under a
key of their own) still verify: with the payload checked to hold no ``:``, that message
too names exactly one field. Each is rewritten in the current form when its value changes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import zlib
from base64 import urlsafe_b64decode, urlsafe_b64encode

from django.conf import settings
from django.core.signing import BadSignature, b64_encode
from django.utils.encoding import force_bytes

__all__ = ["BadSignature", "FieldSigner"]

# Smaller values rarely compress, and zlib costs more than the bytes it saves.
COMPRESS_ABOVE = 1024
COMPRESSED = "."
_PAYLOAD_RE = re.compile(r"\.?[A-Za-z0-9_-]+")
# Separate keys for the two message forms: one form's signature is never the other's.
_FRAMED = b"redis-field-v2"
_LEGACY = b"redis-field"


@functools.lru_cache(maxsize=64)
def _keyed_mac(salt: str, secret: str | bytes, form: bytes) -> hmac.HMAC:
    # Bounded by store classes x secrets x forms: the field name is in the message.
    key = hashlib.sha256(force_bytes(salt) + form + force_bytes(secret)).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def _signature(keyed: hmac.HMAC, message: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(message)
    return urlsafe_b64encode(mac.digest()).rstrip(b"=")


def _framed(field: str, payload: str) -> bytes:
    name = field.encode()
    return b"%d:%b:%b" % (len(name), name, payload.encode())


def _b64_decode(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FieldSigner:
    """Signs and verifies the fields of one hash; the settings are read once, on creation."""

    def __init__(self, salt: str) -> None:
        secrets = (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)
        self._signing = _keyed_mac(salt, settings.SECRET_KEY, _FRAMED)
        self._verifying = [_keyed_mac(salt, secret, _FRAMED) for secret in secrets]
        self._legacy = [_keyed_mac(salt, secret, _LEGACY) for secret in secrets]

    def sign(self, field: str, serialized: bytes) -> str:
        """Return ``serialized`` as the signed text stored in hash field ``field``."""
        payload = b64_encode(serialized).decode()
        if len(serialized) > COMPRESS_ABOVE:
            compressed = COMPRESSED + b64_encode(zlib.compress(serialized)).decode()
            if len(compressed) < len(payload):
                payload = compressed
        signature = _signature(self._signing, _framed(field, payload))
        return f"{payload}:{signature.decode()}"

    def unsign(self, field: str, text: str) -> bytes:
        """Return the serialized bytes ``sign()`` stored; raise BadSignature if they are not."""
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
        if payload.startswith(COMPRESSED):
            return zlib.decompress(_b64_decode(payload[1:]))
        return _b64_decode(payload)

    @staticmethod
    def _verifies(given: bytes, keys: list[hmac.HMAC], message: bytes) -> bool:
        return any(hmac.compare_digest(given, _signature(key, message)) for key in keys)
