"""What sessionplus records about a session besides its data."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.test import SimpleTestCase
from freezegun import freeze_time

from sessionplus.backends.base import SessionPlusBase
from sessionplus.backends.metadata import (
    USER_AGENT_MAX_LENGTH,
    SessionMetadata,
    clean_user_agent,
    is_metadata_value,
)


class SecondsSinceTests(SimpleTestCase):
    """The timeout and touch decisions read metadata timestamps as plain numbers."""

    def test_is_none_until_the_timestamp_is_recorded_then_counts_seconds_from_it(self):
        session = SessionPlusBase()
        assert session.seconds_since("last_activity") is None
        session.metadata_for_write(now=1000.0)
        assert session.seconds_since("last_activity", now=1030.5) == 30.5
        assert session.seconds_since("created_at", now=1000.0) == 0
        with freeze_time(datetime.fromtimestamp(1060, tz=dt_timezone.utc)):
            assert session.seconds_since("created_at") == 60


class MetadataTests(SimpleTestCase):
    """Metadata as engines store it (UNIX seconds) and as the read-only view shows it."""

    def test_the_view_shows_timestamps_as_aware_utc_datetimes(self):
        view = SessionMetadata.from_stored({"created_at": 0, "last_activity": 60.5, "ip": "::1"})
        assert view.created_at == datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
        assert view.last_activity == datetime(1970, 1, 1, 0, 1, 0, 500000, tzinfo=dt_timezone.utc)
        assert (view.ip, view.user_id, view.user_agent) == ("::1", None, None)

    def test_stored_values_are_finite_numbers_for_timestamps_and_text_otherwise(self):
        assert is_metadata_value("created_at", 1.5)
        assert is_metadata_value("user_id", "7")
        for name, value in (
            ("created_at", "1.5"),
            ("last_activity", True),
            ("last_activity", float("nan")),
            ("user_id", 7),
            ("ip", None),
        ):
            assert not is_metadata_value(name, value), (name, value)

    def test_a_user_agent_loses_control_characters_and_is_cut_to_the_column(self):
        assert clean_user_agent("Browser\x00/1.0\x1b\x9f") == "Browser/1.0"
        assert len(clean_user_agent("x" * 1000)) == USER_AGENT_MAX_LENGTH
        # Every character of the first 256 alone and inside a header, and characters
        # that are not printable without being controls, which are kept.
        for char in [*map(chr, range(256)), "\u2028", "\u200b", "é"]:
            expected = "" if char < " " or "\x7f" <= char <= "\x9f" else char
            assert clean_user_agent(char) == expected, repr(char)
            assert clean_user_agent(f"Browser/{char}1.0") == f"Browser/{expected}1.0"

    def test_staged_metadata_is_forgotten_once_saved_and_unchanged_values_are_not_staged(self):
        session = SessionPlusBase()
        session._accept_metadata({"user_id": "7", "ip": "192.0.2.1"})
        session.update_metadata(user_id=7, ip="192.0.2.2")
        assert session.metadata_for_touch(now=5.0) == {"ip": "192.0.2.2", "last_activity": 5.0}
        session._mark_saved()
        assert session.metadata_for_touch(now=6.0) == {"last_activity": 6.0}
