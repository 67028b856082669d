"""
Session engine keeping each session in one Redis value, through a django-redis alias.

Layout under ``SESSIONPLUS_REDIS_KEY_PREFIX`` (default ``sessionplus:``):

* ``<prefix><session key>``: one string (``layout``) holding a field per session key
  (``d:<key>``), the metadata (``m:created_at``, ``m:last_activity``, ``m:user_id``,
  ``m:ip``, ``m:user_agent``) and, for a logged-in session, ``x:index`` naming its user
  index. Every field's value is serialized with ``SESSION_SERIALIZER`` and signed together
  with its field name (``codec``), so a value altered, forged or moved to another field
  fails its signature. The key's TTL is the session's expiry: Redis expires sessions itself.
* ``<prefix>user:<user id>``: a set of that user's session keys (``index``).

Each session operation is one atomic round trip to the primary: one GET for a read, one
SET NX for a create, a Lua script for a save that changes only the fields it names
(``scripts``), each written once as a plan that ``executor`` runs on the sync or the
asyncio client. A load verifies what it needs (last activity and the expiry, and what the
lifecycle reads as the session loads); each other value, data or metadata, is verified
and decoded when first read (``data``).
"""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from datetime import timezone as dt_timezone
from functools import partial
from typing import Any, TypeVar, cast

from django.contrib.auth import SESSION_KEY

from sessionplus.backends.base import (
    MAX_CREATE_ATTEMPTS,
    CreateError,
    SessionPlusBase,
    UpdateError,
    is_valid_session_key,
)
from sessionplus.backends.data_rule import check_keys
from sessionplus.backends.expiry import EXPIRY_KEY, stored_expiry_is_valid
from sessionplus.backends.memo import IMMUTABLE
from sessionplus.backends.metadata import METADATA_FIELDS, SessionMetadata
from sessionplus.backends.redis import index, layout, scripts
from sessionplus.backends.redis.codec import FieldCodec, codec_for
from sessionplus.backends.redis.compressors import BaseCompressor, ZlibCompressor
from sessionplus.backends.redis.data import ENCODED, DataOwner, LazyData, StoredFields
from sessionplus.backends.redis.executor import (
    Command,
    GetValue,
    IsCluster,
    Op,
    Plan,
    arun,
    run,
)
from sessionplus.backends.redis.index import INDEX_FIELD, ms
from sessionplus.backends.redis.signatures import BadSignature
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.conf import conf

__all__ = ["SessionStore"]

T = TypeVar("T")

DATA = "d:"
DATA_BYTES = DATA.encode()
INDEX_FIELD_BYTES = INDEX_FIELD.encode()
META = "m:"
META_BYTES = META.encode()
EXPIRY_FIELD_BYTES = (DATA + EXPIRY_KEY).encode()
METADATA_FIELD_BYTES = {name: META_BYTES + name.encode() for name in METADATA_FIELDS}
_KNOWN_METADATA = frozenset(METADATA_FIELDS)
# Seconds a session may be read past its own expiry: the app servers' clocks and Redis's
# need not agree to the second.
CLOCK_SKEW = 60

_MISSING = object()


class _Write:
    """The calls one save makes, and what the store knows once they succeed."""

    def __init__(
        self,
        main: Op | None,
        before: Sequence[Op],
        after: Sequence[Op],
        stored: StoredFields,
        index: tuple[str, float] | None,
        value: bytes | None = None,
    ) -> None:
        self.main, self.before, self.after = main, before, after
        self.stored, self.index = stored, index
        # The whole value the save stores if the session is still as loaded.
        self.value = value


