"""
Which expiries ``set_expiry()`` accepts, and which stored ones a session loads with.

``CorruptExpiryChecks`` runs on every engine: a stored ``_session_expiry`` that cannot be
used means no session, never a 500.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import timezone

from sessionplus.backends.base import SessionPlusBase
from sessionplus.backends.expiry import MAX_EXPIRY_SECONDS, stored_expiry_is_valid
from tests.backends.contract import Calls, with_twins
from tests.support.engines import SHIPPED, EngineTestMixin, engine_matrix, planted_session


@with_twins
class SetExpiryTests(SimpleTestCase):
    """set_expiry() accepts what Django documents and refuses what would break later."""

    def both_refuses_values_of_the_wrong_type(self, call: Calls) -> None:
        session = SessionPlusBase()
        for value in (True, False, 1.5, math.nan, math.inf, "300", "2030-01-01", Decimal(5), []):
            with pytest.raises(TypeError, match="int, a datetime, a timedelta or None"):
                call(session, "set_expiry", value)
        assert "_session_expiry" not in session

    def both_refuses_values_out_of_range(self, call: Calls) -> None:
        session = SessionPlusBase()
        far = MAX_EXPIRY_SECONDS + 1
        for value in (
            far,
            -far,
            10**100,
            timedelta(seconds=far),
            timedelta.max,
            timedelta.min,
            datetime.max.replace(tzinfo=dt_timezone.utc),
            datetime(1, 1, 1, tzinfo=dt_timezone.utc),
        ):
            with pytest.raises(ValueError, match="within"):
                call(session, "set_expiry", value)
        assert "_session_expiry" not in session

    def both_refuses_a_naive_datetime_when_use_tz_is_on(self, call: Calls) -> None:
        session = SessionPlusBase()
        with pytest.raises(ValueError, match="aware"):
            call(session, "set_expiry", datetime(2030, 1, 1))

    @override_settings(USE_TZ=False)
    def test_refuses_an_aware_datetime_when_use_tz_is_off(self):
        session = SessionPlusBase()
        with pytest.raises(ValueError, match="aware"):
            session.set_expiry(datetime.now(dt_timezone.utc) + timedelta(days=1))
        session.set_expiry(datetime.now() + timedelta(days=1))
        assert 86300 < session.get_expiry_age() <= 86400

    def both_accepts_what_django_documents(self, call: Calls) -> None:
        session = SessionPlusBase()
        call(session, "set_expiry", MAX_EXPIRY_SECONDS)
        call(session, "set_expiry", 120)
        assert call(session, "get_expiry_age") == 120
        call(session, "set_expiry", -10)
        assert call(session, "get_expiry_age") == -10
        call(session, "set_expiry", timedelta(days=30))
        assert 30 * 86400 - 5 <= call(session, "get_expiry_age") <= 30 * 86400
        moment = timezone.now() + timedelta(hours=1)
        call(session, "set_expiry", moment)
        assert call(session, "get_expiry_date") == moment
        call(session, "set_expiry", 0)
        assert call(session, "get_expire_at_browser_close") is True
        call(session, "set_expiry", None)
        assert "_session_expiry" not in session


class StoredExpiryTests(SimpleTestCase):
    """What a stored ``_session_expiry`` may hold for the session to load."""

    def test_valid_stored_forms(self):
        moment = timezone.now() + timedelta(days=1)
        for value in (None, 0, 300, -10, 1.5, moment.isoformat()):
            assert stored_expiry_is_valid(value) is True, value

    def test_corrupt_stored_forms(self):
        for value in (
            "garbage",
            "2030-01-01T00:00:00",  # naive while USE_TZ is on
            "9999-12-31T00:00:00+00:00",
            True,
            math.nan,
            math.inf,
            -math.inf,
            10**30,
            [],
            {"a": 1},
        ):
            assert stored_expiry_is_valid(value) is False, value

    @override_settings(USE_TZ=False)
    def test_naive_stored_dates_are_valid_when_use_tz_is_off(self):
        moment = datetime.now() + timedelta(days=1)
        assert stored_expiry_is_valid(moment.isoformat()) is True
        aware = datetime.now(dt_timezone.utc) + timedelta(days=1)
        assert stored_expiry_is_valid(aware.isoformat()) is False


# On every engine, through its store ------------------------------------------------------

SUSPICIOUS = "django.security.SuspiciousSession"

# What a stored ``_session_expiry`` may hold that Django's expiry maths would choke on.
CORRUPT_EXPIRIES = {
    "text": "garbage",
    "bool": True,
    "NaN": math.nan,
    "infinity": math.inf,
    "far future": 10**30,
    "naive date": "2030-01-01T00:00:00",
    "year 9999": "9999-12-31T23:59:59+00:00",
    "list": [],
    "dict": {"a": 1},
}


@with_twins
class CorruptExpiryChecks(EngineTestMixin):
    """A stored ``_session_expiry`` that cannot be used means no session, never a 500."""

    def both_a_corrupt_stored_expiry_is_no_session_and_logged_once(self, call: Calls) -> None:
        for name, expiry in CORRUPT_EXPIRIES.items():
            key = planted_session(self.engine, {"_session_expiry": expiry, "a": 1})
            with self.assertLogs(SUSPICIOUS, "WARNING") as logs:
                session = self.store(key)
                assert dict(call(session, "items")) == {}, name
            assert session.session_key is None, name
            assert len(logs.records) == 1, (name, logs.output)
            assert "invalid expiry" in logs.output[0]
            assert key not in logs.output[0]

    def both_a_corrupt_stored_expiry_gets_an_anonymous_response_not_a_500(
        self, call: Calls
    ) -> None:
        client = call.client(self)
        for name, expiry in CORRUPT_EXPIRIES.items():
            key = planted_session(self.engine, {"_session_expiry": expiry, "a": 1})
            client.cookies[settings.SESSION_COOKIE_NAME] = key
            with self.assertLogs(SUSPICIOUS, "WARNING"):
                response = call.get(client, "/read/")
            assert response.status_code == 200, name
            assert response.content == b"authenticated=False keys=", name
            client.cookies[settings.SESSION_COOKIE_NAME] = key
            with self.assertLogs(SUSPICIOUS, "WARNING"):
                response = call.get(client, "/write/")
            assert response.content == b"visits=1", name
            assert response.cookies[settings.SESSION_COOKIE_NAME].value != key, name

    def both_a_valid_stored_expiry_still_loads(self, call: Calls) -> None:
        key = planted_session(self.engine, {"_session_expiry": 600, "a": 1})
        session = self.store(key)
        assert call(session, "get", "a") == 1
        assert call(session, "get_expiry_age") == 600


engine_matrix(globals(), "CorruptExpiryTests", (CorruptExpiryChecks, TestCase), SHIPPED)
