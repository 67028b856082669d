from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.redis_cluster import PrivateRedisCluster
from tests.support.services import private_memcached, private_redis, redis_url

# Property tests draw the same examples on every run, few enough for CI (no example
# database, no deadline: CI machines are slow and shared). HYPOTHESIS_PROFILE=explore draws
# new examples, many more.
hypothesis_settings.register_profile(
    "ci", max_examples=50, derandomize=True, database=None, deadline=None
)
hypothesis_settings.register_profile("explore", max_examples=1000, database=None, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    """Yield a private Redis Cluster of three masters, shared by the tests that need one."""
    cluster = PrivateRedisCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """Yield the URL of a Redis server: REDIS_URL's, or a private one started for the suite."""
    server = private_redis()
    if server is not None:
        server.start()
    yield redis_url()
    if server is not None:
        server.stop()


@pytest.fixture
def redis_db(redis_server: str) -> Iterator[None]:
    """Empty the suite's Redis database (only that database) around a test."""
    from django_redis import get_redis_connection

    connection = get_redis_connection("redis")
    connection.flushdb()
    yield
    connection.flushdb()


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[str]:
    """Yield the location of a private memcached started for the suite."""
    server = private_memcached()
    server.start()
    yield server.location
    server.stop()


@pytest.fixture
def memcached_db(memcached_server: str) -> Iterator[None]:
    """Empty the suite's private memcached around a test."""
    from django.core.cache import caches

    caches["memcached"].clear()
    yield
    caches["memcached"].clear()


@pytest.fixture(autouse=True)
def no_outage_left_over() -> Iterator[None]:
    """End the outage a test left behind: the next test's first 503 is logged in full."""
    yield
    from sessionplus.outage import outages

    outages.answered()
