"""
The redis engine's per-field signatures: one HMAC-SHA256 per hash value, keys derived once.

A stored value is ``<payload>:<signature>``, the payload being what the codec made of the
value (URL-safe base64, with the compressor's marker in front when compressed); anything
else never verifies, and is refused before the earlier form is tried. The signature is the
URL-safe base64 HMAC-SHA256 of ``<length of the field name>:<field name>:<payload>``: the
length prefix frames the field name whatever characters it holds, so a value signed for
one field never verifies under another. Its key is derived from the store's salt and
``SECRET_KEY`` once per process, not once per value as ``django.core.signing`` does;
``SECRET_KEY_FALLBACKS`` still verify.

Values written before the length prefix (signed over ``<field name>:<payload>`` under a
key of their own) still verify: with the payload checked to hold no ``:``, that message
too names exactly one field. Each is rewritten in the current form when its value changes.
"""

from __future__ import annotations

import re
from hmac import compare_digest
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.signing import BadSignature
from django.utils.encoding import force_bytes

from sessionplus.backends.django_signing import hmac_key, kept_until_secrets_change, signature

if TYPE_CHECKING:
    from sessionplus.backends.django_signing import Key

__all__ = ["BadSignature", "FieldSigner"]

_PAYLOAD_RE = re.compile(rb"\.?[A-Za-z0-9_-]+")
# Separate keys for the two message forms: one form's signature is never the other's.
_FRAMED = b"redis-field-v2"
_LEGACY = b"redis-field"


def _key(salt: str, secret: str | bytes, form: bytes) -> Key:
    # The field name is in the message: one key per salt, form and secret.
    return hmac_key(force_bytes(salt) + form + force_bytes(secret))


@kept_until_secrets_change(maxsize=64)
def signer(salt: str) -> FieldSigner:
    """Return the signer of a salt under the current ``SECRET_KEY`` and fallbacks."""
    return FieldSigner(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


class FieldSigner:
    """Signs and verifies the fields of one hash under one secret key and its fallbacks."""

    def __init__(
        self, salt: str, secret: str | bytes, fallbacks: tuple[str | bytes, ...] = ()
    ) -> None:
        secrets = (secret, *fallbacks)
        self._signing = _key(salt, secret, _FRAMED)
        self._verifying = [_key(salt, secret, _FRAMED) for secret in secrets]
        self._legacy = [_key(salt, secret, _LEGACY) for secret in secrets]

    def signed(self, name: bytes, payload: bytes) -> bytes:
        """Return the signed text stored in hash field ``name`` for ``payload``."""
        message = b"%d:%b:%b" % (len(name), name, payload)
        return b"%b:%b" % (payload, signature(self._signing, message))

    def verified(self, name: bytes, stored: bytes) -> bytes:
        """Return the payload ``signed()`` stored; raise BadSignature if it did not."""
        payload, colon, given = stored.rpartition(b":")
        if not colon:
            raise BadSignature("No signature.")
        # Plain loops, current key first: this runs for every value read. The framed
        # message names one field whatever the payload holds; what verifies was signed()
        # here, from the codec's alphabet.
        message = b"%d:%b:%b" % (len(name), name, payload)
        for key in self._verifying:
            if compare_digest(given, signature(key, message)):
                return payload
        # The unframed message names one field only for a payload without ":".
        if _PAYLOAD_RE.fullmatch(payload) is None:
            raise BadSignature("Malformed payload.")
        message = b"%b:%b" % (name, payload)
        for key in self._legacy:
            if compare_digest(given, signature(key, message)):
                return payload
        raise BadSignature("Signature does not match.")
