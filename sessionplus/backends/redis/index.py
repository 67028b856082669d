"""
The redis engine's per-user index: a set of each logged-in user's session keys.

``<prefix>user:<user id>`` holds the keys of that user's sessions and lives at least as
long as its longest-lived member. It is kept up by its own commands at login, logout and
``cycle_key()`` (never inside a session's own write, so every per-request operation
touches one key and runs on Redis Cluster), and pruned of sessions Redis expired by
``clear_expired()``. Everything here is a plan for ``executor.run()`` / ``arun()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth import SESSION_KEY

from sessionplus.backends.metadata import METADATA_FIELDS, SessionMetadata
from sessionplus.backends.redis import layout, scripts
from sessionplus.backends.redis.codec import text
from sessionplus.backends.redis.executor import (
    Batch,
    Command,
    Plan,
    ScanKeys,
    ScriptCall,
)
from sessionplus.conf import conf

if TYPE_CHECKING:
    from sessionplus.backends.redis import SessionStore

USER_INDEX = "user:"
# The session's field naming the index that holds it: (user id, index kept until).
INDEX_FIELD = "x:index"
META = "m:"
# Members checked per round trip when pruning a user index.
PRUNE_BATCH = 500


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def index_key(user_id: object) -> str:
    """Return the Redis key of the set of a user's session keys."""
    return f"{conf.SESSIONPLUS_REDIS_KEY_PREFIX}{USER_INDEX}{user_id}"


def add(user_id: str, session_key: str, ttl_ms: int) -> ScriptCall:
    return scripts.INDEX_ADD([index_key(user_id)], [ttl_ms, session_key, ""])


def remove(user_id: str, session_keys: list[str]) -> ScriptCall:
    return scripts.INDEX_REMOVE([index_key(user_id)], session_keys)


def upkeep(
    store: SessionStore, must_create: bool, auth_written: bool, expires_at: float, now: float
) -> tuple[list[ScriptCall], list[ScriptCall], tuple[str, float] | None]:
    """Return the index calls before and after a session write, and the index after it."""
    current = store._known_index()
    if auth_written or current is None:  # (a damaged index field reads as None)
        user = store._get_session(no_load=True).get(SESSION_KEY)
        wanted = None if user is None else str(user)
    else:
        wanted = current[0] if current else None
    session_key = store._live_key()  # (reading the user's id above may have ended the session)
    before: list[ScriptCall] = []
    after: list[ScriptCall] = []
    index = current if current is not None and current[0] == wanted else None
    if wanted is not None and (must_create or index is None or index[1] < expires_at):
        # Index first: a failure after it leaves a member to prune, never a live
        # session that end_sessions_for_user() cannot find. The index outlives the
        # session by a cookie age, so touches rarely need to extend it again.
        until = expires_at + store.get_session_cookie_age()
        before.append(add(wanted, session_key, ms(until - now)))
        index = (wanted, until)
    if current is not None and current[0] != wanted:
        after.append(remove(current[0], [session_key]))
    return before, after, index


def _members(raw: Iterable[bytes | str]) -> list[str]:
    return sorted(text(member) for member in raw)


def _prune(store_class: type[SessionStore], key: str) -> Plan[tuple[list[str], int]]:
    """Drop an index's members whose session is gone; return the live ones and the count."""
    members = _members((yield Command("smembers", (key,))))
    if not members:
        return [], 0
    found = yield Batch([Command("exists", (store_class.redis_key(m),)) for m in members])
    live = [member for member, alive in zip(members, found, strict=True) if alive]
    dead = [member for member, alive in zip(members, found, strict=True) if not alive]
    if dead:
        yield Command("srem", (key, *dead))
    return live, len(dead)


def sessions_for_user(store_class: type[SessionStore], user_id: object) -> Plan[list[str]]:
    return (yield from _prune(store_class, index_key(user_id)))[0]


def end_sessions_for_user(
    store_class: type[SessionStore], user_id: object, keep: str | None
) -> Plan[int]:
    key = index_key(user_id)
    members = [m for m in _members((yield Command("smembers", (key,)))) if m != keep]
    if not members:
        return 0
    ended = yield Batch([Command("delete", (store_class.redis_key(m),)) for m in members])
    yield Command("srem", (key, *members))
    return sum(ended)


def user_session_metadata(
    store_class: type[SessionStore], user_id: object
) -> Plan[dict[str, SessionMetadata]]:
    members = _members((yield Command("smembers", (index_key(user_id),))))
    if not members:
        return {}
    # A member whose key holds something else is skipped (its error is its reply).
    reads = [Command("get", (store_class.redis_key(m).encode(),)) for m in members]
    replies = yield Batch(reads, raise_on_error=False)
    codec = store_class().codec()
    found = {}
    for member, value in zip(members, replies, strict=True):
        if value is None:
            continue  # expired since the index was read
        try:
            texts = layout.unpack(value)[1]
            stored = {
                name: codec.loads(META + name, texts[name])
                for name in METADATA_FIELDS
                if name in texts
            }
        except Exception:  # not ours: load() reports such values when they are used
            continue
        found[member] = SessionMetadata.from_stored(stored)
    return found


def glob_escape(pattern: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in pattern)


def scan(pattern: str) -> Plan[list[Any]]:
    """Return every key matching a glob pattern, on every node of a cluster."""
    return (yield ScanKeys(pattern, PRUNE_BATCH))  # type: ignore[no-any-return]


def prune_all(store_class: type[SessionStore]) -> Plan[int]:
    """Remove index members whose sessions have expired; return how many went."""
    pattern = glob_escape(conf.SESSIONPLUS_REDIS_KEY_PREFIX) + USER_INDEX + "*"
    pruned = 0
    for key in (yield from scan(pattern)):
        pruned += (yield from _prune(store_class, text(key)))[1]
    return pruned


def unindex(store: SessionStore, session_key: str, stored: Any) -> Plan[None]:
    """Remove a deleted session (its value as it was) from the index its ``x:index`` names."""
    if stored is None:
        return
    try:
        text = layout.unpack(stored)[2]
        if text is None:
            return
        user_id = str(store.codec().loads(INDEX_FIELD, text)[0])
    except Exception:  # not ours: nothing to unindex, load() reports such values
        return
    yield remove(user_id, [session_key])
