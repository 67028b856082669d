"""
The one time format inside sessionplus: UNIX timestamps, as float seconds.

Datetimes are built only where sessionplus meets something that speaks them: Django's
expiry methods, a ``DateTimeField``, the read-only metadata view.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.utils import timezone


def now_timestamp() -> float:
    """Return the current time as a UNIX timestamp, honouring a frozen clock."""
    return timezone.now().timestamp()


def as_utc_datetime(timestamp: float) -> datetime:
    """Return a UNIX timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, tz=dt_timezone.utc)