class SessionStore(SessionPlusBase):
    """Sessions as Redis values: delta saves, no lost updates, one round trip per operation."""

    # What shrinks large values before they are signed (see ``compressors``).
    compressor: BaseCompressor = ZlibCompressor()

    # The data as loaded or last saved (None: not loaded, so unknown). A save compares
    # each value read with it, so changes made in place are saved too.
    _stored: StoredFields | None = None
    # (user id, until when the user's index set is kept alive) for a logged-in session;
    # as stored (bytes) until a write needs it: a read never does.
    _index: tuple[str, float] | bytes | None = None
    # The value as loaded or last written whole by this store (None: unknown).
    _loaded_value: bytes | None = None

    # Keys, clients, codec ----------------------------------------------------------

    @classmethod
    def redis_key(cls, session_key: str) -> str:
        """Return the Redis key of a session's value."""
        return f"{conf.SESSIONPLUS_REDIS_KEY_PREFIX}{session_key}"

    def _live_key(self) -> str:
        """
        Return the session key an operation on the stored session uses.

        Raise UpdateError when there is none: a value read while planning a save failed
        its check and ended the session (``_value_failed()``); nothing may be written then.
        (A load or a TTL read always has a key: Django loads only a session that has one.)
        """
        if self.session_key is None:
            raise UpdateError
        return self.session_key

    @classmethod
    def user_index_key(cls, user_id: object) -> str:
        """Return the Redis key of the set of a user's session keys."""
        return index.index_key(user_id)

    @staticmethod
    def _run(plan: Plan[T]) -> T:
        return run(plan, conf.SESSIONPLUS_REDIS_ALIAS)

    @staticmethod
    async def _arun(plan: Plan[T]) -> T:
        return await arun(plan, conf.SESSIONPLUS_REDIS_ALIAS)

    def codec(self) -> FieldCodec:
        """Return the codec of one operation: it reads SECRET_KEY and its fallbacks once."""
        return codec_for(self.serializer, self.key_salt, self.compressor)

    # Load ------------------------------------------------------------------------------

    def _load_plan(self) -> Plan[dict[str, Any]]:
        session_key = self.session_key
        if session_key is None:  # as Django's load(): no (or a malformed) key is no session
            self._forget()
            return {}
        value = yield GetValue(self.redis_key(session_key).encode())
        # None: no session (expired, deleted, never was).
        data = None if value is None else self._accept_value(value)
        if data is None:
            self._forget()
            return {}
        return data

    def load(self) -> dict[str, Any]:
        return self._run(self._load_plan())

    async def aload(self) -> dict[str, Any]:
        return await self._arun(self._load_plan())

    def _forget(self) -> None:
        self._session_key = None
        self._stored, self._index = StoredFields(), None
        self._loaded_value = None

    def _problem(self, exc: Exception) -> str:
        if isinstance(exc, BadSignature):
            return "failed its signature check"
        if isinstance(exc, layout.Malformed):
            return f"is not a session value: {exc}"
        return f"could not be decoded ({type(exc).__name__})"

    def _accept_value(self, value: bytes | str | object) -> LazyData | None:
        """
        Take a stored value: what the load needs verified now, the rest when read.

        Return None (logged) when it is not ours or has outlived its own expiry. ``value``
        is GET's reply (``layout.unpack()``), or ``WRONG_TYPE`` for a key holding something
        else than a string.
        """
        codec = self.codec()
        decode = codec.decode_bytes
        try:
            encoded, stored_metadata, index = layout.unpack(value)
            metadata = StoredFields(stored_metadata)
            for name in self._metadata_needed_at_load():
                raw = stored_metadata.pop(name, None)
                if raw is None:
                    continue
                if (found := decode(METADATA_FIELD_BYTES[name], raw)[0]) is not None:
                    metadata.values[name] = found
            for name in stored_metadata.keys() - _KNOWN_METADATA:
                # Fields of a later version: kept by saves, verified now (none is forged).
                decode(META_BYTES + name.encode(), stored_metadata.pop(name))
            stored = StoredFields(encoded)
            raw_expiry = encoded.pop(EXPIRY_KEY, None)
            if raw_expiry is not None:
                expiry, form = decode(EXPIRY_FIELD_BYTES, raw_expiry)
                stored.values[EXPIRY_KEY], stored.forms[EXPIRY_KEY] = expiry, form
        except Exception as exc:  # a bad signature, or anything a serializer raises
            self.log_suspicious(self._problem(exc))
            return None
        if self._outlived(metadata.values.get("last_activity"), stored.values.get(EXPIRY_KEY)):
            return None
        self._stored, self._index = stored, index
        # Bytes or str: unpack() refused anything else.
        self._loaded_value = value.encode() if isinstance(value, str) else cast("bytes", value)
        owner: weakref.ref[DataOwner] = weakref.ref(self)
        data = LazyData(stored, codec.section_decoder(DATA_BYTES), owner)
        self._metadata = LazyData(metadata, codec.section_decoder(META_BYTES), owner, data)
        # Metadata staged before the session was loaded wins over what was stored.
        self._metadata.update(self._metadata_changes)
        return data

    @staticmethod
    def _metadata_needed_at_load() -> Collection[str]:
        """
        Return the metadata a load verifies: what the load and ``lifecycle.end_reason()``
        read as the session loads, so that a value failing there ends the session as a
        load does (``session_created``, ``SESSIONPLUS_PREVIOUS_ENGINE`` alike).
        """
        if conf.SESSIONPLUS_BIND:
            return METADATA_FIELDS
        if conf.SESSIONPLUS_ABSOLUTE_TIMEOUT:
            return ("last_activity", "created_at")
        return ("last_activity",)

    def _known_index(self) -> tuple[str, float] | None:
        """Return (user id, kept until) of the session's user index, verified on first use."""
        index = self._index
        if isinstance(index, bytes):
            try:
                user_id, until = self.codec().loads(INDEX_FIELD, index)
                index = (str(user_id), float(until))
            except Exception as exc:  # names no index: the upkeep starts afresh
                self.log_suspicious(f"has an index field that {self._problem(exc)}")
                index = None
            self._index = index
        return index

    def _outlived(self, last_activity: object, expiry: object) -> bool:
        """
        Return whether a value is past the expiry its own signed fields give (logged).

        Every write sets the TTL from ``m:last_activity`` and the expiry: a value whose TTL
        was removed or stretched behind the engine's back ends when the session would
        have. (An expiry the expiry maths cannot use is reported by the base class.)
        """
        if not isinstance(last_activity, (int, float)) or isinstance(last_activity, bool):
            self.log_suspicious("has no last activity")
            return True
        if not stored_expiry_is_valid(expiry):
            return False
        if isinstance(expiry, str):  # Django's own expiry maths, for a date
            modification = datetime.fromtimestamp(last_activity, tz=dt_timezone.utc)
            expires_at = self.get_expiry_date(modification=modification, expiry=expiry).timestamp()
        else:  # seconds, or the cookie age (Django's get_expiry_age() without datetimes)
            # (stored_expiry_is_valid() let through only these, and None.)
            seconds = cast("float | None", expiry)
            expires_at = last_activity + (seconds or self.get_session_cookie_age())
        if expires_at + CLOCK_SKEW >= now_timestamp():
            return False
        self.log_suspicious("outlived its expiry")
        return True

    # What the loaded data and metadata tell their store (``data.DataOwner``).

    def _value_failed(self, exc: Exception) -> None:
        # A value read later failed: the session ends as it would have at load.
        self.log_suspicious(self._problem(exc))
        self._forget()
        self._metadata = dict(self._metadata_changes)

    def _verify_metadata(self) -> None:
        # Whatever sees the whole session sees it verified whole, as a load once did.
        metadata = self._metadata
        if isinstance(metadata, LazyData):
            metadata.decode_all()

    _before_walk = _verify_metadata

    def _metadata_differs(self, name: str, value: str) -> bool:
        # A field never read is compared as stored text, unverified: a differing one is
        # written afresh, and a forged one that matches stays to fail when read. Verifying
        # the IP and user agent only to compare them was most of a save's CPU.
        metadata = self._metadata
        stored = metadata.unread_text(name) if isinstance(metadata, LazyData) else None
        if stored is None:
            return super()._metadata_differs(name, value)
        codec = self.codec()
        return not codec.stores(stored, codec.serialize(value))

    @property
    def metadata(self) -> SessionMetadata:
        """Return what is recorded about this session besides its data, verified whole."""
        self._get_session()
        self._verify_metadata()
        return SessionMetadata.from_stored(self._metadata)

    # Save ------------------------------------------------------------------------------

    def _serialized_value(self, codec: FieldCodec, key: str, value: Any) -> bytes:
        try:
            return codec.serialize(value)
        except Exception:  # a serializer may raise anything on a value it refuses
            self.serialize_data({key: value})  # raises the data rule's error, naming the key
            raise

    def _changes(
        self, codec: FieldCodec, session: dict[str, Any], known: StoredFields | None
    ) -> tuple[dict[str, bytes], list[str], StoredFields]:
        """
        Return the serialized values that differ from what is stored, the keys gone, and
        what is stored once they are written.

        This is what a whole-session save would change, found at save time: values
        assigned, mutated in place (``setdefault()`` then ``append()``), or replaced
        behind the store's back alike. A value never read is unchanged and never
        serialized. Keys another request added meanwhile are not ``known`` here, so they
        are neither written nor deleted.
        """
        values = known.values if known is not None else {}
        forms = known.forms if known is not None else {}
        changed: dict[str, bytes] = {}
        items: Iterable[tuple[str, Any]]
        if isinstance(session, LazyData):
            # Values never read are unchanged: carried over as stored. The rest (read,
            # assigned) are found with a set difference, not a pass over every key.
            after = StoredFields(encoded=session.unread())
            read = dict.keys(session) - after.encoded.keys()
            items = [(key, dict.__getitem__(session, key)) for key in read]
        else:
            after, items = StoredFields(), session.items()
        for key, value in items:
            after.values[key] = value
            if type(value) in IMMUTABLE and key in values and values[key] is value:
                after.forms[key] = forms[key]
                continue  # the very object loaded, and it cannot have changed
            form = self._serialized_value(codec, key, value)
            after.forms[key] = form
            if forms.get(key, _MISSING) != form and not self._stores(codec, key, known, form):
                changed[key] = form
        # The data rule on what is written; what is stored passed it when written.
        check_keys(changed)
        gone = [] if known is None else [key for key in known.stored_keys() if key not in session]
        return changed, gone, after

    @staticmethod
    def _stores(codec: FieldCodec, key: str, known: StoredFields | None, form: bytes) -> bool:
        # A value assigned without being read is compared with the stored text, unverified
        # (as staged metadata is): a differing one is written, signed afresh, and a forged
        # one that matches stays to fail when read.
        stored = None if known is None else known.encoded.get(key)
        return stored is not None and codec.stores(stored, form)

    def _check_size(self, session: dict[str, Any], after: StoredFields) -> None:
        """Refuse a session larger than SESSIONPLUS_MAX_SIZE before anything is written."""
        limit = conf.SESSIONPLUS_MAX_SIZE
        estimate = sum(len(key) + len(form) + 8 for key, form in after.forms.items())
        if after.encoded:
            # Texts never read are in the value this store knows whole: its length bounds
            # what they encode, unless one is compressed (past the header, the marker
            # appears only where a compressed text starts; a marker from the base64
            # alphabet counts every value as compressed: safe) or the value is unknown.
            known = self._loaded_value
            marker = self.compressor.marker.encode()
            if known is None or (marker and known.find(marker, known.find(b"\n")) >= 0):
                estimate = limit
            else:
                estimate += len(known)
        if estimate > limit // 2:  # near the limit: measure exactly, as other engines do
            self.serialize_data(dict(session.items()))
            self._live_key()  # a value read to measure it may not have been ours

    def _plan_write(self, must_create: bool) -> _Write:
        """Plan a save: the data delta, metadata, TTL, and the user index's upkeep."""
        # First: a create must not load (and so forget) the key it is about to write.
        session = self._get_session(no_load=must_create)
        codec = self.codec()
        now = now_timestamp()
        expires_at = self.expiry_timestamp(now)
        ttl = ms(expires_at - now)
        metadata = self._metadata_texts(codec, must_create, now)
        known = None if must_create else self._stored
        # Never loaded (clear() or flush() first): every data field stored goes.
        drop_all = not must_create and known is None
        changed, deleted, after = self._changes(codec, session, known)
        self._check_size(session, after)

        data = {key: codec.encode(DATA_BYTES + key.encode(), form) for key, form in changed.items()}
        if known is None:
            # Values never read are written back as stored: signed for their field name,
            # they verify under any session key.
            data.update(after.encoded)
        auth_written = must_create or drop_all or SESSION_KEY in changed or SESSION_KEY in deleted
        before, after_calls, new_index = index.upkeep(
            self, must_create, auth_written, expires_at, now
        )
        # Signed only when written: a create always writes it, a save when it changed.
        index_changed = must_create or new_index != self._known_index()
        index_text = None
        if index_changed and new_index is not None:
            index_text = codec.dumps(INDEX_FIELD, list(new_index))
        session_key = self.redis_key(self._live_key()).encode()
        if must_create:
            # A session already past its expiry is not written: Redis would drop it at once.
            value = layout.pack(data, metadata, index_text)
            main = None if ttl <= 0 else Command("set", (session_key, value, None, ttl, True))
            return _Write(main, before, after_calls, after, new_index)

        # The whole value after this save, if the session is still as loaded: the script
        # then stores it as it is, without taking the stored value apart.
        loaded = None if known is None else self._loaded_value
        value = b""
        if loaded is not None:
            texts, metadata_texts, index_before = layout.unpack(loaded)
            for key in deleted:
                texts.pop(key, None)
            texts.update(data)
            metadata_texts.update(metadata)
            index_after = index_text if index_changed else index_before
            value = layout.pack(texts, metadata_texts, index_after)

        # Every argument as bytes (see FieldCodec.encode()).
        deleted_fields = [DATA_BYTES + key.encode() for key in deleted]
        pairs: list[bytes] = []
        for key, text in data.items():
            pairs += [DATA_BYTES + key.encode(), text]
        for name, text in metadata.items():
            pairs += [METADATA_FIELD_BYTES[name], text]
        if index_changed:
            if index_text is None:
                deleted_fields.append(INDEX_FIELD_BYTES)
            else:
                pairs += [INDEX_FIELD_BYTES, index_text]
        deleting = b"%d" % len(deleted_fields)
        args = [b"%d" % ttl, b"1" if drop_all else b"0", loaded or b"", value, deleting]
        save = scripts.SAVE([session_key], [*args, *deleted_fields, *pairs])
        return _Write(save, before, after_calls, after, new_index, value or None)

    def _metadata_texts(self, codec: FieldCodec, must_create: bool, now: float) -> dict[str, bytes]:
        """
        Return the stored text of each metadata field a write sets, by name.

        A save sets last activity and what was staged here; a create all there is, where
        a field never read is written back as stored, to be verified when read (as data is).
        """
        # What metadata_for_write() records, without reading (so verifying) stored fields.
        self.stamp_write(now)
        metadata = self._metadata
        texts: dict[str, bytes] = {}
        if must_create:
            if isinstance(metadata, LazyData):
                texts.update(metadata.unread())
            values = {name: dict.get(metadata, name) for name in METADATA_FIELDS}
        else:
            values = {"last_activity": now, **self._metadata_changes}
        for name, value in values.items():
            if value is not None and value is not ENCODED:
                field = METADATA_FIELD_BYTES[name]
                texts[name] = codec.encode(field, codec.serialize(value))
        return texts

    def _save_plan(self, must_create: bool) -> Plan[None]:
        write = self._plan_write(must_create)
        for call in write.before:
            yield call
        written = True if write.main is None else (yield write.main)
        if not written:
            # CreateError: the key is taken, create() picks another. UpdateError: the
            # session was deleted meanwhile (logout elsewhere); never resurrect it.
            raise CreateError if must_create else UpdateError
        # SAVE answers 2 when it stored the value planned here whole, 1 when it merged.
        self._loaded_value = write.value if written == 2 else None
        for call in write.after:
            yield call
        self._stored, self._index = write.stored, write.index
        session = getattr(self, "_session_cache", None)
        if isinstance(session, LazyData):
            session.saved_as(write.stored)
        self._mark_saved()

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        self._run(self._save_plan(must_create))

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        await self._arun(self._save_plan(must_create))

    def touch(self) -> None:
        """Refresh expiry and last activity in one round trip; write pending changes too."""
        self._get_session()
        if self.session_key is not None:
            self.save()

    async def atouch(self) -> None:
        await self._aget_session()
        if self.session_key is not None:
            await self.asave()

    # Exists / delete -------------------------------------------------------------------

    def _exists_plan(self, session_key: str | None) -> Plan[bool]:
        if session_key is None or not is_valid_session_key(session_key):
            return False
        return bool((yield Command("exists", (self.redis_key(session_key),))))

    def exists(self, session_key: str | None) -> bool:
        return self._run(self._exists_plan(session_key))

    async def aexists(self, session_key: str | None) -> bool:
        return await self._arun(self._exists_plan(session_key))

    def _delete_plan(self, session_key: str | None) -> Plan[None]:
        if session_key is None:
            session_key = self.session_key
            self._index = None
        if session_key is None or not is_valid_session_key(session_key):
            return
        stored = yield scripts.DELETE([self.redis_key(session_key)], [])
        yield from index.unindex(self, session_key, stored)

    def delete(self, session_key: str | None = None) -> None:
        self._run(self._delete_plan(session_key))

    async def adelete(self, session_key: str | None = None) -> None:
        await self._arun(self._delete_plan(session_key))

    # Create / cycle key ----------------------------------------------------------------

    def _create_plan(self) -> Plan[None]:
        return self._creating(partial(self._save_plan, must_create=True))

    def create(self) -> None:
        self._run(self._create_plan())

    async def acreate(self) -> None:
        await self._arun(self._create_plan())

    def _cycle_plan(self, data: dict[str, Any]) -> Plan[None]:
        """
        Move the session to a new key; the old key stops working at once.

        On one server the value is renamed atomically (data written meanwhile by other
        requests moves with it). Redis Cluster cannot rename across slots: there the
        session is written under the new key, then the old key is deleted.
        """
        old_key = self.session_key
        if old_key is None or (yield IsCluster()):
            yield from self._create_plan()
            self._session_cache = data
            if old_key is not None:
                yield from self._delete_plan(old_key)
            return
        for _ in range(MAX_CREATE_ATTEMPTS):
            new_key = self._get_new_session_key()
            before, after = self._cycle_index_calls(old_key, new_key)
            for call in before:
                yield call
            moved = yield scripts.CYCLE([self.redis_key(old_key), self.redis_key(new_key)], [])
            if moved == 0:
                continue
            if moved < 0:  # deleted meanwhile: start afresh with what this request holds
                self._session_key = None
                self._index = None
                yield from self._create_plan()
                return
            for call in after:
                yield call
            self._session_key = new_key
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key.")

    def _cycle_index_calls(self, old_key: str, new_key: str) -> tuple[list[Op], list[Op]]:
        current = self._known_index()
        if current is None:
            return [], []
        user_id, until = current
        add = index.add(user_id, new_key, ms(until - now_timestamp()))
        return [add], [index.remove(user_id, [old_key])]

    def cycle_key(self) -> None:
        self._run(self._cycle_plan(self._get_session()))

    async def acycle_key(self) -> None:
        await self._arun(self._cycle_plan(await self._aget_session()))

    # Moving sessions between engines (``adoption``) ---------------------------------------

    def _ttl_plan(self) -> Plan[float]:
        milliseconds = yield Command("pttl", (self.redis_key(self._live_key()),))
        return int(milliseconds) / 1000

    def seconds_to_live(self) -> float:
        """Return how long the session's value has left before Redis expires it."""
        return self._run(self._ttl_plan())

    @classmethod
    def stored_keys(cls) -> list[bytes | str]:
        """Return every Redis key under the prefix (sessions and user indexes)."""
        pattern = index.glob_escape(conf.SESSIONPLUS_REDIS_KEY_PREFIX) + "*"
        return cls._run(index.scan(pattern))

    # Per-user index --------------------------------------------------------------------

    @classmethod
    def sessions_for_user(cls, user_id: object) -> list[str]:
        """Return the keys of a user's live sessions, pruning expired ones from the index."""
        return cls._run(index.sessions_for_user(cls, user_id))

    @classmethod
    async def asessions_for_user(cls, user_id: object) -> list[str]:
        return await cls._arun(index.sessions_for_user(cls, user_id))

    @classmethod
    def user_session_metadata(cls, user_id: object) -> dict[str, SessionMetadata]:
        """
        Return the metadata of a user's live sessions by key: two round trips.

        One reads the index, one pipeline reads every member's metadata fields. Members
        whose session expired are skipped here and pruned by ``clear_expired()``.
        """
        return cls._run(index.user_session_metadata(cls, user_id))

    @classmethod
    async def auser_session_metadata(cls, user_id: object) -> dict[str, SessionMetadata]:
        plan = index.user_session_metadata(cls, user_id)
        return await cls._arun(plan)

    @classmethod
    def end_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        """End every session of a user except ``keep``; return how many were live."""
        return cls._run(index.end_sessions_for_user(cls, user_id, keep))

    @classmethod
    async def aend_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        plan = index.end_sessions_for_user(cls, user_id, keep)
        return await cls._arun(plan)

    @classmethod
    def prune_user_indexes(cls) -> int:
        """Remove index members whose sessions have expired; return how many went."""
        return cls._run(index.prune_all(cls))

    @classmethod
    async def aprune_user_indexes(cls) -> int:
        return await cls._arun(index.prune_all(cls))

    # Returns how many index members went, where Django's returns None: its callers ignore it.
    @classmethod
    def clear_expired(cls) -> int:  # type: ignore[override]
        """Redis expires sessions itself; prune the user indexes of what it expired."""
        return cls.prune_user_indexes()

    @classmethod
    async def aclear_expired(cls) -> int:  # type: ignore[override]
        return await cls.aprune_user_indexes()
