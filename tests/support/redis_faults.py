"""Real sockets that misbehave like a broken Redis: one that never answers, one that hangs up."""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class Listener:
    """
    A loopback TCP listener that accepts connections and then does its ``handle``.

    A context manager: on exit it stops accepting and closes every socket it opened.
    """

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.accepted: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.accepted.append(connection)
            self.handle(connection)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self.thread.join()
        for connection in self.accepted:
            connection.close()
        self.server.close()


class SilentListener(Listener):
    """Accepts every connection and never sends a byte: a hung server or a black hole."""

    def handle(self, connection: socket.socket) -> None:
        pass  # keep it open, say nothing


class HangingUpListener(Listener):
    """Accepts every connection and closes it at once: a server refusing clients."""

    def handle(self, connection: socket.socket) -> None:
        connection.close()
