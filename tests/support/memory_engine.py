"""
A sessionplus engine keeping sessions in a dict of this process, for middleware tests.

A real engine (``SessionPlusBase`` does the encoding, expiry and metadata; this module
stores the records) that also writes down each storage method it runs, so tests can
count touches and see which of the sync or async methods a code path used.
"""

from __future__ import annotations

from sessionplus.backends.base import CreateError, SessionPlusBase, UpdateError
from sessionplus.backends.record import StoredSession
from sessionplus.backends.timestamps import now_timestamp

RECORDS: dict[str, StoredSession] = {}
CALLS: list[str] = []


def reset() -> None:
    RECORDS.clear()
    CALLS.clear()


class SessionStore(SessionPlusBase):
    def _read(self, session_key: str) -> StoredSession | None:
        CALLS.append("read")
        return RECORDS.get(session_key)

    async def _aread(self, session_key: str) -> StoredSession | None:
        CALLS.append("aread")
        return RECORDS.get(session_key)

    def _store(self, record: StoredSession, must_create: bool) -> None:
        if must_create and self.session_key in RECORDS:
            raise CreateError
        if not must_create and self.session_key not in RECORDS:
            raise UpdateError
        RECORDS[self.session_key] = record

    def _write(self, record: StoredSession, must_create: bool) -> None:
        CALLS.append("create" if must_create else "write")
        self._store(record, must_create)

    async def _awrite(self, record: StoredSession, must_create: bool) -> None:
        CALLS.append("acreate" if must_create else "awrite")
        self._store(record, must_create)

    def touch(self) -> None:
        CALLS.append("touch")
        super().touch()

    async def atouch(self) -> None:
        CALLS.append("atouch")
        await super().atouch()

    def exists(self, session_key: str | None) -> bool:
        record = RECORDS.get(session_key or "")
        return record is not None and record.expires_at > now_timestamp()

    def delete(self, session_key: str | None = None) -> None:
        CALLS.append("delete")
        RECORDS.pop(session_key or self.session_key or "", None)

    async def adelete(self, session_key: str | None = None) -> None:
        CALLS.append("adelete")
        RECORDS.pop(session_key or self.session_key or "", None)
