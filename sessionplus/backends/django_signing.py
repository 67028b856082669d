"""
Django's signed format (``django.core.signing``), with each salt's keys derived once.

``signing.dumps()`` and ``signing.loads()`` build a ``TimestampSigner`` per call, which
reads both secret settings and, for each signature, hashes the salt with the secret and
pads the result into HMAC's two SHA-256 states (``salted_hmac()``). For a session that is
most of a load's CPU after the round trip. Here those states are computed once per salt
and secret (RFC 2104, as ``hmac.py`` does without OpenSSL) and dropped when
``SECRET_KEY`` or ``SECRET_KEY_FALLBACKS`` change. The text is Django's, byte for byte:
``signing.loads()`` reads what this signs, and the other way round; except what ``dumps()``
signs ``plain``, for sessionplus's own records.
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.scanner
import time
import zlib
from binascii import a2b_base64, b2a_base64
from hmac import compare_digest
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.core.signing import BadSignature, JSONSerializer, b62_encode
from django.dispatch import receiver
from django.utils.encoding import force_bytes

from sessionplus.backends.memo import TextMemo, is_flat

if TYPE_CHECKING:
    from collections.abc import Callable
    from hashlib import _Hash

    F = TypeVar("F", bound=Callable[..., Any])

    # The SHA-256 states after the HMAC key's inner and outer pads.
    Key = tuple[_Hash, _Hash]

__all__ = [
    "COMPRESS_MIN_LENGTH",
    "BadSignature",
    "TimestampSigner",
    "b64_decode",
    "b64_encode",
    "dumps_of",
    "hmac_key",
    "json_dumps",
    "json_loads",
    "kept_until_secrets_change",
    "loads_of",
    "signature",
    "signer",
]

# Data of at most this many bytes is stored uncompressed: zlib's fixed cost (for a 1 KB
# session, about 5 µs to inflate and 11 µs to deflate) outweighs the few hundred bytes it
# saves. Django compresses whatever shrinks; signing.loads() reads either.
COMPRESS_MIN_LENGTH = 1024

_BLOCK = hashlib.sha256().block_size
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))
# binascii directly, without base64.py's wrappers, and on bytes (str.translate() looks up
# each character in a dict): this runs for every value signed or read.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")

# Django's JSONSerializer without its two Python calls per use, for exactly that class:
# json.loads() of a str is this decoder's decode() (the text, from latin-1, holds no BOM),
# json.dumps() with these separators this encoder's encode().
_json_decoder = json.JSONDecoder()
# The scanner JSONDecoder makes for itself (C where CPython has it); typeshed types the
# context as a scanner, which is any object with the decoder's attributes.
_json_scan = json.scanner.make_scanner(_json_decoder)  # type: ignore[arg-type]
json_dumps = json.JSONEncoder(separators=(",", ":")).encode


def json_loads(text: str) -> Any:
    """
    Return ``json.loads(text)``.

    Compact JSON, which is all sessionplus writes, goes straight to the decoder's C scanner:
    ``decode()`` adds two Python calls and two whitespace matches, a fifth of a small
    value's decoding. Anything else (whitespace around the value, extra data, an error)
    goes through ``decode()``, which says what is wrong as ``json.loads()`` does.
    """
    try:
        value, end = _json_scan(text, 0)
    except StopIteration:  # no value at the start: whitespace first, or not JSON
        return _json_decoder.decode(text)
    return value if end == len(text) else _json_decoder.decode(text)


# What was derived from the secrets (keys, and signers holding them): every entry is
# dropped when SECRET_KEY or SECRET_KEY_FALLBACKS change (override_settings in tests).
_derived_from_secrets: list[Any] = []


def kept_until_secrets_change(maxsize: int) -> Callable[[F], F]:
    """
    Cache a function of hashable arguments that reads the secret settings (or derives from
    them) until ``SECRET_KEY`` or ``SECRET_KEY_FALLBACKS`` change: one home for "computed
    once per secret", which reading both settings on every value would cost.
    """

    def decorate(function: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(function)
        _derived_from_secrets.append(cached)
        return cached  # type: ignore[return-value]

    return decorate


@receiver(setting_changed)
def _secrets_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"SECRET_KEY", "SECRET_KEY_FALLBACKS"}:
        for cached in _derived_from_secrets:
            cached.cache_clear()


@kept_until_secrets_change(maxsize=128)
def hmac_key(material: bytes) -> Key:
    """
    Return the HMAC-SHA256 states of the key ``sha256(material)``: ``salted_hmac()``'s key
    when ``material`` is its salt followed by the secret.
    """
    # Bounded by salts x secrets: whatever varies per value is in the message.
    key = hashlib.sha256(material).digest().ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def signature(key: Key, message: bytes) -> bytes:
    """Return the URL-safe, unpadded base64 HMAC of ``message``: Django's ``base64_hmac()``."""
    inner, outer = key[0].copy(), key[1].copy()
    inner.update(message)
    outer.update(inner.digest())
    # 32 bytes are 43 characters and one "=".
    return b2a_base64(outer.digest(), newline=False)[:-1].translate(_TO_URLSAFE)


def b64_encode(data: bytes) -> bytes:
    """Return ``signing.b64_encode(data)``."""
    return b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def b64_decode(data: bytes) -> bytes:
    """Return ``signing.b64_decode(data)``: as lenient, for text whose signature verified."""
    return a2b_base64(data.translate(_FROM_URLSAFE) + b"=" * (-len(data) % 4))


