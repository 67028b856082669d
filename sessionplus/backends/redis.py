"""
Session engine keeping each session in one Redis hash, through a django-redis alias.

Layout under ``SESSIONPLUS_REDIS_KEY_PREFIX`` (default ``sessionplus:``):

* ``<prefix><session key>``: a hash with one field per session key (``d:<key>``), the
  metadata (``m:created_at``, ``m:last_activity``, ``m:user_id``, ``m:ip``,
  ``m:user_agent``) and, for a logged-in session, ``x:index`` naming its user index. Every
  value is serialized with ``SESSION_SERIALIZER`` and signed together with its field name
  (``redis_signing``), so a value altered, forged or moved to another field fails its
  signature. The key's TTL is the session's expiry: Redis expires sessions itself.
* ``<prefix>user:<user id>``: a set of that user's session keys, alive at least as long as
  its longest-lived member.

Each session operation is one atomic round trip to the primary: a MULTI/EXEC transaction
for a read, a Lua script for a write (see ``redis_scripts``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import SESSION_KEY

from sessionplus.backends import redis_scripts as scripts
from sessionplus.backends import redis_signing as signatures
from sessionplus.backends.base import (
    MAX_CREATE_ATTEMPTS,
    CreateError,
    SessionPlusBase,
    UpdateError,
    is_valid_session_key,
)
from sessionplus.backends.metadata import METADATA_FIELDS, SessionMetadata
from sessionplus.backends.redis_clients import (
    UNAVAILABLE_ERRORS,
    async_client,
    is_cluster,
    sync_client,
)
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.conf import conf
from sessionplus.outage import unavailable_on

__all__ = ["SessionStore"]

DATA = "d:"
META = "m:"
INDEX_FIELD = "x:index"
USER_INDEX = "user:"
# Members checked per round trip when pruning a user index.
PRUNE_BATCH = 500

# Values of these types cannot change in place: one still the very object stored is unchanged.
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})

T = TypeVar("T")
Call = tuple[scripts.Script | scripts.Transaction, list[str], list[Any]]


@dataclass(frozen=True)
class _Stored:
    """What the hash holds of the data, as far as this store knows: values and serialized forms."""

    values: dict[str, Any]
    forms: dict[str, bytes]


@dataclass(frozen=True)
class _Write:
    """The script calls one save makes, and what the store knows once they succeed."""

    main: Call
    before: list[Call]  # user index additions, made before the session is written
    after: list[Call]  # user index removals, made after
    stored: _Stored
    index: tuple[str, float] | None


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SessionStore(SessionPlusBase):
    """Sessions as Redis hashes: delta saves, no lost updates, one round trip per operation."""

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        # The data as loaded or last saved (None: not loaded, so unknown). A save compares
        # each value's serialized form with it, so changes made in place are saved too.
        self._stored: _Stored | None = None
        # (user id, until when the user's index set is kept alive) for a logged-in session.
        self._index: tuple[str, float] | None = None

    # Keys and clients ----------------------------------------------------------------

    @classmethod
    def redis_key(cls, session_key: str) -> str:
        """Return the Redis key of a session's hash."""
        return f"{conf.SESSIONPLUS_REDIS_KEY_PREFIX}{session_key}"

    @classmethod
    def user_index_key(cls, user_id: object) -> str:
        """Return the Redis key of the set of a user's session keys."""
        return f"{conf.SESSIONPLUS_REDIS_KEY_PREFIX}{USER_INDEX}{user_id}"

    @staticmethod
    def _run(operation: Callable[[Any], T]) -> T:
        with unavailable_on(*UNAVAILABLE_ERRORS):
            return operation(sync_client(conf.SESSIONPLUS_REDIS_ALIAS))

    @staticmethod
    async def _arun(operation: Callable[[Any], Awaitable[T]]) -> T:
        with unavailable_on(*UNAVAILABLE_ERRORS):
            return await operation(await async_client(conf.SESSIONPLUS_REDIS_ALIAS))

    @classmethod
    def _call(cls, call: Call) -> Any:
        script, keys, args = call
        return cls._run(lambda client: script(client, keys, args))

    @classmethod
    async def _acall(cls, call: Call) -> Any:
        script, keys, args = call
        return await cls._arun(lambda client: script.acall(client, keys, args))

    # Encoding --------------------------------------------------------------------------

    def _signer(self) -> signatures.FieldSigner:
        # One per operation: it reads SECRET_KEY (and its fallbacks) once for all fields.
        return signatures.FieldSigner(self.key_salt)

    def _encode_field(self, signer: signatures.FieldSigner, name: str, value: Any) -> str:
        # Values passed the data rule (validate_for_write) before any is encoded.
        return signer.sign(name, self.serializer().dumps(value))

    def _decode_field(self, signer: signatures.FieldSigner, name: str, raw: bytes | str) -> Any:
        return self.serializer().loads(signer.unsign(name, _text(raw)))

    def _decode_hash(
        self, ttl: int, fields: dict[bytes | str, bytes | str]
    ) -> tuple[_Stored, dict[str, Any], tuple[str, float] | None] | None:
        """Split a stored hash into data, metadata and index; None (logged) if not ours."""
        if ttl < 0:
            self.log_suspicious("has no expiry in Redis")
            return None
        data: dict[str, Any] = {}
        forms: dict[str, bytes] = {}
        metadata: dict[str, Any] = {}
        index = None
        signer = self._signer()
        serializer = self.serializer()
        for raw_name, raw in fields.items():
            try:
                name = _text(raw_name)
                form = signer.unsign(name, _text(raw))
                value = serializer.loads(form)
                kind, key = name[:2], name[2:]
                if kind == DATA:
                    data[key] = value
                    forms[key] = form
                elif kind == META and key in METADATA_FIELDS:
                    metadata[key] = value
                elif name == INDEX_FIELD:
                    index = (str(value[0]), float(value[1]))
            except signatures.BadSignature:
                self.log_suspicious("failed its signature check")
                return None
            except Exception as exc:  # any serializer may raise anything on garbage
                self.log_suspicious(f"could not be decoded ({type(exc).__name__})")
                return None
        return _Stored(data, forms), metadata, index

    # Load ------------------------------------------------------------------------------

    def _load_call(self) -> Call:
        return scripts.LOAD, [self.redis_key(self.session_key)], []

    def _accept_hash(self, reply: list[Any]) -> dict[str, Any]:
        fields, ttl = reply
        # Redis has no empty hashes: no fields means no session (expired, deleted, never was).
        decoded = self._decode_hash(int(ttl), fields) if fields else None
        if decoded is None:
            self._session_key = None
            self._stored, self._index = _Stored({}, {}), None
            return {}
        stored, metadata, self._index = decoded
        self._accept_metadata(metadata)
        self._stored = stored
        return dict(stored.values)

    def load(self) -> dict[str, Any]:
        return self._accept_hash(self._call(self._load_call()))

    async def aload(self) -> dict[str, Any]:
        return self._accept_hash(await self._acall(self._load_call()))

    # Save ------------------------------------------------------------------------------

    def _fields(
        self, signer: signatures.FieldSigner, values: dict[str, Any], prefix: str
    ) -> list[str]:
        pairs = []
        for name, value in values.items():
            pairs += [prefix + name, self._encode_field(signer, prefix + name, value)]
        return pairs

    def _data_fields(self, signer: signatures.FieldSigner, forms: dict[str, bytes]) -> list[str]:
        pairs = []
        for key, form in forms.items():
            pairs += [DATA + key, signer.sign(DATA + key, form)]
        return pairs

    def _changes(
        self, session: dict[str, Any], stored: _Stored
    ) -> tuple[dict[str, bytes], list[str]]:
        """
        Return the serialized values that differ from what is stored, and the keys gone.

        This is what a whole-session save would change, found at save time: values
        assigned, mutated in place (``setdefault()`` then ``append()``), or replaced
        behind the store's back alike. Keys another request added meanwhile are not
        ``stored`` here, so they are neither written nor deleted.
        """
        serializer = self.serializer()
        values, forms = stored.values, stored.forms
        changed = {}
        for key, value in session.items():
            if type(value) in _IMMUTABLE and key in values and values[key] is value:
                continue  # the very object loaded, and it cannot have changed
            form = serializer.dumps(value)
            if forms.get(key) != form:
                changed[key] = form
        return changed, [key for key in forms if key not in session]

    def _write(self, must_create: bool) -> _Write:
        """Plan a save: the data delta, metadata, TTL, and the user index's upkeep."""
        # First: a create must not load (and so forget) the key it is about to write.
        session = self._get_session(no_load=must_create)
        # The data rule, for values mutated in place too: refused before anything is sent.
        self.validate_for_write()
        now = now_timestamp()
        expires_at = self.expiry_timestamp(now)
        ttl = _ms(expires_at - now)
        metadata = self.metadata_for_write(now)
        known = None if must_create else self._stored
        # Never loaded (clear() or flush() first): every data field stored goes.
        drop_all = not must_create and known is None
        if known is None:
            serializer = self.serializer()
            changed = {key: serializer.dumps(value) for key, value in session.items()}
            deleted: list[str] = []
        else:
            changed, deleted = self._changes(session, known)
        if must_create:
            meta = {name: value for name, value in metadata.items() if value is not None}
        else:
            meta = {"last_activity": metadata["last_activity"], **self._metadata_changes}

        signer = self._signer()
        pairs = self._data_fields(signer, changed) + self._fields(signer, meta, META)
        deleted_fields = [DATA + key for key in deleted]
        auth_written = must_create or drop_all or SESSION_KEY in changed or SESSION_KEY in deleted
        before, after, index = self._plan_index(must_create, auth_written, expires_at, now)
        if index != self._index:
            if index is None:
                deleted_fields.append(INDEX_FIELD)
            else:
                pairs += [INDEX_FIELD, self._encode_field(signer, INDEX_FIELD, list(index))]

        key = self.redis_key(self.session_key)
        if must_create:
            main = (scripts.CREATE, [key], [ttl, *pairs])
        else:
            args = [ttl, int(drop_all), len(deleted_fields), *deleted_fields, *pairs]
            main = (scripts.SAVE, [key], args)
        forms = {**(known.forms if known else {}), **changed}
        for gone in deleted:
            del forms[gone]
        return _Write(main, before, after, _Stored(dict(session), forms), index)

    def _plan_index(
        self, must_create: bool, auth_written: bool, expires_at: float, now: float
    ) -> tuple[list[Call], list[Call], tuple[str, float] | None]:
        """Return the index calls before and after the session write, and the new index."""
        current = self._index
        if auth_written:
            user = self._get_session(no_load=True).get(SESSION_KEY)
            wanted = None if user is None else str(user)
        else:
            wanted = current[0] if current else None
        before: list[Call] = []
        after: list[Call] = []
        index = current if current is not None and current[0] == wanted else None
        if wanted is not None and (must_create or index is None or index[1] < expires_at):
            # Index first: a failure after it leaves a member to prune, never a live
            # session that end_sessions_for_user() cannot find. The index outlives the
            # session by a cookie age, so touches rarely need to extend it again.
            until = expires_at + self.get_session_cookie_age()
            add = [_ms(until - now), self.session_key, ""]
            before.append((scripts.INDEX_ADD, [self.user_index_key(wanted)], add))
            index = (wanted, until)
        if current is not None and current[0] != wanted:
            after.append(self._index_remove(current[0], [self.session_key]))
        return before, after, index

    def _index_remove(self, user_id: str, session_keys: list[str]) -> Call:
        return scripts.INDEX_REMOVE, [self.user_index_key(user_id)], session_keys

    def _check(self, written: int, must_create: bool) -> None:
        if not written:
            # CreateError: the key is taken, create() picks another. UpdateError: the
            # session was deleted meanwhile (logout elsewhere); never resurrect it.
            raise CreateError if must_create else UpdateError

    def _saved(self, write: _Write) -> None:
        self._stored = write.stored
        self._index = write.index
        self._mark_saved()

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        write = self._write(must_create)
        for call in write.before:
            self._call(call)
        self._check(self._call(write.main), must_create)
        for call in write.after:
            self._call(call)
        self._saved(write)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        write = self._write(must_create)
        for call in write.before:
            await self._acall(call)
        self._check(await self._acall(write.main), must_create)
        for call in write.after:
            await self._acall(call)
        self._saved(write)

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

    def exists(self, session_key: str | None) -> bool:
        if not is_valid_session_key(session_key):
            return False
        key = self.redis_key(session_key)
        return bool(self._run(lambda client: client.exists(key)))

    async def aexists(self, session_key: str | None) -> bool:
        if not is_valid_session_key(session_key):
            return False
        key = self.redis_key(session_key)
        return bool(await self._arun(lambda client: client.exists(key)))

    def _delete_call(self, session_key: str | None) -> tuple[str, Call] | None:
        if session_key is None:
            session_key = self.session_key
            self._index = None
        if not is_valid_session_key(session_key):
            return None
        return session_key, (scripts.DELETE, [self.redis_key(session_key)], [INDEX_FIELD])

    def _unindex_call(self, session_key: str, index: bytes | None) -> Call | None:
        if index is None:
            return None
        try:
            user_id = str(self._decode_field(self._signer(), INDEX_FIELD, index)[0])
        except Exception:  # not ours: nothing to unindex, load() reports such hashes
            return None
        return self._index_remove(user_id, [session_key])

    def delete(self, session_key: str | None = None) -> None:
        planned = self._delete_call(session_key)
        if planned is None:
            return
        session_key, call = planned
        unindex = self._unindex_call(session_key, self._call(call))
        if unindex is not None:
            self._call(unindex)

    async def adelete(self, session_key: str | None = None) -> None:
        planned = self._delete_call(session_key)
        if planned is None:
            return
        session_key, call = planned
        unindex = self._unindex_call(session_key, await self._acall(call))
        if unindex is not None:
            await self._acall(unindex)

    # Cycle key -------------------------------------------------------------------------

    def _cycle_calls(self, old_key: str, new_key: str) -> tuple[Call, list[Call], list[Call]]:
        """Return the rename of the hash, and the index upkeep around it."""
        move = (scripts.CYCLE, [self.redis_key(old_key), self.redis_key(new_key)], [])
        if self._index is None:
            return move, [], []
        user_id, until = self._index
        ttl = _ms(until - now_timestamp())
        add = (scripts.INDEX_ADD, [self.user_index_key(user_id)], [ttl, new_key, ""])
        return move, [add], [self._index_remove(user_id, [old_key])]

    def cycle_key(self) -> None:
        """
        Move the session to a new key; the old key stops working at once.

        On one server the hash is renamed atomically (data written meanwhile by other
        requests moves with it). Redis Cluster cannot rename across slots: there the
        session is written under the new key, then the old key is deleted.
        """
        data = self._get_session()
        old_key = self.session_key
        if old_key is None or self._run(is_cluster):
            self.create()
            self._session_cache = data
            if old_key is not None:
                self.delete(old_key)
            return
        for _ in range(MAX_CREATE_ATTEMPTS):
            new_key = self._get_new_session_key()
            move, before, after = self._cycle_calls(old_key, new_key)
            for call in before:
                self._call(call)
            moved = self._call(move)
            if moved == 0:
                continue
            if moved < 0:  # deleted meanwhile: start afresh with what this request holds
                self._session_key = None
                self._index = None
                self.create()
                return
            for call in after:
                self._call(call)
            self._session_key = new_key
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key.")

    async def acycle_key(self) -> None:
        data = await self._aget_session()
        old_key = self.session_key
        if old_key is None or await self._arun(_ais_cluster):
            await self.acreate()
            self._session_cache = data
            if old_key is not None:
                await self.adelete(old_key)
            return
        for _ in range(MAX_CREATE_ATTEMPTS):
            new_key = await self._aget_new_session_key()
            move, before, after = self._cycle_calls(old_key, new_key)
            for call in before:
                await self._acall(call)
            moved = await self._acall(move)
            if moved == 0:
                continue
            if moved < 0:
                self._session_key = None
                self._index = None
                await self.acreate()
                return
            for call in after:
                await self._acall(call)
            self._session_key = new_key
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key.")

    # Per-user index --------------------------------------------------------------------

    @classmethod
    def _members(cls, raw: Iterable[bytes | str]) -> list[str]:
        return sorted(_text(member) for member in raw)

    @classmethod
    def _live(cls, client: Any, members: list[str]) -> list[bool]:
        pipe = client.pipeline(transaction=False)
        for member in members:
            pipe.exists(cls.redis_key(member))
        return [bool(found) for found in pipe.execute()] if members else []

    @classmethod
    async def _alive(cls, client: Any, members: list[str]) -> list[bool]:
        pipe = client.pipeline(transaction=False)
        for member in members:
            pipe.exists(cls.redis_key(member))
        return [bool(found) for found in await pipe.execute()] if members else []

    @classmethod
    def _prune(cls, client: Any, index_key: str) -> tuple[list[str], int]:
        """Drop an index's members whose session is gone; return the live ones and the count."""
        members = cls._members(client.smembers(index_key))
        live, dead = _split(members, cls._live(client, members))
        if dead:
            client.srem(index_key, *dead)
        return live, len(dead)

    @classmethod
    async def _aprune(cls, client: Any, index_key: str) -> tuple[list[str], int]:
        members = cls._members(await client.smembers(index_key))
        live, dead = _split(members, await cls._alive(client, members))
        if dead:
            await client.srem(index_key, *dead)
        return live, len(dead)

    @classmethod
    def sessions_for_user(cls, user_id: object) -> list[str]:
        """Return the keys of a user's live sessions, pruning expired ones from the index."""
        return cls._run(lambda client: cls._prune(client, cls.user_index_key(user_id))[0])

    @classmethod
    async def asessions_for_user(cls, user_id: object) -> list[str]:
        async def operation(client: Any) -> list[str]:
            return (await cls._aprune(client, cls.user_index_key(user_id)))[0]

        return await cls._arun(operation)

    @classmethod
    def _metadata_reads(cls, client: Any, members: list[str]) -> Any:
        pipe = client.pipeline(transaction=False)
        for member in members:
            pipe.hmget(cls.redis_key(member), [META + name for name in METADATA_FIELDS])
        return pipe

    @classmethod
    def _decode_metadata(
        cls, members: list[str], replies: list[list[Any]]
    ) -> dict[str, SessionMetadata]:
        store, found = cls(), {}
        signer = store._signer()
        for member, values in zip(members, replies, strict=True):
            if all(value is None for value in values):
                continue  # expired since the index was read (every session has created_at)
            try:
                stored = {
                    name: store._decode_field(signer, META + name, value)
                    for name, value in zip(METADATA_FIELDS, values, strict=True)
                    if value is not None
                }
            except Exception:  # not ours: load() reports such hashes when they are used
                continue
            found[member] = SessionMetadata.from_stored(stored)
        return found

    @classmethod
    def user_session_metadata(cls, user_id: object) -> dict[str, SessionMetadata]:
        """
        Return the metadata of a user's live sessions by key: two round trips.

        One reads the index, one pipeline reads every member's metadata fields. Members
        whose session expired are skipped here and pruned by ``clear_expired()``.
        """
        index_key = cls.user_index_key(user_id)

        def operation(client: Any) -> dict[str, SessionMetadata]:
            members = cls._members(client.smembers(index_key))
            replies = cls._metadata_reads(client, members).execute() if members else []
            return cls._decode_metadata(members, replies)

        return cls._run(operation)

    @classmethod
    async def auser_session_metadata(cls, user_id: object) -> dict[str, SessionMetadata]:
        index_key = cls.user_index_key(user_id)

        async def operation(client: Any) -> dict[str, SessionMetadata]:
            members = cls._members(await client.smembers(index_key))
            replies = await cls._metadata_reads(client, members).execute() if members else []
            return cls._decode_metadata(members, replies)

        return await cls._arun(operation)

    @classmethod
    def end_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        """End every session of a user except ``keep``; return how many were live."""
        index_key = cls.user_index_key(user_id)

        def operation(client: Any) -> int:
            members = [m for m in cls._members(client.smembers(index_key)) if m != keep]
            if not members:
                return 0
            pipe = client.pipeline(transaction=False)
            for member in members:
                pipe.delete(cls.redis_key(member))
            ended = sum(pipe.execute())
            client.srem(index_key, *members)
            return ended

        return cls._run(operation)

    @classmethod
    async def aend_sessions_for_user(cls, user_id: object, keep: str | None = None) -> int:
        index_key = cls.user_index_key(user_id)

        async def operation(client: Any) -> int:
            raw = await client.smembers(index_key)
            members = [m for m in cls._members(raw) if m != keep]
            if not members:
                return 0
            pipe = client.pipeline(transaction=False)
            for member in members:
                pipe.delete(cls.redis_key(member))
            ended = sum(await pipe.execute())
            await client.srem(index_key, *members)
            return ended

        return await cls._arun(operation)

    @classmethod
    def _index_pattern(cls) -> str:
        return _glob_escape(conf.SESSIONPLUS_REDIS_KEY_PREFIX) + USER_INDEX + "*"

    @classmethod
    def prune_user_indexes(cls) -> int:
        """Remove index members whose sessions have expired; return how many went."""

        def operation(client: Any) -> int:
            pruned = 0
            for index_key in client.scan_iter(match=cls._index_pattern(), count=PRUNE_BATCH):
                pruned += cls._prune(client, _text(index_key))[1]
            return pruned

        return cls._run(operation)

    @classmethod
    async def aprune_user_indexes(cls) -> int:
        async def operation(client: Any) -> int:
            pruned = 0
            async for index_key in client.scan_iter(match=cls._index_pattern(), count=PRUNE_BATCH):
                pruned += (await cls._aprune(client, _text(index_key)))[1]
            return pruned

        return await cls._arun(operation)

    @classmethod
    def clear_expired(cls) -> int:
        """Redis expires sessions itself; prune the user indexes of what it expired."""
        return cls.prune_user_indexes()

    @classmethod
    async def aclear_expired(cls) -> int:
        return await cls.aprune_user_indexes()


async def _ais_cluster(client: Any) -> bool:
    return is_cluster(client)


def _split(members: list[str], alive: list[bool]) -> tuple[list[str], list[str]]:
    live = [member for member, found in zip(members, alive, strict=True) if found]
    dead = [member for member, found in zip(members, alive, strict=True) if not found]
    return live, dead


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)
