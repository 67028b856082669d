"""Which session expiries sessionplus accepts: from ``set_expiry()`` and as stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

# Where Django's SessionBase keeps the expiry set_expiry() was given.
EXPIRY_KEY = "_session_expiry"
# Expiries further away than this are mistakes, and would overflow datetime arithmetic
# (year 9999) long before they mattered.
MAX_EXPIRY_SECONDS = 1000 * 366 * 86400


def _check_expiry_seconds(seconds: float) -> None:
    # Written as a range test so that NaN and the infinities fail it too.
    if not -MAX_EXPIRY_SECONDS <= seconds <= MAX_EXPIRY_SECONDS:
        raise ValueError(
            f"A session expiry must lie within {MAX_EXPIRY_SECONDS} seconds of now, "
            f"not {seconds!r}."
        )


def _check_expiry_moment(moment: datetime) -> None:
    now = timezone.now()
    if timezone.is_aware(moment) != timezone.is_aware(now):
        raise ValueError(
            "A session expiry datetime must be aware when USE_TZ is True and naive otherwise."
        )
    _check_expiry_seconds((moment - now).total_seconds())


def check_expiry(value: object) -> None:
    """Raise TypeError / ValueError unless ``set_expiry(value)`` can be honoured later."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, datetime, timedelta)):
        raise TypeError(
            "set_expiry() takes an int, a datetime, a timedelta or None, "
            f"not {type(value).__name__}: {value!r}."
        )
    if isinstance(value, datetime):
        _check_expiry_moment(value)
    elif isinstance(value, timedelta):
        _check_expiry_seconds(value.total_seconds())
    else:
        _check_expiry_seconds(value)


def stored_expiry_is_valid(value: object) -> bool:
    """Return whether a stored ``_session_expiry`` is one Django's expiry maths can use."""
    try:
        if isinstance(value, str):
            _check_expiry_moment(datetime.fromisoformat(value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_expiry_seconds(value)
        elif value is not None:
            return False
    except ValueError:
        return False
    return True
