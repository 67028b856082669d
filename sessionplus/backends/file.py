"""
Sessions as files in ``SESSION_FILE_PATH``, one per session, named as Django names them.

A file holds the text of a ``StoredSession``: a JSON header line with the expiry and
metadata, then the signed data, so ``clear_expired`` reads one line per file and never
decodes one. Every write goes to a temporary file in the same directory, is flushed and
fsynced, and then appears under the session's name in one step (``os.link`` for a create,
``os.replace`` for a save): a reader sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import suppress

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.exceptions import InvalidSessionKey
from django.core.exceptions import ImproperlyConfigured

from sessionplus.backends.base import (
    CreateError,
    SessionPlusBase,
    UpdateError,
    is_valid_session_key,
)
from sessionplus.backends.record import StoredSession, parse_record_header
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.cleanup import CleanupBatch
from sessionplus.conf import conf
from sessionplus.outage import UNREACHABLE_FILES
from sessionplus.plans import Plan, Step, drive

TEMP_SUFFIX = ".tmp"
# A temporary file this old belongs to a process that died mid-write.
ABANDONED_AFTER_SECONDS = 3600
# Far longer than any header sessionplus writes (the user agent is capped at 512 chars).
HEADER_LIMIT = 16 * 1024
# Files examined per batch when clear_expired() runs outside clearsessions_plus.
CLEAR_BATCH_SIZE = 1000


def storage_path() -> str:
    """Return the directory session files live in: ``SESSION_FILE_PATH`` or the temp dir."""
    return settings.SESSION_FILE_PATH or tempfile.gettempdir()


class SessionStore(SessionPlusBase):
    """A file-based session store, a drop-in for Django's ``backends.file``."""

    _storage_path: str

    def __init__(self, session_key: str | None = None) -> None:
        self.storage_path = self._get_storage_path()
        self.file_prefix = conf.SESSION_COOKIE_NAME
        super().__init__(session_key)

    @classmethod
    def _get_storage_path(cls) -> str:
        """
        Return the session directory, checked to exist when it differs from the last one.

        Django's engine has the same helper, check and message (its ``clearsessions`` and
        tests call them); comparing with the last path checked keeps
        ``override_settings(SESSION_FILE_PATH=...)`` working without a stat per store.
        """
        path = os.fspath(storage_path())
        if getattr(cls, "_storage_path", None) != path:
            if not os.path.isdir(path):
                raise ImproperlyConfigured(
                    f"The session storage path {path!r} doesn't exist. Please set your "
                    "SESSION_FILE_PATH setting to an existing directory in which Django "
                    "can store session data."
                )
            cls._storage_path = path
        return path

    def _key_to_file(self, session_key: str | None = None) -> str:
        """Return the path of a session's file; raise InvalidSessionKey for a malformed key."""
        if session_key is None:
            session_key = self._get_or_create_session_key()
        # Never a path outside the directory: no separators, no "..", no NUL.
        if not is_valid_session_key(session_key):
            raise InvalidSessionKey("Invalid characters in session key")
        return os.path.join(self.storage_path, self.file_prefix + session_key)

    # Reads -------------------------------------------------------------------------

    def _read(self, session_key: str) -> StoredSession | None:
        with UNREACHABLE_FILES:
            try:
                with open(self._key_to_file(session_key), "rb") as session_file:
                    content = session_file.read()
            except FileNotFoundError:
                return None
        try:
            text = content.decode("ascii")
        except UnicodeDecodeError:
            text = None  # not something sessionplus wrote: logged as such below
        return self.record_from_text(text)

    def exists(self, session_key: str | None) -> bool:
        if not is_valid_session_key(session_key):
            return False
        with UNREACHABLE_FILES:
            try:
                with open(self._key_to_file(session_key), "rb") as session_file:
                    header = session_file.readline(HEADER_LIMIT)
            except FileNotFoundError:
                return False
        try:
            expires_at, _ = parse_record_header(header)
        except ValueError:
            return False
        return expires_at > now_timestamp()

    # Writes ------------------------------------------------------------------------

    def _write(self, record: StoredSession, must_create: bool) -> None:
        path = self._key_to_file(self.session_key)
        with UNREACHABLE_FILES:
            temp_path = self._complete_temp_file(record.to_text().encode("ascii"))
            try:
                if must_create:
                    # link() fails when the name exists: an atomic "create, complete".
                    try:
                        os.link(temp_path, path)
                    except FileExistsError:
                        raise CreateError from None
                else:
                    # A delete landing between this check and the replace is undone, as
                    # with Django's engine; the window is two system calls wide.
                    if not os.path.exists(path):
                        raise UpdateError
                    os.replace(temp_path, path)
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(temp_path)

    def _complete_temp_file(self, content: bytes) -> str:
        """Write ``content`` to a new 0600 file beside the session files; return its path."""
        fd, temp_path = tempfile.mkstemp(
            dir=self.storage_path, prefix=self.file_prefix, suffix=TEMP_SUFFIX
        )
        try:
            try:
                view = memoryview(content)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp_path)
            raise
        return temp_path

    # A new key ------------------------------------------------------------------------

    def cycle_key(self) -> None:
        """
        Give the session's file a new name (a hard link, then the old name removed): the
        old key stops working at once, and no data is written, so no fsync. A login's save
        follows and writes the data once. Django's engine writes a file under the new key
        and then deletes the old one; so does this one when the session holds changes not
        yet saved (they must be in the new file) or has no file to rename.
        """
        self._get_session()
        old_key = self.session_key
        if old_key is None or self.modified:
            return super().cycle_key()
        old_path = self._key_to_file(old_key)
        drive(self._creating(lambda: self._linking(old_path)))
        with UNREACHABLE_FILES, suppress(FileNotFoundError):
            os.unlink(old_path)

    def _linking(self, old_path: str) -> Plan[None]:
        # cycle_key()'s create: the old file under the new key or, gone meanwhile (or
        # never written here), the session written afresh.
        if not (yield Step(self, "_link", old_path)):
            yield from self._save_new()

    def _link(self, old_path: str) -> bool:
        """Link ``old_path`` under this session's key; False if it is gone, CreateError if taken."""
        with UNREACHABLE_FILES:
            try:
                os.link(old_path, self._key_to_file(self.session_key))
            except FileExistsError:
                raise CreateError from None
            except FileNotFoundError:
                return False
        return True

    async def acycle_key(self) -> None:
        await sync_to_async(self.cycle_key)()

    def delete(self, session_key: str | None = None) -> None:
        session_key = self.session_key if session_key is None else session_key
        if not is_valid_session_key(session_key):
            return
        with UNREACHABLE_FILES, suppress(FileNotFoundError):
            os.unlink(self._key_to_file(session_key))

    # Cleanup -----------------------------------------------------------------------

    @classmethod
    def clear_expired(cls) -> None:
        """Remove expired session files and abandoned temporary files."""
        for _ in cls.clear_expired_in_batches(CLEAR_BATCH_SIZE):
            pass

    @classmethod
    def clear_expired_in_batches(
        cls, batch_size: int, dry_run: bool = False
    ) -> Iterator[CleanupBatch]:
        """
        Remove expired session files and abandoned temporary files, one batch at a time.

        A batch is ``batch_size`` files examined. Reads one header line per session file and
        never decodes session data. Files whose names are not a prefix plus a session key (or
        a temporary file) are left alone. A dry run counts and removes nothing.
        """
        store = cls()
        now = now_timestamp()
        sessions = temp_files = examined = 0
        with UNREACHABLE_FILES, os.scandir(store.storage_path) as entries:
            for entry in entries:
                if not entry.name.startswith(store.file_prefix) or not entry.is_file():
                    continue
                rest = entry.name[len(store.file_prefix) :]
                with suppress(FileNotFoundError):  # removed meanwhile
                    if is_valid_session_key(rest):
                        sessions += cls._remove_if_expired(entry.path, now, dry_run)
                    elif rest.endswith(TEMP_SUFFIX):
                        temp_files += cls._remove_if_abandoned(entry.path, now, dry_run)
                examined += 1
                if examined == batch_size:
                    yield CleanupBatch(sessions, {"abandoned temporary file": temp_files})
                    sessions = temp_files = examined = 0
        yield CleanupBatch(sessions, {"abandoned temporary file": temp_files})

    @staticmethod
    def _remove_if_expired(path: str, now: float, dry_run: bool) -> bool:
        with open(path, "rb") as session_file:
            header = session_file.readline(HEADER_LIMIT)
            if not header.endswith(b"\n"):
                return False  # not a header sessionplus wrote; leave it to a person
            try:
                expires_at, _ = parse_record_header(header)
            except ValueError:
                expires_at = now  # damaged beyond loading: nothing is lost by removing it
            if expires_at > now:
                return False
            # A request may have replaced the file since its header was read: remove it
            # only if it is still the file that was judged expired.
            if os.stat(path).st_ino != os.fstat(session_file.fileno()).st_ino:
                return False
            if not dry_run:
                os.unlink(path)
            return True

    @staticmethod
    def _remove_if_abandoned(path: str, now: float, dry_run: bool) -> bool:
        if os.stat(path).st_mtime >= now - ABANDONED_AFTER_SECONDS:
            return False
        if not dry_run:
            os.unlink(path)
        return True
