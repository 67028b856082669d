"""A real TCP proxy in front of a real server, whose link a test can cut and restore."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from types import TracebackType


class CuttableProxy:
    """
    Forward loopback connections to ``target_host:target_port`` until ``cut()``.

    Cutting closes every open connection (bytes in flight are lost, as on a broken
    network) and hangs up on new ones until ``restore()``. A context manager: on exit
    every socket and thread it made is closed and joined.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]
        self.is_cut = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            if self.is_cut.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
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

    def __enter__(self) -> CuttableProxy:
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
        self.cut()
        for thread in self.threads:
            thread.join()
        self.server.close()
