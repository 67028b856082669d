"""
The data rule: which session data sessionplus agrees to store.

Per assignment only the key's type is checked (Django's ``__setitem__`` is two lines; so is
sessionplus's); everything else once, at save, on the one serialization the save makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from sessionplus.backends.django_signing import dumps_of
from sessionplus.backends.expiry import EXPIRY_KEY, stored_expiry_is_valid
from sessionplus.conf import conf
from sessionplus.exceptions import SessionTooLarge

# Session keys sessionplus keeps for its own fields (signed cookies store metadata there).
RESERVED_KEY_PREFIX = "_sessionplus"


def require_str_key(key: object) -> None:
    """Raise TypeError unless ``key`` may name a session value."""
    if not isinstance(key, str):
        raise TypeError(f"Session keys must be str, not {type(key).__name__}: {key!r}.")


def check_assignment(key: object, value: Any) -> None:
    """
    Raise unless ``session[key] = value`` may be done now: the per-assignment part of the
    data rule, which ``check_keys()`` and ``CheckingSerializer`` complete at save.

    A directly assigned expiry is checked here rather than at save because the middleware
    reads it (for the cookie's max-age) before saving.
    """
    require_str_key(key)
    if key == EXPIRY_KEY and not stored_expiry_is_valid(value):
        raise ValueError(f"{value!r} is not a session expiry; use set_expiry().")


def check_assignments(data: Mapping[Any, Any]) -> None:
    """Raise unless every item of ``data`` may be assigned, before any of them is."""
    for key in data:
        if type(key) is not str or key == EXPIRY_KEY:
            check_assignment(key, data[key])


def check_keys(data: Mapping[Any, Any]) -> None:
    """Raise TypeError / ValueError unless every key of ``data`` may be stored."""
    try:
        joined = "".join(data)
    except TypeError:  # a key that is not text: found and named below
        joined = None
    # The common case in three C calls, whatever the number of keys: text keys, all
    # ASCII, none of them the reserved prefix (which then appears nowhere in the keys).
    if joined is not None and joined.isascii() and RESERVED_KEY_PREFIX not in joined:
        return
    for key in data:
        if type(key) is str and key.isascii() and not key.startswith(RESERVED_KEY_PREFIX):
            continue
        require_str_key(key)
        if key.startswith(RESERVED_KEY_PREFIX):
            raise ValueError(f"Session keys starting with {RESERVED_KEY_PREFIX!r} are reserved.")
        try:
            key.encode()
        except UnicodeEncodeError as exc:
            # Engines that store keys as names (the redis engine's fields) need real text.
            raise ValueError(f"Session key {key!r} is not valid Unicode text: {exc}") from None


class CheckingSerializer:
    """
    SESSION_SERIALIZER with the data rule's values part: what the serializer refuses is
    refused naming the key, and so is a result larger than SESSIONPLUS_MAX_SIZE.

    ``encode()`` hands it to ``signing`` so that the rule costs no serialization of its own.
    """

    def __init__(self, serializer: type, max_size: float | None = None) -> None:
        self.serializer = serializer
        # None: SESSIONPLUS_MAX_SIZE.
        self.max_size = max_size

    def dumps(self, obj: dict[str, Any]) -> bytes:
        try:
            serialized = dumps_of(self.serializer)(obj)
        except Exception as exc:  # a serializer may raise anything on a value it refuses
            raise self._error(obj, exc) from exc
        limit = conf.SESSIONPLUS_MAX_SIZE if self.max_size is None else self.max_size
        if len(serialized) > limit:
            raise SessionTooLarge(
                f"The session data serializes to {len(serialized)} bytes, more than "
                f"SESSIONPLUS_MAX_SIZE ({limit})."
            )
        return serialized

    def _error(self, data: dict[str, Any], exc: Exception) -> Exception:
        # Only once the whole failed: find the key to name, one value at a time.
        for key, value in data.items():
            try:
                self.serializer().dumps({key: value})
            except RecursionError:
                return SessionTooLarge(
                    f"The session value for key {key!r} nests too deeply for "
                    f"{settings.SESSION_SERIALIZER}."
                )
            except Exception as value_exc:  # as above
                return TypeError(
                    f"The session value for key {key!r} cannot be serialized by "
                    f"{settings.SESSION_SERIALIZER}: {value_exc}"
                )
        return TypeError(f"The session data cannot be serialized: {exc}")
