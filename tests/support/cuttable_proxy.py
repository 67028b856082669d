"""A real TCP proxy in front of a real server, whose link a test can cut and restore."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

from tests.support.loopback import LoopbackServer


class CuttableProxy(LoopbackServer):
    """
    Forward loopback connections to ``target_host:target_port`` until ``cut()``.

    Cutting closes every open connection (bytes in flight are lost, as on a broken
    network) and hangs up on new ones until ``restore()``. A context manager: on exit
    every socket and thread it made is closed and joined.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        super().__init__()
        self.target = (target_host, target_port)
        self.is_cut = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []

    def serve(self, connection: socket.socket) -> None:
        if self.is_cut.is_set():
            connection.close()
            return
        upstream = socket.create_connection(self.target)
        with self.lock:
            self.sockets += [connection, upstream]
            for source, sink in ((connection, upstream), (upstream, connection)):
                thread = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
                self.threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.is_cut.is_set():
                    break
                sink.sendall(data)
        except OSError:
            pass  # the other pump or cut() closed the link
        finally:
            self._close(source, sink)

    def _close(self, *links: socket.socket) -> None:
        for link in links:
            with suppress(OSError):  # already shut
                link.shutdown(socket.SHUT_RDWR)
            link.close()

    def cut(self) -> None:
        """Break every connection now and refuse service until ``restore()``."""
        self.is_cut.set()
        with self.lock:
            self._close(*self.sockets)

    def restore(self) -> None:
        self.is_cut.clear()

    def close(self) -> None:
        self.cut()
        for thread in self.threads:
            thread.join()
