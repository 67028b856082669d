"""The signed-cookies engine: Django's cookie format, with expiry, size and inflation bounds."""

from __future__ import annotations

import re
import time
import tracemalloc
from datetime import datetime, timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.signed_cookies import SessionStore as DjangoCookieStore
from django.core import signing
from django.test import AsyncClient, Client, SimpleTestCase, TestCase, override_settings
from django.utils import timezone
from django.utils.crypto import get_random_string
from freezegun import freeze_time

from sessionplus.backends.django_signing import signer
from sessionplus.backends.signed_cookies import MAX_COOKIE_BYTES, SALT, SessionStore
from sessionplus.exceptions import SessionTooLarge
from tests.backends.contract import Calls, SessionStoreContract, with_twins
from tests.support.engines import ENGINES

SUSPICIOUS = "django.security.SuspiciousSession"


def signed(data: dict) -> str:
    """Return a cookie value signed with the site's key, as any holder of it could make."""
    return signing.dumps(data, salt=SALT, compress=True)


@with_twins
class SignedCookieSessionStoreTests(SessionStoreContract, SimpleTestCase):
    engine = ENGINES["signed_cookies"]

    def cookie(self, **data) -> str:
        return self.saved(**data).session_key

    # Drop-in for Django's engine ---------------------------------------------------------

    def test_cookies_from_djangos_engine_load_and_ours_load_in_djangos(self):
        theirs = DjangoCookieStore()
        theirs.update({"cat": "lion", "n": [1, 2]})
        theirs.save()
        assert dict(self.store(theirs.session_key).items()) == {"cat": "lion", "n": [1, 2]}
        ours = self.cookie(cat="lion")
        assert DjangoCookieStore(ours)["cat"] == "lion"

    def both_nothing_is_stored_on_the_server(self, call: Calls) -> None:
        session = self.saved_by(call, a=1)
        assert call(session, "exists", session.session_key) is False
        assert call(self.store_class, "clear_expired") is None
        call(session, "delete")
        assert session.session_key is None
        assert session.modified is True
        assert list(call(session, "keys")) == []

    def both_create_only_marks_the_cookie_to_be_set(self, call: Calls) -> None:
        session = self.store()
        call(session, "create")
        assert session.modified is True
        assert session.session_key is None

    def test_cycle_key_changes_the_cookie_within_the_same_second(self):
        with freeze_time(timezone.now()):
            session = self.saved(a=1)
            old = session.session_key
            session.cycle_key()
            assert session.session_key != old
            assert self.reloaded(session)["a"] == 1

    # Expiry (Django ticket #27775) -------------------------------------------------------

    def both_expiry_in_seconds_is_honoured_unlike_djangos_engine(self, call: Calls) -> None:
        start = timezone.now()
        with freeze_time(start):
            session = self.store()
            call(session, "set", "a", 1)
            call(session, "set_expiry", 60)
            call(session, "save")
        with freeze_time(start + timedelta(seconds=59)):
            assert call(self.reloaded(session), "get", "a") == 1
        with freeze_time(start + timedelta(seconds=61)):
            loaded = self.reloaded(session)
            assert list(call(loaded, "keys")) == []
            assert loaded.session_key is None
            assert DjangoCookieStore(session.session_key)["a"] == 1  # the bug fixed here

    def test_expiry_as_a_datetime_is_honoured(self):
        start = timezone.now()
        with freeze_time(start):
            session = self.store()
            session["a"] = 1
            session.set_expiry(start + timedelta(minutes=2))
            session.save()
        with freeze_time(start + timedelta(minutes=3)):
            assert list(self.reloaded(session).keys()) == []

    @override_settings(SESSION_COOKIE_AGE=600)
    def test_default_expiry_is_the_cookie_age_from_the_last_save(self):
        start = timezone.now()
        with freeze_time(start):
            session = self.saved(a=1)
        with freeze_time(start + timedelta(seconds=500)):
            session = self.reloaded(session)
            session["b"] = 2
            session.save()
        with freeze_time(start + timedelta(seconds=1000)):
            assert self.reloaded(session)["a"] == 1
        with freeze_time(start + timedelta(seconds=1101)):
            assert list(self.reloaded(session).keys()) == []

    def test_cookie_signed_in_the_future_is_no_session_and_logged(self):
        with freeze_time(timezone.now() + timedelta(hours=1)):
            value = self.cookie(a=1)
        with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
            assert list(self.store(value).keys()) == []
        assert "signed in the future" in logs.output[0]

    def test_invalid_expiry_in_a_signed_payload_is_no_session_and_logged(self):
        value = signed({"a": 1, "_session_expiry": "next tuesday"})
        with self.assertLogs(SUSPICIOUS, "WARNING"):
            assert list(self.store(value).keys()) == []

    # Size --------------------------------------------------------------------------------

    def both_session_too_large_for_a_cookie_is_refused_at_save_naming_the_size(
        self, call: Calls
    ) -> None:
        # Random data: compression cannot save it. A new session gets no cookie, a saved
        # one keeps the cookie it had.
        for session in (self.store(), self.saved_by(call, a=1)):
            kept = session.session_key
            call(session, "set", "blob", get_random_string(4000))
            with pytest.raises(SessionTooLarge, match=r"would be \d+ bytes, more than the 4093"):
                call(session, "save")
            assert session.session_key == kept
        assert kept is not None
        assert issubclass(SessionTooLarge, ValueError)

    def test_largest_cookie_saved_fits_and_the_next_is_refused(self):
        session = self.store()
        blob = ""
        while True:
            blob += get_random_string(50)
            session["blob"] = blob
            try:
                session.save()
            except SessionTooLarge as exc:
                refused = int(re.search(r"would be (\d+) bytes", str(exc)).group(1))
                break
            saved_size = len("sessionid=") + len(session.session_key)
        assert saved_size <= MAX_COOKIE_BYTES < refused

    @override_settings(SESSION_COOKIE_NAME="a_much_longer_session_cookie_name_" * 10)
    def test_cookie_name_counts_towards_the_size(self):
        session = self.store()
        session["blob"] = get_random_string(3750)
        with pytest.raises(SessionTooLarge):
            session.save()
        with override_settings(SESSION_COOKIE_NAME="sessionid"):
            session.save()
        assert len(session.session_key) < MAX_COOKIE_BYTES

    def test_overlong_cookie_is_no_session_without_decoding(self):
        value = signed({"blob": get_random_string(4000)})
        assert len(value) > MAX_COOKIE_BYTES
        with self.assertNoLogs(SUSPICIOUS):
            session = self.store(value)
            assert session.session_key is None
            assert list(session.keys()) == []

    def test_decompression_stops_at_sessionplus_max_size(self):
        # 3 MB of one letter compresses into a cookie a browser would carry.
        value = signed({"a": "x" * 3_000_000})
        assert len(value) < MAX_COOKIE_BYTES
        tracemalloc.start()
        try:
            with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
                assert list(self.store(value).keys()) == []
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert "SESSIONPLUS_MAX_SIZE" in logs.output[0]
        assert peak < 1_000_000

    @override_settings(SESSIONPLUS_MAX_SIZE=1000)
    def test_uncompressed_payload_over_the_limit_is_refused(self):
        value = signing.dumps({"blob": get_random_string(1200)}, salt=SALT)
        with self.assertLogs(SUSPICIOUS, "WARNING"):
            assert list(self.store(value).keys()) == []

    # Tampering -----------------------------------------------------------------------------

    def test_tampered_or_truncated_cookie_is_no_session_and_logged_without_the_value(self):
        value = self.cookie(a=1)
        flipped = value[:5] + ("A" if value[5] != "A" else "B") + value[6:]
        for bad in (flipped, value[:-3], signing.dumps({"a": 1}, salt="another.salt")):
            with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
                session = self.store(bad)
                assert list(session.keys()) == []
            assert session.session_key is None
            assert bad not in "".join(logs.output)

    def test_cookie_cut_before_its_signature_is_no_session_without_decoding(self):
        value = self.cookie(a=1)
        with self.assertNoLogs(SUSPICIOUS):
            assert self.store(value.rsplit(":", 1)[0]).session_key is None

    def test_cookie_with_characters_no_signed_value_has_is_no_session_without_decoding(self):
        value = self.cookie(a=1)
        with self.assertNoLogs(SUSPICIOUS):
            session = self.store(value.replace(":", "!:", 1))
            assert list(session.keys()) == []
        assert session.session_key is None

    def test_signed_payload_that_does_not_decode_is_no_session_and_logged(self):
        for payload in ("a", ".bm90IHpsaWI", "bm90IGpzb24"):
            value = signing.TimestampSigner(salt=SALT).sign(payload)
            with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
                assert list(self.store(value).keys()) == []
            assert "could not be decoded" in logs.output[0]

    def test_signed_payload_that_is_not_a_dict_is_no_session_and_logged(self):
        with self.assertLogs(SUSPICIOUS, "WARNING"):
            assert list(self.store(signed(["a", 1])).keys()) == []

    # Metadata ------------------------------------------------------------------------------

    def test_creation_time_is_kept_and_last_activity_is_the_signing_time(self):
        created = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
        later = created + timedelta(minutes=10)
        with freeze_time(created):
            session = self.saved(a=1)
        with freeze_time(later):
            session = self.reloaded(session)
            session["b"] = 2
            session.save()
            metadata = self.reloaded(session).metadata
        assert (metadata.created_at, metadata.last_activity) == (created, later)
        assert sorted(self.reloaded(session).keys()) == ["a", "b"]

    def test_user_id_ip_and_user_agent_are_not_kept_in_the_cookie(self):
        session = self.store()
        session.update_metadata(user_id="42", ip="192.0.2.1", user_agent="Browser/1.0")
        session["a"] = 1
        session.save()
        metadata = self.reloaded(session).metadata
        assert (metadata.user_id, metadata.ip, metadata.user_agent) == (None, None, None)

    def test_cookie_from_djangos_engine_counts_as_created_when_it_was_signed(self):
        signed_at = timezone.now().replace(microsecond=0) - timedelta(hours=2)
        with freeze_time(signed_at):
            theirs = DjangoCookieStore()
            theirs["a"] = 1
            theirs.save()
        session = self.store(theirs.session_key)
        assert session.metadata.created_at == signed_at
        session["b"] = 2
        session.save()  # records it
        assert self.reloaded(session).metadata.created_at == signed_at

    # The signer's clock (django-allauth's tests) -------------------------------------------

    # django-allauth's password-reset-by-code tests patch time.time alone, not datetime:
    # the signer stamps the cookie with it, so its expiry is checked on that clock too.
    # A mock, because only a test can make the two clocks disagree.

    def test_a_cookie_signed_and_read_under_a_patched_time_time_loads(self):
        with mock.patch("time.time", return_value=1_000_000.0):
            session = self.saved(a=1)
            assert self.reloaded(session)["a"] == 1

    def test_expiry_runs_on_the_signers_clock_not_timezone_now(self):
        start = time.time()
        with mock.patch("time.time", return_value=start):
            session = self.store()
            session["a"] = 1
            session.set_expiry(60)
            session.save()
        with mock.patch("time.time", return_value=start + 61):
            assert list(self.reloaded(session).keys()) == []

    # Same session, same cookie (Django's auth_tests LoginTest) -------------------------------

    def test_saving_an_unchanged_session_again_gives_the_same_cookie(self):
        with freeze_time(timezone.now()):  # within the signer's resolution: one second
            session = self.store()
            session["a"] = 1
            session.cycle_key()  # a nonce, as after login()
            again = self.reloaded(session)
            again["a"] = 1
            again.save()
            assert again.session_key == session.session_key
            again.cycle_key()
            assert again.session_key != session.session_key


