"""
Random text for keys and tokens, from the OS's CSPRNG in one call.

Django's ``get_random_string()`` asks ``secrets.choice()`` once per character: a session key
of 32 characters is 32 ``getrandom`` system calls, about 50 µs on the benchmark machine,
where one call for the whole key costs about 1 µs. The result has the same distribution:
each character uniformly from the alphabet (bytes that would bias it are dropped, not
folded in with a modulo).
"""

from __future__ import annotations

import functools
import secrets

from django.utils.crypto import RANDOM_STRING_CHARS

__all__ = ["random_string"]


@functools.lru_cache(maxsize=8)
def _alphabet(allowed_chars: str) -> tuple[bytes, bytes]:
    """Return the byte → character table of an alphabet and the bytes it cannot use."""
    size = len(allowed_chars)
    if not 1 < size <= 256 or not allowed_chars.isascii():
        raise ValueError("An alphabet is 2 to 256 ASCII characters.")
    # The largest multiple of the alphabet's size: byte b stands for character b % size.
    usable = 256 - 256 % size
    table = bytes.maketrans(bytes(range(usable)), allowed_chars.encode() * (usable // size))
    return table, bytes(range(usable, 256))


def random_string(length: int, allowed_chars: str = RANDOM_STRING_CHARS) -> str:
    """Return what ``django.utils.crypto.get_random_string()`` returns, with one OS call."""
    table, unusable = _alphabet(allowed_chars)
    text = b""
    while len(text) < length:
        # A few spare bytes: the ones dropped are rarely more than that.
        text += secrets.token_bytes(length + 8).translate(table, unusable)
    return text[:length].decode()
