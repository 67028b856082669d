"""
The text record of one session, as engines that store a string keep it (cache, file, and
cached_db's cache): a JSON header line with the expiry and metadata, then the signed data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sessionplus.backends.django_signing import json_dumps, json_loads
from sessionplus.backends.memo import TextMemo
from sessionplus.backends.metadata import METADATA_FIELDS, is_metadata_value, is_timestamp

# Record texts parsed in this process, with the record each one is.
_parsed = TextMemo()


@dataclass(frozen=True)
class StoredSession:
    """One session as an engine reads it back: encoded data, expiry and metadata."""

    data: str
    expires_at: float
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_text(self) -> str:
        """
        Return the record as text: a JSON header line (expiry, metadata), then the data.

        The header comes first so that expiry and metadata can be read without decoding
        the signed data.
        """
        header = {"expires_at": self.expires_at, **self.metadata}
        return json_dumps(header) + "\n" + self.data

    @classmethod
    def from_text(cls, text: str) -> StoredSession:
        """
        Parse what ``to_text()`` returned; raise ValueError when the text is not that.

        A text parsed before is not parsed again: the record is frozen and its metadata
        read-only, so every reader may share it.
        """
        known: StoredSession | None = _parsed.get(text)
        if known is not None:
            return known
        header, newline, data = text.partition("\n")
        if not newline:
            raise ValueError("A stored session record has no header line.")
        expires_at, metadata = parse_record_header(header)
        record = cls(data, expires_at, MappingProxyType(metadata))
        _parsed.remember(text, len(text), record)
        return record


def parse_record_header(line: str | bytes) -> tuple[float, dict[str, Any]]:
    """Return expiry and metadata from a record's header line; raise ValueError if damaged."""
    try:
        header = json_loads(line) if isinstance(line, str) else json.loads(line)
    except RecursionError as exc:
        raise ValueError("A stored session header nests too deeply.") from exc
    if not isinstance(header, dict):
        raise ValueError("A stored session header is not a JSON object.")
    expires_at = header.get("expires_at")
    if not is_timestamp(expires_at):
        raise ValueError("A stored session header has no valid expiry.")
    metadata: dict[str, Any] = {name: header.get(name) for name in METADATA_FIELDS}
    for name, value in metadata.items():
        if value is not None and not is_metadata_value(name, value):
            raise ValueError(f"A stored session header has an invalid {name}.")
    return expires_at, metadata
