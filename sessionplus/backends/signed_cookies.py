"""
Sessions kept in the cookie itself: signed (not encrypted), a drop-in for Django's engine.

The cookie value has the format of Django's engine (``signing.dumps`` with its salt,
compressed), so cookies issued by either engine load in the other. On top of Django's:

- the expiry from ``set_expiry()`` is honoured (Django ticket #27775), counted from the
  moment the cookie was signed, which the signature covers, on the signer's clock
  (``time.time()``, as Django's engine checks it);
- a session whose cookie would pass 4093 bytes raises ``SessionTooLarge`` at save time,
  instead of a cookie the browser silently drops;
- decompression stops at ``SESSIONPLUS_MAX_SIZE`` bytes, so no cookie expands without limit;
- a tampered or truncated cookie is no session, and is logged.

The session's creation time is kept in the payload (a cookie without one, issued by Django's
engine, counts as created when it was signed, and the next save records that); user id, IP
and user agent are not (they would grow every cookie), and nothing can be revoked
server-side before it expires. Saving an unchanged session within the signer's resolution
(one second) gives the very same cookie, as Django's engine does.
"""

from __future__ import annotations

import re
import time
import zlib
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.core import signing

from sessionplus.backends.base import SessionPlusBase
from sessionplus.backends.django_signing import BadSignature, b64_decode, loads_of, signer
from sessionplus.backends.expiry import stored_expiry_is_valid
from sessionplus.backends.timestamps import as_utc_datetime
from sessionplus.conf import conf
from sessionplus.exceptions import SessionTooLarge
from sessionplus.randomness import random_string

SALT = "django.contrib.sessions.backends.signed_cookies"
# Name, "=" and value together: the most browsers keep for one cookie.
MAX_COOKIE_BYTES = 4093
# What signing.dumps() produces: [.]base64 payload, base62 timestamp, base64 signature.
_SIGNED_VALUE_RE = re.compile(r"\.?[A-Za-z0-9_-]+:[0-9A-Za-z]+:[A-Za-z0-9_-]+")
# Where the payload keeps sessionplus's own fields; never part of the session data.
METADATA_KEY = "_sessionplus"
# Servers sharing a SECRET_KEY may disagree about the time by this much.
CLOCK_SKEW_SECONDS = 60
# Django's getter of the key as stored (SessionBase.session_key's).
_stored_key = SessionBase._get_session_key


