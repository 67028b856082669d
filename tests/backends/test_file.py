"""The file engine, on real directories (a read-only and a full tmpfs among them)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.contrib.sessions.backends.file import SessionStore as DjangoFileStore
from django.contrib.sessions.exceptions import InvalidSessionKey
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, override_settings

from sessionplus.backends.base import CreateError, UpdateError
from sessionplus.backends.django_signing import signer
from sessionplus.backends.file import SessionStore
from sessionplus.backends.timestamps import now_timestamp
from sessionplus.exceptions import SessionStoreUnavailable
from tests.backends.contract import MALFORMED_KEYS, SYNC, Calls, ServerSideStoreContract, with_twins
from tests.support.engines import ENGINES
from tests.support.services import remount_read_only, tmpfs

WATCHED_EVENTS = {"open", "os.listdir", "os.remove", "os.rename", "os.link"}
_recorders: list[list[tuple[str, tuple]]] = []


def _record(event: str, args: tuple) -> None:
    if _recorders and event in WATCHED_EVENTS:
        _recorders[-1].append((event, args))


# Audit hooks cannot be removed; this one records only inside file_events().
sys.addaudithook(_record)


@contextmanager
def file_events() -> Iterator[list[tuple[str, tuple]]]:
    """Record every file open, listing, removal, rename and link made inside the block."""
    events: list[tuple[str, tuple]] = []
    _recorders.append(events)
    try:
        yield events
    finally:
        _recorders.pop()


def fill_up(directory: str) -> None:
    """Write a file until the file system holding ``directory`` is full."""

    def write_forever(out) -> None:
        while True:
            out.write(b"\0" * 4096)

    filler_path = os.path.join(directory, "filler")
    with open(filler_path, "wb", buffering=0) as filler, pytest.raises(OSError, match="space"):
        write_forever(filler)


class FileEngineTestCase(SimpleTestCase):
    """Give each test its own SESSION_FILE_PATH."""

    def setUp(self) -> None:
        super().setUp()
        self.directory = tempfile.mkdtemp(prefix="sessionplus-file-tests-")
        self.addCleanup(shutil.rmtree, self.directory)
        self.use_directory(self.directory)

    def use_directory(self, directory: str) -> None:
        override = override_settings(SESSION_FILE_PATH=directory)
        override.enable()
        self.addCleanup(override.disable)

    def path(self, session_key: str) -> str:
        return os.path.join(self.directory, "sessionid" + session_key)

    def saved_in(self, call: Calls = SYNC, **data) -> SessionStore:
        session = SessionStore()
        call(session, "update", data)
        call(session, "save")
        return session


@with_twins
class FileSessionStoreTests(ServerSideStoreContract, FileEngineTestCase):
    engine = ENGINES["file"]

    def corrupt(self, session_key: str) -> None:
        with open(self.path(session_key), "r+b") as session_file:
            header = session_file.readline()
            session_file.seek(len(header) + 5)
            byte = session_file.read(1)
            session_file.seek(len(header) + 5)
            session_file.write(b"A" if byte != b"A" else b"B")

    # What is stored ------------------------------------------------------------------

    def test_file_is_named_like_djangos_and_holds_a_header_line_then_signed_data(self):
        session = self.saved(cat="lion")
        assert os.listdir(self.directory) == ["sessionid" + session.session_key]
        with open(self.path(session.session_key), "rb") as session_file:
            header, payload = session_file.read().split(b"\n")
        header = json.loads(header)
        assert abs(header["expires_at"] - (now_timestamp() + 1209600)) < 5
        assert abs(header["last_activity"] - now_timestamp()) < 5
        # The data's JSON signed as it is (tests/backends/test_base.py: StoredDataChecks).
        assert signer(session.key_salt).loads(payload.decode(), session.serializer) == {
            "cat": "lion"
        }

    @override_settings(SESSION_COOKIE_NAME="sid")
    def test_file_prefix_follows_session_cookie_name(self):
        session = self.saved(a=1)
        assert os.listdir(self.directory) == ["sid" + session.session_key]

    def test_files_are_readable_by_their_owner_only(self):
        old_umask = os.umask(0)
        try:
            session = self.saved(a=1)
            session["b"] = 2
            session.save()
        finally:
            os.umask(old_umask)
        mode = stat.S_IMODE(os.stat(self.path(session.session_key)).st_mode)
        assert mode == 0o600

    def test_touch_rewrites_the_expiry_in_the_header(self):
        with override_settings(SESSION_COOKIE_AGE=100):
            session = self.saved(a=1)
        with override_settings(SESSION_COOKIE_AGE=5000):
            session = self.reloaded(session)
            session["a"]
            session.touch()
        with open(self.path(session.session_key), "rb") as session_file:
            header = json.loads(session_file.readline())
        assert abs(header["expires_at"] - (now_timestamp() + 5000)) < 5

    def test_file_that_is_not_a_sessionplus_record_is_no_session_and_logged(self):
        key = "f" * 32
        for content in (b"", b"garbage", b"\xff\xfe\n", DjangoFileStore().encode({}).encode()):
            with open(self.path(key), "wb") as session_file:
                session_file.write(content)
            with self.assertLogs("django.security.SuspiciousSession", "WARNING"):
                session = self.store(key)
                assert list(session.keys()) == [], content
            assert session.session_key is None

    def test_file_with_a_damaged_header_does_not_exist(self):
        session = self.saved(a=1)
        with open(self.path(session.session_key), "r+b") as session_file:
            session_file.write(b"[")
        assert self.store().exists(session.session_key) is False

    # Atomic, complete writes -----------------------------------------------------------

    def test_session_files_are_never_opened_for_writing_and_appear_complete(self):
        with file_events() as events:
            session = self.saved(a=1)
            session["b"] = 2
            session.save()
        path = self.path(session.session_key)
        opened = [args[0] for event, args in events if event == "open"]
        assert path not in opened
        assert [event for event, args in events if path in args] == ["os.link", "os.rename"]
        assert os.listdir(self.directory) == [os.path.basename(path)]

    def both_cycle_key_renames_the_file_and_writes_no_data(self, call: Calls) -> None:
        session = self.store(self.saved(a=1).session_key)
        assert call(session, "get", "a") == 1
        old_key = session.session_key
        with file_events() as events:
            call(session, "cycle_key")
        new_key = session.session_key
        assert new_key != old_key
        # A link and a removal: no temporary file written and synced.
        assert [(event, args[:2]) for event, args in events] == [
            ("os.link", (self.path(old_key), self.path(new_key))),
            ("os.remove", (self.path(old_key), -1)),  # -1: no dir_fd
        ]
        assert session.modified is True  # the save after it (a login's) writes the data
        assert call(self.store(new_key), "get", "a") == 1
        assert call(self.store(), "exists", old_key) is False

    def both_cycle_key_writes_changes_not_yet_saved_under_the_new_key(self, call: Calls) -> None:
        session = self.store(self.saved(a=1).session_key)
        call(session, "set", "b", 2)
        old_key = session.session_key
        call(session, "cycle_key")
        assert dict(call(self.store(session.session_key), "items")) == {"a": 1, "b": 2}
        assert call(self.store(), "exists", old_key) is False

    def test_cycle_key_of_a_session_whose_file_is_gone_writes_a_new_one(self):
        session = self.store(self.saved(a=1).session_key)
        assert session["a"] == 1
        os.unlink(self.path(session.session_key))  # deleted meanwhile (a logout elsewhere)
        session.cycle_key()
        assert self.store(session.session_key)["a"] == 1

    def test_collision_update_error_and_delete_leave_no_temporary_file(self):
        session = self.saved(a=1)
        with pytest.raises(CreateError):
            session.save(must_create=True)
        gone = self.reloaded(session)
        gone["b"] = 2
        session.delete()
        with pytest.raises(UpdateError):
            gone.save()
        assert os.listdir(self.directory) == []

    # Strict keys -----------------------------------------------------------------------

    def test_key_to_file_refuses_keys_that_could_leave_the_directory(self):
        # Django's helper, with its exception: its own tests call it directly.
        store = SessionStore()
        for key in ["a/b/c", "a\\b\\c", "../../" + "a" * 26]:
            with pytest.raises(InvalidSessionKey):
                store._key_to_file(key)
        assert store._key_to_file("a" * 32) == self.path("a" * 32)
        # Without an argument, the store's own key (made now if it has none), as in Django.
        assert store._key_to_file() == self.path(store.session_key)

    def test_malformed_keys_open_no_file(self):
        with file_events() as events:
            for bad_key in MALFORMED_KEYS:
                session = self.store(bad_key)
                assert list(session.keys()) == []
                assert session.exists(bad_key) is False
                session.delete(bad_key)
        assert events == []

    def test_load_opens_one_file_once(self):
        session = self.saved(a=1)
        with file_events() as events:
            assert self.reloaded(session)["a"] == 1
        assert [(event, args[0]) for event, args in events] == [
            ("open", self.path(session.session_key))
        ]

    def test_unknown_key_opens_one_file_and_creates_none(self):
        with file_events() as events:
            assert list(self.store("a" * 32).keys()) == []
        assert [event for event, _ in events] == ["open"]
        assert os.listdir(self.directory) == []

    # clear_expired -----------------------------------------------------------------------

    def write_file(self, name: str, content: bytes) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as out:
            out.write(content)
        return path

    def both_clear_expired_reads_headers_only_and_never_decodes(self, call: Calls) -> None:
        past = json.dumps({"expires_at": now_timestamp() - 60}).encode()
        future = json.dumps({"expires_at": now_timestamp() + 60}).encode()
        expired = self.write_file("sessionid" + "g" * 32, past + b"\nnot-signed-data")
        live = self.write_file("sessionid" + "h" * 32, future + b"\nnot-signed-data")
        with self.assertNoLogs("django.security.SuspiciousSession"):
            call(SessionStore, "clear_expired")
        assert not os.path.exists(expired)
        assert os.path.exists(live)

    def both_clear_expired_removes_damaged_headers_and_keeps_what_it_does_not_own(
        self, call: Calls
    ) -> None:
        damaged = self.write_file("sessionid" + "i" * 32, b"{not json\npayload")
        unrelated = [
            self.write_file("notes.txt", b"keep me"),
            self.write_file("sessionid-backup", b"{}\n"),
            self.write_file("sessionid" + "j" * 31, b'{"expires_at": 0}\n'),
            self.write_file("other" + "k" * 32, b'{"expires_at": 0}\n'),
            # Not a header sessionplus wrote (no line end within the limit).
            self.write_file("sessionid" + "l" * 32, b"x" * 20_000),
        ]
        os.mkdir(os.path.join(self.directory, "sessionid" + "m" * 32 + "dir"))
        call(SessionStore, "clear_expired")
        assert not os.path.exists(damaged)
        assert all(os.path.exists(path) for path in unrelated)

    def both_clear_expired_removes_abandoned_temporary_files_only(self, call: Calls) -> None:
        abandoned = self.write_file("sessionidab12cd34.tmp", b"partial")
        two_hours_ago = time.time() - 7200
        os.utime(abandoned, (two_hours_ago, two_hours_ago))
        in_progress = self.write_file("sessionidef56gh78.tmp", b"partial")
        call(SessionStore, "clear_expired")
        assert not os.path.exists(abandoned)
        assert os.path.exists(in_progress)


@with_twins
class FileStoreFailureTests(FileEngineTestCase):
    """Directories that cannot take a write, for real: read-only and full file systems."""

    def both_read_only_directory_raises_unavailable_and_keeps_the_session_readable(
        self, call: Calls
    ) -> None:
        with tmpfs("1m") as directory:
            self.use_directory(directory)
            session = self.saved_in(call, a=1)
            remount_read_only(directory)
            loaded = SessionStore(session.session_key)
            assert call(loaded, "get", "a") == 1
            call(loaded, "set", "b", 2)
            with pytest.raises(SessionStoreUnavailable) as raised:
                call(loaded, "save")
            assert raised.value.__cause__.errno == errno.EROFS
            with pytest.raises(SessionStoreUnavailable):
                self.saved_in(call, c=3)
            assert os.listdir(directory) == ["sessionid" + session.session_key]

    def both_full_disk_raises_unavailable_leaving_the_old_file_and_no_temporary_file(
        self, call: Calls
    ) -> None:
        with tmpfs("64k") as directory:
            self.use_directory(directory)
            session = self.saved_in(call, a=1)
            fill_up(directory)
            loaded = SessionStore(session.session_key)
            call(loaded, "set", "big", "x" * 10_000)
            with pytest.raises(SessionStoreUnavailable) as raised:
                call(loaded, "save")
            assert raised.value.__cause__.errno == errno.ENOSPC
            with pytest.raises(SessionStoreUnavailable):
                self.saved_in(call, big="y" * 10_000)
            assert sorted(os.listdir(directory)) == ["filler", "sessionid" + session.session_key]
            assert dict(call(SessionStore(session.session_key), "items")) == {"a": 1}

    def test_a_missing_directory_is_improperly_configured_when_a_store_is_built(self):
        # Django's engine checks the same, with the same message.
        self.use_directory(os.path.join(self.directory, "missing"))
        with pytest.raises(ImproperlyConfigured, match=r"missing' doesn't exist\. Please set"):
            SessionStore()
        with pytest.raises(ImproperlyConfigured):
            SessionStore.clear_expired()

    def test_the_directory_is_checked_again_when_session_file_path_changes(self):
        assert SessionStore._get_storage_path() == self.directory
        other = os.path.join(self.directory, "other")
        os.mkdir(other)
        self.use_directory(other)
        assert SessionStore().storage_path == other

    def test_a_directory_replaced_after_its_check_raises_unavailable_for_reads_and_writes(self):
        # Root ignores permission bits, so "unwritable" is made with a file as the parent.
        replaced = os.path.join(self.directory, "replaced")
        os.mkdir(replaced)
        self.use_directory(replaced)
        SessionStore()  # the directory is checked (and found) here
        os.rmdir(replaced)
        open(replaced, "wb").close()
        with pytest.raises(SessionStoreUnavailable):
            SessionStore("o" * 32).load()
        with pytest.raises(SessionStoreUnavailable):
            self.saved_in(a=1)
        with pytest.raises(SessionStoreUnavailable):
            SessionStore.clear_expired()
