"""A throwaway Redis Sentinel watching a private master, for the redis engine's tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.loopback import answers, free_port, redis_server_binary
from tests.support.services import PrivateRedis, missing_service

SERVICE = "sessionplus-primary"


class PrivateRedisSentinel:
    """One master and one ``redis-server --sentinel`` monitoring it as ``SERVICE``."""

    def __init__(self) -> None:
        self.master = PrivateRedis(free_port())
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="sessionplus-redis-sentinel-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = redis_server_binary()
        if binary is None:
            missing_service("redis-server is needed for the Redis Sentinel tests")
        self.master.start()
        config = Path(self.directory) / "sentinel.conf"  # Sentinel rewrites it: a copy of ours
        config.write_text(
            f"bind 127.0.0.1\nport {self.port}\ndir {self.directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master.port} 1\n"
        )
        self.process = subprocess.Popen(
            [binary, str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._knows_the_master():
                return
            time.sleep(0.05)
        self.stop()
        missing_service("Redis Sentinel never reported its master")

    def _knows_the_master(self) -> bool:
        import redis

        if not answers(self.port):
            return False
        try:
            with redis.Redis(port=self.port) as sentinel:
                masters = sentinel.sentinel_masters()
        except (OSError, redis.RedisError):
            return False
        state = masters.get(SERVICE, {})
        return state.get("is_master") and not state.get("is_sdown") and not state.get("is_odown")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        self.master.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