class SessionStore(SessionPlusBase):
    """A cookie-based session store, a drop-in for Django's ``backends.signed_cookies``."""

    # encode() signs with this salt: Django's engine's, so the cookie formats agree.
    key_salt = SALT
    # The cookie keeps no user id, IP or user agent (they would grow every cookie).
    records_client = False
    # The cookie's size is what counts here: compress whatever shrinks, as Django does.
    compress_over = 0

    # The loaded cookie's nonce (see load()).
    _nonce: str | None = None
    # cycle_key() ran and the new value is not signed yet (see _signed_key()).
    _cycled: bool = False

    def _signed_key(self) -> str | None:
        # The value is the signed data: a key cycled and not saved since is signed when
        # first asked for. A login, which cycles the key and then changes the data, thus
        # signs once, when the response is saved, instead of twice.
        if self._cycled:
            self.save()
        return _stored_key(self)  # not super(): every read of the key pays for this call

    session_key = property(_signed_key)
    _session_key = property(_signed_key, SessionPlusBase._set_session_key)

    def is_empty(self) -> bool:
        # Not by asking for the key, which would sign it: a cycled session has one coming.
        return not self._cycled and super().is_empty()

    def _validate_session_key(self, key: object) -> bool:
        # The "key" is the cookie value, the signed data itself: bounded, with the three
        # parts of a signed value, or it is no session without any decoding attempted.
        # Their characters are checked as it loads: a request that never reads its
        # session does not scan a cookie of a kilobyte or more.
        return isinstance(key, str) and len(key) <= MAX_COOKIE_BYTES and key.count(":") == 2

    # Load ----------------------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        value = self.session_key
        loaded = None
        if value is not None and _SIGNED_VALUE_RE.fullmatch(value) is not None:
            loaded = self._unsign(value)
        if loaded is None:
            self._session_key = None
            return {}
        data, signed_at = loaded
        own = data.pop(METADATA_KEY, None)
        own = own if isinstance(own, dict) else {}
        # Kept, so that saving an unchanged session signs the very same payload.
        nonce = own.get("nonce")
        self._nonce = nonce if isinstance(nonce, str) else None
        # Created no later than it was signed: a cookie from Django's engine, which records
        # no creation time, is thus held to SESSIONPLUS_ABSOLUTE_TIMEOUT too.
        created_at = own.get("created_at")
        if created_at is None:
            created_at = signed_at
        self._accept_metadata({"created_at": created_at, "last_activity": signed_at})
        return data

    async def aload(self) -> dict[str, Any]:
        return self.load()

    def _unsign(self, value: str) -> tuple[dict[str, Any], int] | None:
        """Return the data and signing time of a live cookie value; None (logged) if not."""
        try:
            payload, timestamp = signer(SALT).unsign(value)
        except BadSignature:
            self.log_suspicious("failed its signature check")
            return None
        signed_at = signing.b62_decode(timestamp.decode())
        # The signer's clock: signing stamped the cookie with time.time(), not timezone.now().
        now = time.time()
        if signed_at > now + CLOCK_SKEW_SECONDS:
            self.log_suspicious("was signed in the future")
            return None
        data = self._deserialize(payload)
        if data is None:
            return None
        expiry = data.get("_session_expiry")
        if not stored_expiry_is_valid(expiry):
            self.log_suspicious("had an invalid expiry")
            return None
        signed = as_utc_datetime(signed_at)
        if self.get_expiry_date(modification=signed, expiry=expiry).timestamp() <= now:
            return None
        return data, signed_at

    def _deserialize(self, payload: bytes) -> dict[str, Any] | None:
        limit = conf.SESSIONPLUS_MAX_SIZE
        try:
            serialized = b64_decode(payload.removeprefix(b"."))
            if payload.startswith(b"."):
                # Inflate at most one byte past the limit: enough to know it is exceeded.
                serialized = zlib.decompressobj().decompress(serialized, limit + 1)
        except Exception as exc:  # base64 and zlib raise errors of their own
            self.log_suspicious(f"could not be decoded ({type(exc).__name__})")
            return None
        if len(serialized) > limit:
            self.log_suspicious(f"expands past SESSIONPLUS_MAX_SIZE ({limit} bytes)")
            return None
        return self.loaded_or_none(loads_of(self.serializer), serialized)

    # Save ----------------------------------------------------------------------------

    def save(self, must_create: bool = False) -> None:
        """Sign the session into a new cookie value; the middleware sets the cookie."""
        self._cycled = False
        own: dict[str, int | str] = {"created_at": int(self.metadata_for_write()["created_at"])}
        if self._nonce is not None:
            own["nonce"] = self._nonce
        value = self.encode(self._get_session(), {METADATA_KEY: own})
        size = len(conf.SESSION_COOKIE_NAME.encode()) + 1 + len(value)
        if size > MAX_COOKIE_BYTES:
            raise SessionTooLarge(
                f"The session cookie would be {size} bytes, more than the {MAX_COOKIE_BYTES} "
                "browsers keep (they drop larger cookies silently). Store less in the "
                "session, or use a server-side engine."
            )
        self._session_key = value
        self.modified = True
        self._mark_saved()

    async def asave(self, must_create: bool = False) -> None:
        self.save(must_create)

    def touch(self) -> None:
        """Sign the session again: the cookie is the record, and only this request has it."""
        self.save()

    async def atouch(self) -> None:
        self.save()

    def create(self) -> None:
        # Nothing to store: the cookie is set when the response goes out.
        self.modified = True

    async def acreate(self) -> None:
        self.create()

    def cycle_key(self) -> None:
        # A fresh nonce makes the new value differ even when signed in the same second.
        # The data is read now, from the value being replaced; the new one is signed when
        # asked for or saved (_signed_key()).
        self._get_session()
        self._nonce = random_string(8)
        self._cycled = True
        self.modified = True

    async def acycle_key(self) -> None:
        self.cycle_key()

    # Nothing lives on the server ---------------------------------------------------------

    def exists(self, session_key: str | None = None) -> bool:
        return False

    async def aexists(self, session_key: str | None = None) -> bool:
        return False

    def delete(self, session_key: str | None = None) -> None:
        self._cycled = False
        self._session_key = None
        self._nonce = None
        self._session_cache = {}
        self.modified = True

    async def adelete(self, session_key: str | None = None) -> None:
        self.delete(session_key)

    @classmethod
    def clear_expired(cls) -> None:
        """Do nothing: no session is stored on the server."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Do nothing: no session is stored on the server."""
