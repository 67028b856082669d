"""
One hash field's value and the text Redis stores for it: serializer, compressor, signature.

Each piece is pluggable in the manner of django-redis's ``serializers/`` and
``compressors/``: the serializer is ``SESSION_SERIALIZER``, the compressor the engine's
``compressor`` attribute, the signer ``signatures.FieldSigner``.
"""

from __future__ import annotations

import functools
import json
from binascii import a2b_base64, b2a_base64
from typing import Any

from django.core.signals import setting_changed
from django.core.signing import JSONSerializer
from django.dispatch import receiver

from sessionplus.backends.redis.compressors import BaseCompressor
from sessionplus.backends.redis.signatures import FieldSigner, signer


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# binascii directly, without base64.py's wrappers, and on bytes (str.translate() looks up
# each character in a dict): this runs for every value read or written.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")

# Django's JSONSerializer without its two Python calls per value, for exactly that class:
# json.loads() of a str is this decoder's decode() (the text, from latin-1, holds no BOM),
# json.dumps() with these separators this encoder's encode().
_JSON_LOADS = json.JSONDecoder().decode
_JSON_DUMPS = json.JSONEncoder(separators=(",", ":")).encode


class FieldCodec:
    """Encodes and decodes the fields of one hash."""

    def __init__(self, serializer: Any, signer: FieldSigner, compressor: BaseCompressor) -> None:
        self.serializer = serializer
        self.signer = signer
        self.compressor = compressor
        self._marker = compressor.marker.encode()
        self._json = type(serializer) is JSONSerializer

    def serialize(self, value: Any) -> bytes:
        """Return ``serializer.dumps(value)``."""
        if self._json:
            return _JSON_DUMPS(value).encode("latin-1")
        return self.serializer.dumps(value)  # type: ignore[no-any-return]

    def encode(self, field: str, serialized: bytes) -> str:
        """Return the stored text of a value ``serializer.dumps()`` made."""
        compressed = self.compressor.compress(serialized)
        if compressed is None:
            payload = b2a_base64(serialized, newline=False).translate(_TO_URLSAFE).rstrip(b"=")
        else:
            encoded = b2a_base64(compressed, newline=False).translate(_TO_URLSAFE).rstrip(b"=")
            payload = self._marker + encoded
        return self.signer.signed(field.encode(), payload).decode()

    def dumps(self, field: str, value: Any) -> str:
        return self.encode(field, self.serialize(value))

    def decode(self, field: str, stored: bytes | str) -> tuple[Any, bytes]:
        """
        Return the value stored in ``field`` and its serialized form.

        Raise ``BadSignature`` when it was not signed for that field with our keys, and
        whatever the serializer or the compressor raise on garbage.
        """
        if isinstance(stored, str):  # from a client made with decode_responses=True
            stored = stored.encode()
        return self.decode_bytes(field.encode(), stored)

    def decode_bytes(self, name: bytes, stored: bytes) -> tuple[Any, bytes]:
        """Return what ``decode()`` does, with the field name and stored text as bytes."""
        payload = self.signer.verified(name, stored)
        marker = self._marker
        compressed = marker and payload.startswith(marker)
        if compressed:
            payload = payload[len(marker) :]
        # The signer let through only the URL-safe alphabet.
        serialized = a2b_base64(payload.translate(_FROM_URLSAFE) + b"=" * (-len(payload) % 4))
        if compressed:
            serialized = self.compressor.decompress(serialized)
        if self._json:
            return _JSON_LOADS(serialized.decode("latin-1")), serialized
        return self.serializer.loads(serialized), serialized

    def loads(self, field: str, stored: bytes | str) -> Any:
        return self.decode(field, stored)[0]


def codec_for(serializer: Any, salt: str, compressor: BaseCompressor) -> FieldCodec:
    """Return the codec of a store under the current ``SECRET_KEY`` and fallbacks."""
    try:
        return _codec(serializer, salt, compressor)
    except TypeError:  # an unhashable compressor: a codec of its own
        return FieldCodec(serializer(), signer(salt), compressor)


@functools.lru_cache(maxsize=64)
def _codec(serializer: Any, salt: str, compressor: BaseCompressor) -> FieldCodec:
    # Bounded by store classes x serializers. The codec holds no state of an operation;
    # reading the secrets costs more than the rest of a load's overhead, so they are read
    # once and dropped on setting_changed, as conf's settings are.
    return FieldCodec(serializer(), signer(salt), compressor)


@receiver(setting_changed)
def _secrets_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"SECRET_KEY", "SECRET_KEY_FALLBACKS"}:
        _codec.cache_clear()
