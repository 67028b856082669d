"""A redis engine session's value seen as the fields it holds: for tests that go behind its back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessionplus.backends.redis import layout


def stored_fields(client: Any, key: str | bytes) -> dict[str, bytes]:
    """Return the fields of the session value at ``key`` by name: ``d:a``, ``m:ip``, ``x:index``."""
    value = client.get(key)
    if value is None:
        return {}
    data, metadata, index = layout.unpack(value)
    fields = {f"d:{name}": text for name, text in data.items()}
    fields.update({f"m:{name}": text for name, text in metadata.items()})
    if index is not None:
        fields["x:index"] = index
    return fields


def write_fields(client: Any, key: str | bytes, fields: Mapping[str, bytes | str]) -> None:
    """Store exactly ``fields`` (named as ``stored_fields()`` does) at ``key``, keeping its TTL."""
    texts = {
        name: text.encode() if isinstance(text, str) else text for name, text in fields.items()
    }
    value = layout.pack(
        {name[2:]: text for name, text in texts.items() if name.startswith("d:")},
        {name[2:]: text for name, text in texts.items() if name.startswith("m:")},
        texts.get("x:index"),
    )
    client.set(key, value, keepttl=True)


def set_field(client: Any, key: str | bytes, name: str, text: bytes | str) -> None:
    """Set one field of the session value at ``key``, behind the engine's back."""
    write_fields(client, key, {**stored_fields(client, key), name: text})
