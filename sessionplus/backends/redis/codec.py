"""
One field's value and the text Redis stores for it: serializer, compressor, signature.

Each piece is pluggable in the manner of django-redis's ``serializers/`` and
``compressors/``: the serializer is ``SESSION_SERIALIZER``, the compressor the engine's
``compressor`` attribute, the signer ``signatures.FieldSigner``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sessionplus.backends.django_signing import (
    b64_decode,
    b64_encode,
    dumps_of,
    kept_until_secrets_change,
    loads_of,
)
from sessionplus.backends.memo import IMMUTABLE, TextMemo
from sessionplus.backends.redis.compressors import BaseCompressor
from sessionplus.backends.redis.signatures import FieldSigner, signer

# Stands, in ``FieldCodec._decoded``, for a value each read decodes afresh.
_DECODE = object()


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class FieldCodec:
    """Encodes and decodes the fields of one session value."""

    def __init__(self, serializer: Any, signer: FieldSigner, compressor: BaseCompressor) -> None:
        self.serializer = serializer
        self.signer = signer
        self.compressor = compressor
        self._marker = compressor.marker.encode()
        self._dumps = dumps_of(type(serializer))
        self._loads = loads_of(type(serializer))
        # (field name, stored text) -> (value, serialized form) for values that verified
        # and decoded: the value itself where it cannot change in place, else _DECODE.
        self._decoded = TextMemo()
        self._section_decoders: dict[bytes, Callable[[str, bytes], tuple[Any, bytes]]] = {}

    def serialize(self, value: Any) -> bytes:
        """Return ``serializer.dumps(value)``."""
        return self._dumps(value)

    def payload(self, serialized: bytes) -> bytes:
        """Return the signed part of the stored text of a value ``serializer.dumps()`` made."""
        compressed = self.compressor.compress(serialized)
        if compressed is None:
            return b64_encode(serialized)
        return self._marker + b64_encode(compressed)

    def encode(self, name: bytes, serialized: bytes) -> bytes:
        """
        Return the stored text, for field ``name``, of a value ``serializer.dumps()`` made.

        Bytes, as field names in a write are: redis-py passes bytes on as they are, and
        encodes each str argument in Python (about 3,000 instructions each).
        """
        return self.signer.signed(name, self.payload(serialized))

    def stores(self, stored: bytes, serialized: bytes) -> bool:
        """
        Return whether ``stored`` holds the value ``serializer.dumps()`` made
        ``serialized`` of, as text only: its signature is not checked, so this says
        nothing about where the text came from.
        """
        return stored.rpartition(b":")[0] == self.payload(serialized)

    def dumps(self, field: str, value: Any) -> bytes:
        return self.encode(field.encode(), self.serialize(value))

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
        """
        Return what ``decode()`` does, with the field name and stored text as bytes.

        A text decoded before is not verified or decoded again (``memo.TextMemo``); a
        value that can change in place (a list, a dict) is made afresh from its form.
        """
        stored_as = name, stored
        known = self._decoded.get(stored_as)
        if known is not None:
            value, serialized = known
            if value is _DECODE:
                return self._loads(serialized), serialized
            return value, serialized
        value, serialized = decoded = self._verified_and_decoded(name, stored)
        kept = decoded if type(value) in IMMUTABLE else (_DECODE, serialized)
        self._decoded.remember(stored_as, len(name) + len(stored), kept)
        return decoded

    def section_decoder(self, prefix: bytes) -> Callable[[str, bytes], tuple[Any, bytes]]:
        """
        Return ``decode_bytes()`` for the fields named ``prefix`` + a key, taking the key
        as str (``LazyData``'s decoder): made once per codec, not on every load.
        """
        decoder = self._section_decoders.get(prefix)
        if decoder is None:
            decode = self.decode_bytes

            def decoder(key: str, stored: bytes) -> tuple[Any, bytes]:
                return decode(prefix + key.encode(), stored)

            self._section_decoders[prefix] = decoder
        return decoder

    def _verified_and_decoded(self, name: bytes, stored: bytes) -> tuple[Any, bytes]:
        payload = self.signer.verified(name, stored)
        marker = self._marker
        compressed = marker and payload.startswith(marker)
        if compressed:
            payload = payload[len(marker) :]
        # The signer let through only the URL-safe alphabet.
        serialized = b64_decode(payload)
        if compressed:
            serialized = self.compressor.decompress(serialized)
        return self._loads(serialized), serialized

    def loads(self, field: str, stored: bytes | str) -> Any:
        return self.decode(field, stored)[0]


def codec_for(serializer: Any, salt: str, compressor: BaseCompressor) -> FieldCodec:
    """Return the codec of a store under the current ``SECRET_KEY`` and fallbacks."""
    try:
        return _codec(serializer, salt, compressor)
    except TypeError:  # an unhashable compressor: a codec of its own
        return FieldCodec(serializer(), signer(salt), compressor)


@kept_until_secrets_change(maxsize=64)
def _codec(serializer: Any, salt: str, compressor: BaseCompressor) -> FieldCodec:
    # Bounded by store classes x serializers. The codec holds no state of an operation;
    # it holds the signer of the secrets it was made under.
    return FieldCodec(serializer(), signer(salt), compressor)
