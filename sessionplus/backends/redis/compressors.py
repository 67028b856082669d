"""
Compressors for the redis engine's field values, in the shape of django-redis's.

A compressor turns a serialized value into bytes to store and back. The codec marks a
compressed payload with the compressor's ``marker`` so that a value stays readable whether
or not it was compressed when written.
"""

from __future__ import annotations

import zlib

from sessionplus.backends.django_signing import COMPRESS_MIN_LENGTH


class BaseCompressor:
    """Compress values worth it; ``marker`` starts every payload it produced."""

    marker = ""

    def compress(self, value: bytes) -> bytes | None:
        """Return ``value`` compressed, or None when it is better stored as it is."""
        raise NotImplementedError

    def decompress(self, value: bytes) -> bytes:
        raise NotImplementedError


class ZlibCompressor(BaseCompressor):
    """zlib for values larger than ``min_length`` bytes, when it makes them shorter."""

    marker = "."
    # Smaller values rarely compress, and zlib costs more than the bytes it saves.
    min_length = COMPRESS_MIN_LENGTH

    def compress(self, value: bytes) -> bytes | None:
        if len(value) <= self.min_length:
            return None
        compressed = zlib.compress(value)
        return compressed if len(compressed) < len(value) else None

    def decompress(self, value: bytes) -> bytes:
        return zlib.decompress(value)
