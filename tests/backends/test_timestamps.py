"""The one clock sessionplus reads: timezone.now()'s, patched or not."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from unittest import mock

from django.test import SimpleTestCase, override_settings
from django.utils import timezone
from freezegun import freeze_time

from sessionplus.backends.timestamps import as_utc_datetime, now_timestamp

FROZEN = datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt_timezone.utc)


class NowTimestampTests(SimpleTestCase):
    def test_unpatched_it_is_the_time_timezone_now_reads(self):
        before = timezone.now().timestamp()
        now = now_timestamp()
        assert before <= now <= timezone.now().timestamp()

    @override_settings(USE_TZ=False)
    def test_without_time_zones_it_is_still_unix_time(self):
        before = time.time()
        assert before <= now_timestamp() <= time.time()

    def test_a_frozen_clock_is_read(self):
        with freeze_time(FROZEN):
            assert now_timestamp() == FROZEN.timestamp()
        assert now_timestamp() > FROZEN.timestamp() - 10**9

    def test_a_mock_of_timezone_now_is_read(self):
        # A test suite's own patch of Django's clock: what this function must follow.
        with mock.patch("django.utils.timezone.now", return_value=FROZEN):
            assert now_timestamp() == FROZEN.timestamp()

    def test_time_time_patched_alone_is_not_django_s_clock_and_not_read(self):
        # As Django's expiry maths: timezone.now() does not call time.time().
        far = time.time() + timedelta(days=400).total_seconds()
        with mock.patch("time.time", return_value=far):
            assert abs(now_timestamp() - timezone.now().timestamp()) < 60
            assert now_timestamp() < far - 60


def test_a_timestamp_converts_to_an_aware_utc_datetime():
    assert as_utc_datetime(FROZEN.timestamp()) == FROZEN
    assert as_utc_datetime(0).tzinfo is dt_timezone.utc
