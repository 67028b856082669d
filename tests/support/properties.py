"""Hypothesis settings for property tests that every engine runs."""

from __future__ import annotations

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

# Each test runs once per engine class from one mixin: the same function on different
# instances is what that health check is about, and is what is meant here.
per_engine = hypothesis_settings(suppress_health_check=[HealthCheck.differing_executors])
