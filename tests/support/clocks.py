"""Clocks that disagree: Django's naive clock against TIME_ZONE (USE_TZ = False)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.test import override_settings

# Fifteen hours apart, with no daylight saving time in Tokyo: a session whose expiry is
# read through the wrong zone lands far on the other side of "now".
ZONES_APART = [("America/Chicago", "Asia/Tokyo"), ("Asia/Tokyo", "America/Chicago")]


@contextmanager
def naive_clock_apart_from_time_zone(time_zone: str, process_zone: str) -> Iterator[None]:
    """
    Run with ``USE_TZ = False`` and ``TIME_ZONE = time_zone`` while the process's local
    time (what ``timezone.now()`` returns then) is ``process_zone``'s.

    That is the situation of a project configured with ``settings.configure()``, of
    Windows, or of a TZ environment that disagrees with TIME_ZONE.
    """
    with override_settings(USE_TZ=False, TIME_ZONE=time_zone):
        # override_settings(TIME_ZONE=...) moves the process zone too (Django's test
        # signal calls tzset()); move it away again, and back on the way out.
        previous = os.environ["TZ"]
        os.environ["TZ"] = process_zone
        time.tzset()
        try:
            yield
        finally:
            os.environ["TZ"] = previous
            time.tzset()
