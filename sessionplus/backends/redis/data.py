"""
A session's data (and metadata) as read from its value: each verified and decoded when
first read.

A request reads a few keys of a session (the auth middleware three); verifying and
decoding every field at load cost far more than Django's single ``signing.loads()``. Here a
value is checked when it is read, and anything that walks the whole session (``items()``,
``keys()``, ``==``, ``dict(session)``) checks every value first, metadata included. A value
that fails its signature or cannot be decoded is never returned: the store is told, and
ends the session as it would have at load.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

K = TypeVar("K")
V = TypeVar("V")

# An absent key, where None could be a stored value.
_MISSING = object()


# Stands, in the data, for a value not yet verified or decoded: its stored text is in
# ``StoredFields.encoded``.
ENCODED: Any = object()


@dataclass
class StoredFields:
    """
    What the stored value holds of the data, as far as this store knows.

    ``encoded``: keys never decoded, with their stored text (unchanged unless replaced);
    ``values`` and ``forms``: the keys decoded or written, with the object handed out and
    its serialized form, which a save compares to find values changed in place.
    """

    encoded: dict[str, bytes] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    forms: dict[str, bytes] = field(default_factory=dict)

    def stored_keys(self) -> list[str]:
        return [*self.forms, *self.encoded]


class DataOwner(Protocol):
    """What a LazyData tells the store it was loaded for."""

    def _value_failed(self, exc: Exception) -> None:
        """A value failed its check or its decoding: end the session as a load would."""

    def _before_walk(self) -> None:
        """Verify what else a walk of the whole data must see verified (the metadata)."""


class LazyData(dict[str, Any]):
    """
    The data (or metadata) of a loaded session; values decoded on first read (see the
    module).

    ``owner`` is the store, held weakly: it holds this, and a strong reference back would
    leave both, every load, to the garbage collector instead of reference counting. The
    data is built without ``data``, and a walk of it calls ``owner._before_walk()`` first;
    the metadata is built with the ``data`` loaded with it, which goes when a metadata value
    fails.
    """

    # Slots: one is made per load, and a dict's own __dict__ would double what that costs.
    __slots__ = ("_data", "_decode", "_owner", "_stored")

    def __init__(
        self,
        stored: StoredFields,
        decode: Callable[[str, bytes], tuple[Any, bytes]],
        owner: weakref.ref[DataOwner],
        data: LazyData | None = None,
    ) -> None:
        dict.__init__(self, dict.fromkeys(stored.encoded, ENCODED))
        if stored.values:
            dict.update(self, stored.values)
        self._stored = stored
        self._decode = decode
        self._owner = owner
        self._data = data

    def _value(self, key: str, value: Any) -> Any:
        if value is not ENCODED:
            return value
        try:
            decoded, form = self._decode(key, self._stored.encoded[key])
        except Exception as exc:  # a bad signature, or anything a serializer raises
            dict.clear(self)
            if self._data is not None:
                dict.clear(self._data)  # the data loaded with this metadata goes too
            owner = self._owner()
            if owner is not None:  # else nothing reads the session through a store any more
                owner._value_failed(exc)
            raise KeyError(key) from None
        del self._stored.encoded[key]
        self._stored.values[key] = decoded
        self._stored.forms[key] = form
        dict.__setitem__(self, key, decoded)
        return decoded

    def decode_all(self) -> None:
        """Verify and decode every value still encoded; on a failure the data is gone."""
        owner = self._owner() if self._data is None else None
        if owner is not None:
            owner._before_walk()  # a failure there empties this too
        for key, value in list(dict.items(self)):
            if value is ENCODED:
                try:
                    self._value(key, value)
                except KeyError:
                    return

    def unread_text(self, key: str) -> bytes | None:
        """Return the stored text of ``key`` if it is in the data and was never read."""
        if dict.get(self, key) is not ENCODED:
            return None
        return self._stored.encoded[key]

    def unread(self) -> dict[str, bytes]:
        """Return the stored text of each value still in the data and never read."""
        is_encoded = dict.get
        return {
            key: text
            for key, text in self._stored.encoded.items()
            if is_encoded(self, key) is ENCODED
        }

    def saved_as(self, stored: StoredFields) -> None:
        """Record what a save stored: later decodes update that."""
        self._stored = stored

    # Reading one value decodes that value only.

    def __getitem__(self, key: str) -> Any:
        return self._value(key, dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        value = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return default
        try:
            return self._value(key, value)
        except KeyError:
            return default

    def setdefault(self, key: str, default: Any = None) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            dict.__setitem__(self, key, default)
            return default
        return value

    def pop(self, key: str, *default: Any) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            if default:
                return default[0]
            raise KeyError(key)
        dict.__delitem__(self, key)
        return value

    # Walking the session decodes all of it first.

    def __iter__(self) -> Iterator[str]:
        # Also what makes dict(data) and {**data} read values through __getitem__.
        self.decode_all()
        return dict.__iter__(self)

    def keys(self) -> Any:
        self.decode_all()
        return dict.keys(self)

    def values(self) -> Any:
        self.decode_all()
        return dict.values(self)

    def items(self) -> Any:
        self.decode_all()
        return dict.items(self)

    def popitem(self) -> tuple[str, Any]:
        self.decode_all()
        return dict.popitem(self)

    def copy(self) -> dict[str, Any]:
        self.decode_all()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self.decode_all()
        if isinstance(other, LazyData):
            other.decode_all()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def __repr__(self) -> str:
        self.decode_all()
        return dict.__repr__(self)

    def __reversed__(self) -> Iterator[str]:
        self.decode_all()
        return dict.__reversed__(self)

    def __or__(self, other: Mapping[K, V]) -> dict[str | K, Any | V]:
        if not isinstance(other, Mapping):
            return NotImplemented  # so `data | 1` is a TypeError, as with a dict
        # Merged item by item: a Mapping's key type is invariant, its items' are not.
        merged: dict[str | K, Any | V] = dict(self.items())
        merged.update(other.items())
        return merged

    def __ror__(self, other: Mapping[K, V]) -> dict[str | K, Any | V]:
        if not isinstance(other, Mapping):
            return NotImplemented
        merged: dict[str | K, Any | V] = dict(other.items())
        merged.update(self.items())
        return merged

    def __reduce__(self) -> Any:
        return dict, (self.copy(),)
