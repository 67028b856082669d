"""
What every sessionplus engine needs: the key's shape, encoding with SESSION_SERIALIZER and
signing (the data rule applied to its one serialization), and the load/save frame.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, TypeGuard, TypeVar

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.base import (
    VALID_KEY_CHARS,
    CreateError,
    SessionBase,
    UpdateError,
)
from django.http import HttpRequest
from django.utils.module_loading import import_string

from sessionplus.backends.data_rule import (
    CheckingSerializer,
    check_assignment,
    check_assignments,
    check_keys,
)
from sessionplus.backends.django_signing import COMPRESS_MIN_LENGTH, BadSignature, signer
from sessionplus.backends.expiry import EXPIRY_KEY, check_expiry, stored_expiry_is_valid
from sessionplus.backends.metadata import MetadataMixin
from sessionplus.backends.record import StoredSession
from sessionplus.backends.timestamps import as_utc_datetime, now_timestamp
from sessionplus.conf import conf
from sessionplus.exceptions import SessionStoreUnavailable
from sessionplus.identifiers import log_id
from sessionplus.outage import as_unavailable, is_store_outage
from sessionplus.plans import Plan, Step, adrive, drive
from sessionplus.randomness import random_string

if TYPE_CHECKING:
    from _typeshed import SupportsKeysAndGetItem

__all__ = [
    "CreateError",
    "Lifecycle",
    "LifecycleHooks",
    "ReadThrough",
    "SessionPlusBase",
    "UpdateError",
    "is_valid_session_key",
]

SESSION_KEY_LENGTH = 32
_SESSION_KEY_RE = re.compile(rf"[{VALID_KEY_CHARS}]{{{SESSION_KEY_LENGTH}}}")

# A random key colliding with a live one is astronomically unlikely; a loop that keeps
# colliding means the store is answering CreateError for another reason.
MAX_CREATE_ATTEMPTS = 10

suspicious_logger = logging.getLogger("django.security.SuspiciousSession")

# What a plan yields: a Step here, a Redis operation in the redis engine.
OpT = TypeVar("OpT")


# The same setting names the same class: imported once per value, not once per store.
imported = functools.cache(import_string)


def is_valid_session_key(key: object) -> TypeGuard[str]:
    """Return whether ``key`` has the exact shape of a key Django generates."""
    return isinstance(key, str) and _SESSION_KEY_RE.fullmatch(key) is not None


class Lifecycle(NamedTuple):
    """What a store serving a request reports to: ``sessionplus.lifecycle`` registers its own."""

    loaded: Callable[[LifecycleHooks, HttpRequest], str | None]
    ended: Callable[[LifecycleHooks, str, str], None]


class ReadThrough(NamedTuple):
    """
    The lookup of ``SESSIONPLUS_PREVIOUS_ENGINE``: ``sessionplus.backends.adoption``
    registers its own (the app's ``ready()`` imports it).
    """

    adopt: Callable[[SessionBase, str], dict[str, Any]]
    aadopt: Callable[[SessionBase, str], Awaitable[dict[str, Any]]]
    end_in_previous: Callable[[SessionBase], None]
    aend_in_previous: Callable[[SessionBase], Awaitable[None]]


class LifecycleHooks(SessionBase):
    """
    The load and flush frame: a store serving a request reports to ``sessionplus.lifecycle``
    that it loaded a session, flushed one, or found the store down; and a key the store
    lacks is looked up in ``SESSIONPLUS_PREVIOUS_ENGINE`` (``adoption``).

    Both modules import this one, so it imports neither: each registers its hooks here
    (``lifecycle`` and ``read_through``) when it is imported. The middleware sets
    ``request``; a store without one (used outside a request) reports nothing. Every
    sessionplus engine has these hooks through ``SessionPlusBase``; the middleware puts
    them in front of Django's own engines (``lifecycle.hooked``). The attributes below are
    the request's lifecycle state, class defaults until set, so a request that never
    touches its session builds nothing.
    """

    # Registered by sessionplus.lifecycle, which the middleware imports before it sets any
    # store's request, and by adoption, which the app's ready() imports.
    lifecycle: ClassVar[Lifecycle | None] = None
    read_through: ClassVar[ReadThrough | None] = None
    request: HttpRequest | None = None
    # The engine class that signals name as their sender.
    signal_sender: type[SessionBase] | None = None
    # The first outage a storage call of this request ran into.
    outage: SessionStoreUnavailable | None = None
    # The cookie's session was found live when it loaded.
    started_live = False
    # A stored session was ended (logout, timeout, binding) during this request.
    ended = False
    # The cookie came under SESSIONPLUS_PREVIOUS_COOKIE_NAME, this name.
    previous_cookie: str | None = None
    # Why the flush under way ends the session, when it is not a logout.
    _ending: str | None = None
    # The session as loaded or built: unset until then, which _get_session tells by AttributeError.
    _session_cache: dict[str, Any]

    if TYPE_CHECKING:  # SessionBase's, which django-stubs leaves out

        def _get_or_create_session_key(self) -> str: ...

        async def _aget_or_create_session_key(self) -> str: ...

    # Django's _get_session and _aget_session, with the hooks: every read and assignment
    # comes through here, so the loaded session is returned first, and a session with
    # nothing to load before any plan is made.

    def _get_session(self, no_load: bool = False) -> dict[str, Any]:
        self.accessed = True
        try:
            return self._session_cache
        except AttributeError:
            pass
        return self._empty() if no_load or self.session_key is None else drive(self._loading())

    async def _aget_session(self, no_load: bool = False) -> dict[str, Any]:
        self.accessed = True
        try:
            return self._session_cache
        except AttributeError:
            pass
        return (
            self._empty() if no_load or self.session_key is None else await adrive(self._loading())
        )

    def _empty(self) -> dict[str, Any]:
        self._session_cache = {}
        return self._session_cache

    def _loading(self) -> Plan[dict[str, Any]]:
        session_key = self.session_key
        try:
            self._session_cache = yield Step(self, "load")
            # Missed: SESSIONPLUS_PREVIOUS_ENGINE may have it.
            if self.session_key is None and self.read_through is not None:
                self._session_cache = yield Step(self.read_through, "adopt", self, session_key)
        except Exception as exc:
            raise self._failed(exc)  # noqa: B904 (the outage carries its cause)
        if self._must_end():
            yield Step(self, "flush")
            return self._session_cache
        return self._loaded()

    _session = property(_get_session)

    def _loaded(self) -> dict[str, Any]:
        """Return the session as loaded, once the lifecycle kept it."""
        return self._session_cache

    def _must_end(self) -> bool:
        # Engines drop the key of a session they did not find: one left means a live one.
        if self.request is None or self.session_key is None or self.lifecycle is None:
            return False
        self._ending = self.lifecycle.loaded(self, self.request)
        return self._ending is not None

    def _failed(self, exc: Exception) -> Exception:
        """Return what a failed load raises: an outage as SessionStoreUnavailable, recorded."""
        if not is_store_outage(exc):
            return exc
        # Whatever reads the session later in this request (other middleware, an error
        # page) sees it empty instead of waiting on the store again; the middleware
        # answers 503 and writes nothing.
        self._session_cache = {}
        unavailable = as_unavailable(exc)
        if self.outage is None:
            self.outage = unavailable
        return unavailable

    def flush(self) -> None:
        session_key = self.session_key
        # The previous engine first: an adoption under way then finds nothing to copy, or
        # finds its source gone and undoes its copy (see adoption.adopt).
        if self.read_through is not None:
            self.read_through.end_in_previous(self)
        super().flush()
        self._flushed(session_key)

    async def aflush(self) -> None:
        session_key = self.session_key
        if self.read_through is not None:
            await self.read_through.aend_in_previous(self)
        await super().aflush()
        self._flushed(session_key)

    def _flushed(self, session_key: str | None) -> None:
        reason, self._ending = self._ending or "logout", None
        if self.request is not None and session_key is not None and self.lifecycle is not None:
            self.lifecycle.ended(self, session_key, reason)


class SessionPlusBase(MetadataMixin, LifecycleHooks):
    """
    Base class of every sessionplus engine.

    Engines that store an encoded blob implement ``_read``/``_write`` (and optionally
    their async twins); ``load``, ``save`` and ``create`` here do the rest. Engines with
    their own storage model (Redis values of fields, signed cookies) override ``load``/``save``.
    """

    # The stored data as last loaded, which a touch compares with what is stored now.
    _loaded_data: str | None = None
    # Set on a store that writes a copy of a session another engine holds (adoption): the
    # copy keeps the expiry it has there, and is stored even past SESSIONPLUS_MAX_SIZE (the
    # limit is on what the site writes; a session it already had is carried over as it is).
    copied_expires_at: float | None = None
    # Whether the engine stores who the client is (user id, IP, user agent): the middleware
    # works them out for a write only where they are kept.
    records_client = True
    # Encoded data longer than this is compressed (see COMPRESS_MIN_LENGTH); 0 compresses
    # whatever shrinks, as Django does.
    compress_over = COMPRESS_MIN_LENGTH

    def __init__(self, session_key: str | None = None) -> None:
        # SessionBase.__init__'s four attributes (test_base checks that they stay all of
        # them) and the metadata's two, without the import lookup of SESSION_SERIALIZER it
        # makes: a store is built on every request, even one that never reads its session.
        self._metadata = {}
        self._metadata_changes = {}
        self._session_key = session_key
        self.accessed = False
        self.modified = False
        self.serializer = imported(conf.SESSION_SERIALIZER)

    def get_session_cookie_age(self) -> int:
        # Django's, from the cached settings: its expiry maths calls this on every load.
        return conf.SESSION_COOKIE_AGE

    # Keys ----------------------------------------------------------------------

    def _validate_session_key(self, key: object) -> bool:
        # Anything that is not exactly a key Django could have generated never reaches
        # storage: no query, cache call or file open for a forged cookie.
        return is_valid_session_key(key)

    def _get_new_session_key(self) -> str:
        # No exists() probe: create() inserts with "must not exist" semantics and
        # retries on CreateError, which is both cheaper and race-free.
        return random_string(SESSION_KEY_LENGTH, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()

    # The data rule -------------------------------------------------------------
    # Per assignment only the key's type (Django's __setitem__ is two lines; so is this);
    # everything else is checked once, at save, by serialize_data().

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str or key == EXPIRY_KEY:
            check_assignment(key, value)
        self._session[key] = value
        self.modified = True

    async def aset(self, key: str, value: Any) -> None:
        if type(key) is not str or key == EXPIRY_KEY:
            check_assignment(key, value)
        (await self._aget_session())[key] = value
        self.modified = True

    # What Django's update() takes, which has no keyword arguments: django-stubs
    # ignores the same difference from dict.update().
    def update(  # type: ignore[override]
        self, dict_: SupportsKeysAndGetItem[str, Any] | Iterable[tuple[str, Any]]
    ) -> None:
        items = dict(dict_)
        check_assignments(items)
        super().update(items)

    async def aupdate(
        self, dict_: SupportsKeysAndGetItem[str, Any] | Iterable[tuple[str, Any]]
    ) -> None:
        items = dict(dict_)
        check_assignments(items)
        await super().aupdate(items)

    async def adelete_test_cookie(self) -> None:
        # Django's version forgets to mark the session modified.
        await self.apop(self.TEST_COOKIE_NAME)

    def serialize_data(self, data: dict[str, Any]) -> bytes:
        """
        Serialize session data with SESSION_SERIALIZER, enforcing the data rule.

        Raise TypeError / ValueError for a key that cannot be stored, TypeError naming the
        key whose value the serializer refuses (a value containing itself included),
        and SessionTooLarge when a value nests too deeply for the serializer or the result
        is larger than SESSIONPLUS_MAX_SIZE. Engines that store fields separately call it
        (or ``validate_for_write()``) before writing anything.
        """
        check_keys(data)
        return CheckingSerializer(self.serializer, self._max_size()).dumps(data)

    def _max_size(self) -> float | None:
        # A copy adoption writes is stored as it is (see copied_expires_at).
        return None if self.copied_expires_at is None else math.inf

    def validate_for_write(self) -> None:
        """Check the session in memory against the data rule without loading anything."""
        self.serialize_data(getattr(self, "_session_cache", {}))

    # Encoding ------------------------------------------------------------------

    def encode(
        self,
        session_dict: dict[str, Any],
        own_fields: Mapping[str, Any] | None = None,
        *,
        plain: bool = False,
    ) -> str:
        """
        Return Django's encoding of ``session_dict``, with the data rule applied to its one
        serialization; ``own_fields`` (an engine's, under reserved keys) are encoded with it.

        ``plain``: JSON signed as it is, without base64 (``TimestampSigner.dumps()``), for
        sessionplus's own records, which Django's engines never read.
        """
        check_keys(session_dict)
        stored = session_dict if own_fields is None else {**session_dict, **own_fields}
        serialized = CheckingSerializer(self.serializer, self._max_size()).dumps(stored)
        session_signer = signer(self.key_salt)
        signed = session_signer.dumps(serialized, self.compress_over, plain)
        # The next load of this session (as often as not in this process) decodes nothing.
        session_signer.remember_decoded(signed, self.serializer, stored)
        return signed

    def decode(self, session_data: str | bytes) -> dict[str, Any]:
        # Signed data is text: bytes, which SessionBase.decode admits, never decode (nor in Django).
        decoded = self.decode_or_none(session_data) if isinstance(session_data, str) else None
        return {} if decoded is None else decoded

    def decode_or_none(self, session_data: str) -> dict[str, Any] | None:
        """Decode stored data; return None (and log) when it fails its signature or decoding."""
        return self.loaded_or_none(signer(self.key_salt).loads, session_data, self.serializer)

    def loaded_or_none(
        self, load: Callable[..., object], *args: Any, **kwargs: Any
    ) -> dict[str, Any] | None:
        """Return the session ``load(*args, **kwargs)`` decodes; None (logged) if it does not."""
        try:
            decoded = load(*args, **kwargs)
        except BadSignature:
            self.log_suspicious("failed its signature check")
            return None
        except Exception as exc:  # any serializer may raise anything on garbage
            self.log_suspicious(f"could not be decoded ({type(exc).__name__})")
            return None
        if not isinstance(decoded, dict):
            self.log_suspicious("did not decode to a dict")
            return None
        return decoded

    def log_suspicious(self, problem: str) -> None:
        # Django's message first: log-based alerts on Django's engines key on it.
        suspicious_logger.warning(
            "Session data corrupted: %s (session %s).", problem, log_id(self.session_key)
        )

    # Expiry --------------------------------------------------------------------

    def set_expiry(self, value: int | datetime | timedelta | None) -> None:
        check_expiry(value)
        super().set_expiry(value)

    async def aset_expiry(self, value: int | datetime | timedelta | None) -> None:
        check_expiry(value)
        await super().aset_expiry(value)

    def _loaded(self) -> dict[str, Any]:
        return self._without_corrupt_expiry(self._session_cache)

    def _without_corrupt_expiry(self, session: dict[str, Any]) -> dict[str, Any]:
        # Checked once per load, for every engine: an expiry the expiry maths would
        # choke on later (a 500 at response time) means there is no session.
        expiry = session.get(EXPIRY_KEY)
        if expiry is None or stored_expiry_is_valid(expiry):  # None: the usual, no own expiry
            return session
        self.log_suspicious("had an invalid expiry")
        self._session_key = None
        self._metadata = dict(self._metadata_changes)
        self._session_cache = {}
        return self._session_cache

    def expiry_timestamp(self, now: float | None = None) -> float:
        """Return when this session expires, as a UNIX timestamp."""
        if self.copied_expires_at is not None:
            return self.copied_expires_at
        now = now_timestamp() if now is None else now
        expiry = self.get(EXPIRY_KEY)
        if (expiry is None or type(expiry) is int or type(expiry) is float) and (
            type(self).get_expiry_date is SessionBase.get_expiry_date
        ):
            # Django's expiry maths for seconds, or the cookie age, without the datetimes
            # (about 20,000 CPU instructions on every write).
            return now + (expiry or self.get_session_cookie_age())
        return self.get_expiry_date(modification=as_utc_datetime(now)).timestamp()

    # Load / save template for blob engines ---------------------------------------

    def _read(self, session_key: str) -> StoredSession | None:
        """Return the stored session, or None when it is missing or expired."""
        raise NotImplementedError

    async def _aread(self, session_key: str) -> StoredSession | None:
        return await sync_to_async(self._read)(session_key)

    def _write(self, record: StoredSession, must_create: bool) -> None:
        """Store ``record`` under ``self.session_key``; raise CreateError / UpdateError."""
        raise NotImplementedError

    async def _awrite(self, record: StoredSession, must_create: bool) -> None:
        await sync_to_async(self._write)(record, must_create)

    def exists(self, session_key: str | None) -> bool:
        if not is_valid_session_key(session_key):
            return False
        record = self._read(session_key)
        return record is not None and record.expires_at > now_timestamp()

    async def aexists(self, session_key: str | None) -> bool:
        if not is_valid_session_key(session_key):
            return False
        record = await self._aread(session_key)
        return record is not None and record.expires_at > now_timestamp()

    def _accept(self, record: StoredSession | None) -> dict[str, Any]:
        if record is None or record.expires_at <= now_timestamp():
            self._session_key = None
            return {}
        data = self.decode_or_none(record.data)
        if data is None:
            self._session_key = None
            return {}
        self._accept_metadata(record.metadata)
        self._loaded_data = record.data
        return data

    def record_from_text(self, text: object) -> StoredSession | None:
        """Parse a record stored as ``StoredSession.to_text()``; None (logged) if damaged."""
        if isinstance(text, str):
            try:
                return StoredSession.from_text(text)
            except ValueError:
                pass
        self.log_suspicious("is not a readable session record")
        return None

    def load(self) -> dict[str, Any]:
        # A session without a key has nothing stored: reading it costs no storage call.
        if self.session_key is None:
            return self._accept(None)
        return self._accept(self._read(self.session_key))

    async def aload(self) -> dict[str, Any]:
        if self.session_key is None:
            return self._accept(None)
        return self._accept(await self._aread(self.session_key))

    def _record_to_write(self, must_create: bool) -> StoredSession:
        now = now_timestamp()
        session = self._get_session(no_load=must_create)
        return StoredSession(
            # The record's own format: neither Django's engines nor signing.loads() read it,
            # and base64 was a third of the CPU of verifying and decoding it.
            data=self.encode(session, plain=True),
            expires_at=self.expiry_timestamp(now),
            metadata=self.metadata_for_write(now),
        )

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        self._write(self._record_to_write(must_create), must_create)
        self._mark_saved()

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        await self._awrite(self._record_to_write(must_create), must_create)
        self._mark_saved()

    def create(self) -> None:
        drive(self._creating(self._save_new))

    async def acreate(self) -> None:
        await adrive(self._creating(self._save_new))

    def _save_new(self) -> Plan[None]:
        yield Step(self, "save", True)  # must_create=True

    def _creating(self, save: Callable[[], Generator[OpT, Any, None]]) -> Generator[OpT, Any, None]:
        """
        Create the session under a new key, trying another while the key is taken: the
        loop of every engine's create(), whatever steps its ``save`` plan yields.
        """
        for _ in range(MAX_CREATE_ATTEMPTS):
            self._session_key = self._get_new_session_key()
            try:
                yield from save()
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key.")

    def flush(self) -> None:
        super().flush()
        self._metadata = {}

    async def aflush(self) -> None:
        await super().aflush()
        self._metadata = {}

    # Touch ---------------------------------------------------------------------

    def touch(self) -> None:
        """
        Refresh expiry and last activity, keeping the data that is stored now.

        The frame is the same for every engine (see ``_touch_plan``); the write is the
        engine's ``_touch_write``.
        """
        drive(self._touch_plan())

    async def atouch(self) -> None:
        await adrive(self._touch_plan())

    def _touch_plan(self) -> Plan[None]:
        if self.modified:
            yield Step(self, "save")
            return None
        yield Step(self, "_get_session")  # the expiry may live in the data
        if self.session_key is None:
            return None
        yield from self._touch_write(self.session_key)
        self._mark_saved()
        return None

    def _touch_write(self, session_key: str) -> Plan[None]:
        """
        Read the record again and rewrite only its header.

        When its data is no longer what this session loaded, another request saved
        meanwhile (refreshing expiry and activity itself), and nothing is written: a
        touch never brings back data a concurrent request changed or removed.
        """
        record = self._touched((yield Step(self, "_read", session_key)))
        if record is not None:
            yield Step(self, "_write", record, False)

    def _touched(self, stored: StoredSession | None) -> StoredSession | None:
        """Return ``stored`` with its expiry and activity refreshed, or None to write nothing."""
        now = now_timestamp()
        if stored is None or stored.expires_at <= now:
            raise UpdateError
        if stored.data != self._loaded_data:
            return None
        metadata = {**stored.metadata, **self.metadata_for_touch(now)}
        return StoredSession(stored.data, self.expiry_timestamp(now), metadata)
