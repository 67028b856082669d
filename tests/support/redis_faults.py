"""Real sockets that misbehave like a broken Redis: one that never answers, one that hangs up."""

from __future__ import annotations

import socket

from tests.support.loopback import LoopbackServer


class Listener(LoopbackServer):
    """
    A loopback TCP listener that accepts connections and then does its ``handle``.

    A context manager: on exit it stops accepting and closes every socket it opened.
    """

    def __init__(self) -> None:
        super().__init__()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.accepted: list[socket.socket] = []

    def handle(self, connection: socket.socket) -> None:
        raise NotImplementedError

    def serve(self, connection: socket.socket) -> None:
        self.accepted.append(connection)
        self.handle(connection)

    def close(self) -> None:
        for connection in self.accepted:
            connection.close()


class SilentListener(Listener):
    """Accepts every connection and never sends a byte: a hung server or a black hole."""

    def handle(self, connection: socket.socket) -> None:
        pass  # keep it open, say nothing


class HangingUpListener(Listener):
    """Accepts every connection and closes it at once: a server refusing clients."""

    def handle(self, connection: socket.socket) -> None:
        connection.close()
