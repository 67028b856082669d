"""
The redis engine's per-field signatures: one HMAC-SHA256 per field value, keys derived once.

A stored value is ``<payload>:<signature>``, the payload being what the codec made of the
value (URL-safe base64, with the compressor's marker in front when compressed). The
signature is the URL-safe base64 HMAC-SHA256 of ``<length of the field name>:<field
name>:<payload>``: the length prefix frames the field name whatever characters it holds,
so a value signed for one field never verifies under another. Its key is derived from the
store's salt and ``SECRET_KEY`` once per process, not once per value as
``django.core.signing`` does; ``SECRET_KEY_FALLBACKS`` still verify.
"""

from __future__ import annotations

from hmac import compare_digest
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.signing import BadSignature
from django.utils.encoding import force_bytes

from sessionplus.backends.django_signing import hmac_key, kept_until_secrets_change, signature

if TYPE_CHECKING:
    from sessionplus.backends.django_signing import Key

__all__ = ["BadSignature", "FieldSigner"]

# In the key: signatures of an earlier, unframed message form (under b"redis-field") never
# verify.
_FRAMED = b"redis-field-v2"


def _key(salt: str, secret: str | bytes, form: bytes) -> Key:
    # The field name is in the message: one key per salt, form and secret.
    return hmac_key(force_bytes(salt) + form + force_bytes(secret))


@kept_until_secrets_change(maxsize=64)
def signer(salt: str) -> FieldSigner:
    """Return the signer of a salt under the current ``SECRET_KEY`` and fallbacks."""
    return FieldSigner(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


class FieldSigner:
    """Signs and verifies fields under one secret key and its fallbacks."""

    def __init__(
        self, salt: str, secret: str | bytes, fallbacks: tuple[str | bytes, ...] = ()
    ) -> None:
        secrets = (secret, *fallbacks)
        self._signing = _key(salt, secret, _FRAMED)
        self._verifying = [_key(salt, secret, _FRAMED) for secret in secrets]

    def signed(self, name: bytes, payload: bytes) -> bytes:
        """Return the signed text stored in field ``name`` for ``payload``."""
        message = b"%d:%b:%b" % (len(name), name, payload)
        return b"%b:%b" % (payload, signature(self._signing, message))

    def verified(self, name: bytes, stored: bytes) -> bytes:
        """Return the payload ``signed()`` stored; raise BadSignature if it did not."""
        payload, colon, given = stored.rpartition(b":")
        if not colon:
            raise BadSignature("No signature.")
        # A plain loop, current key first: this runs for every value read. The framed
        # message names one field whatever the payload holds; what verifies was signed()
        # here, from the codec's alphabet.
        message = b"%d:%b:%b" % (len(name), name, payload)
        for key in self._verifying:
            if compare_digest(given, signature(key, message)):
                return payload
        raise BadSignature("Signature does not match.")
