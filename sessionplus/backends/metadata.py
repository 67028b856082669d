"""What sessionplus records about a session besides its data, and how engines keep it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeGuard

from django.contrib.sessions.backends.base import SessionBase

from sessionplus.backends.timestamps import as_utc_datetime, now_timestamp

METADATA_FIELDS = ("created_at", "last_activity", "user_id", "ip", "user_agent")
_TIMESTAMP_FIELDS = ("created_at", "last_activity")
USER_AGENT_MAX_LENGTH = 512
# C0 controls, DEL and C1 controls: what a header may carry but no metadata should.
_CONTROL_CHARACTERS_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


def clean_user_agent(value: str) -> str:
    """
    Return a ``User-Agent`` as sessionplus stores and compares it.

    Control characters go (a NUL is text PostgreSQL refuses to store) and the rest is cut
    to the length the metadata column holds.
    """
    if value.isascii() and value.isprintable():  # the usual header: nothing to remove
        return value[:USER_AGENT_MAX_LENGTH]
    return _CONTROL_CHARACTERS_RE.sub("", value)[:USER_AGENT_MAX_LENGTH]


def is_timestamp(value: object) -> TypeGuard[float]:
    """Return whether ``value`` may be a stored timestamp: a finite number of seconds."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_metadata_value(name: str, value: object) -> bool:
    """Return whether ``value`` may be the stored value of metadata field ``name``."""
    return is_timestamp(value) if name in _TIMESTAMP_FIELDS else isinstance(value, str)


@dataclass(frozen=True)
class SessionMetadata:
    """A read-only view of what sessionplus records about a session besides its data."""

    created_at: datetime | None = None
    last_activity: datetime | None = None
    user_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> SessionMetadata:
        """Return the view of metadata as engines store it (timestamps as UNIX seconds)."""
        values: dict[str, Any] = {name: stored.get(name) for name in METADATA_FIELDS}
        for name in _TIMESTAMP_FIELDS:
            if values[name] is not None:
                values[name] = as_utc_datetime(values[name])
        return cls(**values)


class MetadataMixin(SessionBase):
    """
    A store's metadata: as loaded (``_metadata``, timestamps as UNIX seconds) and as staged
    here for the next write (``_metadata_changes``).
    """

    # Set by the store's __init__ (SessionPlusBase's).
    _metadata: dict[str, Any]
    _metadata_changes: dict[str, Any]

    if TYPE_CHECKING:  # SessionBase's, which django-stubs leaves out

        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...

    @property
    def metadata(self) -> SessionMetadata:
        """Return what is recorded about this session besides its data."""
        self._get_session()
        return SessionMetadata.from_stored(self._metadata)

    def seconds_since(self, name: str, now: float | None = None) -> float | None:
        """
        Return the seconds from metadata timestamp ``name`` (``created_at`` or
        ``last_activity``) to now, or None when it is not recorded.

        The timeout and touch decisions compare two numbers per request: this spares them
        building ``metadata`` and its datetimes.
        """
        self._get_session()
        moment: float | None = self._metadata.get(name)
        if moment is None:
            return None
        return (now_timestamp() if now is None else now) - moment

    def update_metadata(
        self,
        *,
        user_id: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """
        Stage metadata to write with the next save or touch.

        Staging alone writes nothing and does not mark the session modified.
        """
        staged = {"user_id": user_id, "ip": ip, "user_agent": user_agent}
        for name, value in staged.items():
            if value is None:
                continue
            value = str(value)
            if name == "user_agent":
                value = clean_user_agent(value)
            if self._metadata_differs(name, value):
                self._metadata_changes[name] = value
            self._metadata[name] = value

    def _metadata_differs(self, name: str, value: str) -> bool:
        """Return whether staging ``value`` as metadata ``name`` changes what is stored."""
        return bool(self._metadata.get(name) != value)

    def metadata_for_write(self, now: float | None = None) -> dict[str, Any]:
        """Return the full metadata to store with a write made now."""
        now = now_timestamp() if now is None else now
        self.stamp_write(now)
        return {name: self._metadata.get(name) for name in METADATA_FIELDS}

    def stamp_write(self, now: float) -> None:
        """Record a write made now: created now unless it was before, and active now."""
        # Membership, not setdefault(): a lazily verified mapping decodes nothing for it.
        if "created_at" not in self._metadata:
            self._metadata["created_at"] = now
        self._metadata["last_activity"] = now

    def metadata_for_touch(self, now: float | None = None) -> dict[str, Any]:
        """
        Return the metadata a touch made now writes: last activity and staged changes.

        Unlike ``metadata_for_write()`` it leaves out what did not change here, so a
        touch never writes back a value another request changed meanwhile.
        """
        now = now_timestamp() if now is None else now
        self._metadata["last_activity"] = now
        return {**self._metadata_changes, "last_activity": now}

    def _accept_metadata(self, stored: Mapping[str, Any]) -> None:
        # Metadata staged before the session was loaded wins over what was stored.
        self._metadata = {
            name: stored[name] for name in METADATA_FIELDS if stored.get(name) is not None
        }
        self._metadata.update(self._metadata_changes)

    def _mark_saved(self) -> None:
        """Forget staged metadata once it reached storage."""
        self._metadata_changes = {}
