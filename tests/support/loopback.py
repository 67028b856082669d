"""
Servers on loopback ports, with nothing of Django or pytest in them: the suite's fixtures
and the benchmarks both start theirs from here.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import TypeVar

_Server = TypeVar("_Server", bound="LoopbackServer")


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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self.acceptor.join()
        self.close()
        self.server.close()
