"""
One hash field's value and the text Redis stores for it: serializer, compressor, signature.

Each piece is pluggable in the manner of django-redis's ``serializers/`` and
``compressors/``: the serializer is ``SESSION_SERIALIZER``, the compressor the engine's
``compressor`` attribute, the signer ``signatures.FieldSigner``.
"""

from __future__ import annotations

from binascii import a2b_base64
from typing import Any

from django.core.signing import b64_encode

from sessionplus.backends.redis.compressors import BaseCompressor
from sessionplus.backends.redis.signatures import FieldSigner


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_FROM_URLSAFE = str.maketrans("-_", "+/")


def _b64_decode(payload: str) -> bytes:
    # The signer let through only the URL-safe alphabet: binascii directly, without
    # base64.py's wrappers (this runs for every value read).
    return a2b_base64(payload.translate(_FROM_URLSAFE) + "=" * (-len(payload) % 4))


class FieldCodec:
    """Encodes and decodes the fields of one hash for one operation."""

    def __init__(self, serializer: Any, signer: FieldSigner, compressor: BaseCompressor) -> None:
        self.serializer = serializer
        self.signer = signer
        self.compressor = compressor

    def encode(self, field: str, serialized: bytes) -> str:
        """Return the stored text of a value ``serializer.dumps()`` made."""
        compressed = self.compressor.compress(serialized)
        if compressed is None:
            payload = b64_encode(serialized).decode()
        else:
            payload = self.compressor.marker + b64_encode(compressed).decode()
        return self.signer.sign(field, payload)

    def dumps(self, field: str, value: Any) -> str:
        return self.encode(field, self.serializer.dumps(value))

    def decode(self, field: str, stored: bytes | str) -> tuple[Any, bytes]:
        """
        Return the value stored in ``field`` and its serialized form.

        Raise ``BadSignature`` when it was not signed for that field with our keys, and
        whatever the serializer or the compressor raise on garbage.
        """
        payload = self.signer.unsign(field, text(stored))
        marker = self.compressor.marker
        if marker and payload.startswith(marker):
            serialized = self.compressor.decompress(_b64_decode(payload[len(marker) :]))
        else:
            serialized = _b64_decode(payload)
        return self.serializer.loads(serialized), serialized

    def loads(self, field: str, stored: bytes | str) -> Any:
        return self.decode(field, stored)[0]