class TimestampSigner:
    """``signing.TimestampSigner(salt=salt)`` under fixed secrets, keys derived once."""

    def __init__(
        self, salt: str, secret: str | bytes, fallbacks: tuple[str | bytes, ...] = ()
    ) -> None:
        # Signer.signature(): salted_hmac(salt + "signer", value, key, algorithm="sha256").
        salted = force_bytes(salt + "signer")
        self._signing = hmac_key(salted + force_bytes(secret))
        self._verifying = [self._signing, *(hmac_key(salted + force_bytes(k)) for k in fallbacks)]
        # Texts that verified under these keys, with their payload and timestamp; and
        # (serializer, text) for the sessions that decoded to a flat dict, with the dict.
        self._verified = TextMemo()
        self._decoded = TextMemo()

    def sign(self, payload: bytes) -> str:
        """Return ``payload`` signed with the current time, as ``sign()`` does."""
        value = b"%b:%b" % (payload, b62_encode(int(time.time())).encode())
        return (value + b":" + signature(self._signing, value)).decode()

    def unsign(self, signed: str) -> tuple[bytes, bytes]:
        """
        Return the payload and the base62 timestamp of a value ``sign()`` made; raise
        BadSignature when no current or fallback key signed it.
        """
        known = self._verified.get(signed)
        if known is not None:
            return known  # type: ignore[no-any-return]
        value, colon, given = signed.encode().rpartition(b":")
        if not colon:
            raise BadSignature('No ":" found in value')
        for key in self._verifying:
            if compare_digest(given, signature(key, value)):
                payload, colon, timestamp = value.rpartition(b":")
                if not colon:
                    raise BadSignature("No timestamp in value")
                self._verified.remember(signed, len(signed), (payload, timestamp))
                return payload, timestamp
        raise BadSignature("Signature does not match")

    def dumps(
        self, serialized: bytes, compress_over: int = COMPRESS_MIN_LENGTH, plain: bool = False
    ) -> str:
        """
        Return what ``signing.dumps(..., compress=True)`` makes of serialized data, except
        that data of at most ``compress_over`` bytes is not compressed (0: Django's rule).

        ``plain``: uncompressed data that is an object in ASCII JSON (Django's JSON
        serializer makes nothing else of a session) is signed as it is, not base64-encoded:
        for text that only ``loads()`` reads, never ``signing.loads()``. Base64 text never
        starts with ``{``, so the payload's first byte tells the forms apart.
        """
        if len(serialized) > compress_over:
            compressed = zlib.compress(serialized)
            if len(compressed) < len(serialized) - 1:
                return self.sign(b"." + b64_encode(compressed))
        if plain and serialized[:1] == b"{" and serialized.isascii():
            return self.sign(serialized)
        return self.sign(b64_encode(serialized))

    def remember_decoded(self, signed: str, serializer: Any, value: Any) -> None:
        """
        Remember that ``signed``, which ``dumps()`` made of ``value`` serialized by Django's
        JSON serializer, decodes to ``value``: so a flat dict does, key for key and value
        for value (text keys, then text, numbers, booleans and None come back as they were).
        Another serializer's output is decoded when read.
        """
        if serializer is JSONSerializer:
            self._remember_if_flat(signed, serializer, value)

    def _remember_if_flat(self, signed: str, serializer: Any, value: Any) -> None:
        # A copy: the caller goes on to change its dict.
        if is_flat(value):
            self._decoded.remember((serializer, signed), len(signed), dict(value))

    def loads(self, signed: str, serializer: Any) -> Any:
        """
        Return what ``signing.loads(signed, salt=..., serializer=serializer)`` does, for
        what ``dumps()`` signed in either form.

        A text that decoded to a dict of text, numbers, booleans and None before (a
        session's usual data) is not decoded again: each caller gets a copy of its own.
        """
        known = self._decoded.get((serializer, signed))
        if known is not None:
            return dict(known)
        payload = self.unsign(signed)[0]
        first = payload[:1]
        if first == b"{":
            serialized = payload
        elif first == b".":
            serialized = zlib.decompress(b64_decode(payload[1:]))
        else:
            serialized = b64_decode(payload)
        value = loads_of(serializer)(serialized)
        self._remember_if_flat(signed, serializer, value)
        return value


def dumps_of(serializer: Any) -> Callable[[Any], bytes]:
    """Return the ``dumps`` of a ``SESSION_SERIALIZER`` class (Django's JSON one without calls)."""
    if serializer is JSONSerializer:
        return _json_dumps_bytes
    return serializer().dumps  # type: ignore[no-any-return]


def loads_of(serializer: Any) -> Callable[[bytes], Any]:
    """Return the ``loads`` of a ``SESSION_SERIALIZER`` class (Django's JSON one without calls)."""
    if serializer is JSONSerializer:
        return _json_loads_bytes
    return serializer().loads  # type: ignore[no-any-return]


def _json_dumps_bytes(value: Any) -> bytes:
    return json_dumps(value).encode("latin-1")


def _json_loads_bytes(serialized: bytes) -> Any:
    return json_loads(serialized.decode("latin-1"))


@kept_until_secrets_change(maxsize=64)
def signer(salt: str) -> TimestampSigner:
    """Return the signer of ``salt`` under the current ``SECRET_KEY`` and fallbacks."""
    return TimestampSigner(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))