@override_settings(
    ROOT_URLCONF="tests.urls_middleware", SESSION_ENGINE=ENGINES["signed_cookies"].module
)
@with_twins
class SignedCookieRequestTests(TestCase):
    """Through the middleware, as an application's requests meet the engine."""

    @classmethod
    def setUpTestData(cls) -> None:
        cls.user = get_user_model().objects.create_user("alice", password="first")

    @staticmethod
    def cookie(client: Client | AsyncClient) -> str:
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    # The login view of each mode: the sync one calls login(), the async one alogin().
    LOGIN = {"sync": "/login/?username=alice", "async": "/async/login/?username=alice"}

    def both_logging_in_again_as_the_same_user_keeps_the_cookie_unless_the_password_changed(
        self, call: Calls
    ) -> None:
        # Django's auth_tests LoginTest.test_session_key_flushed_on_login_after_password_change.
        client, login = call.client(self), self.LOGIN[call.mode]
        with freeze_time(timezone.now()):  # within the signer's resolution: one second
            call.get(client, login)
            first = self.cookie(client)
            call.get(client, login)
            assert self.cookie(client) == first
            self.user.set_password("second")
            self.user.save()
            call.get(client, login)
            assert self.cookie(client) != first

    def both_a_login_over_a_session_signs_the_new_cookie_once(self, call: Calls) -> None:
        # cycle_key() leaves the new value unsigned until the response's save (Django's engine
        # signs in both). The spy only counts: every signature is still made for real.
        client, login = call.client(self), self.LOGIN[call.mode]
        call.get(client, "/write/?value=kept")
        anonymous = self.cookie(client)
        signer_class = type(signer(SALT))
        with mock.patch.object(
            signer_class, "sign", autospec=True, side_effect=signer_class.sign
        ) as sign:
            call.get(client, login)
        assert sign.call_count == 1
        assert self.cookie(client) != anonymous
        assert call.get(client, "/whoami/").content == b"alice"
        assert call.get(client, "/read/").content == b"kept"

    def test_a_cycled_key_is_signed_when_first_asked_for(self):
        session = SessionStore()
        session["a"] = 1
        session.save()
        old = session.session_key
        session.cycle_key()
        session["b"] = 2
        new = session.session_key  # signed now, with both values
        assert new != old
        assert session.modified is True
        signed = signing.loads(new, salt=SALT)
        signed.pop("_sessionplus")  # created_at and the nonce
        assert signed == {"a": 1, "b": 2}

    def send_djangos_cookie(self, signed_at: datetime) -> None:
        """Give the client a cookie Django's own engine signed at ``signed_at``."""
        with freeze_time(signed_at):
            theirs = DjangoCookieStore()
            theirs["value"] = "theirs"
            theirs.save()
        self.client.cookies[settings.SESSION_COOKIE_NAME] = theirs.session_key

    @override_settings(SESSIONPLUS_ABSOLUTE_TIMEOUT=3600)
    def test_a_cookie_from_djangos_engine_is_held_to_the_absolute_timeout(self):
        start = timezone.now()
        self.send_djangos_cookie(start)
        with freeze_time(start + timedelta(minutes=30)):
            assert self.client.get("/read/").content == b"theirs"
            self.client.get("/write/?value=ours")  # re-signed now, created at its first signing
        with freeze_time(start + timedelta(minutes=59)):
            assert self.client.get("/read/").content == b"ours"
        with freeze_time(start + timedelta(minutes=61)):
            assert self.client.get("/read/").content == b"-"

    @override_settings(SESSIONPLUS_ABSOLUTE_TIMEOUT=3600)
    def test_a_cookie_from_djangos_engine_signed_too_long_ago_ends_at_once(self):
        start = timezone.now()
        self.send_djangos_cookie(start)
        with freeze_time(start + timedelta(hours=2)):
            assert self.client.get("/read/").content == b"-"
