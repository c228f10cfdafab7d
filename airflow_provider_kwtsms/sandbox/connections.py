"""Open-connection tracking shared by the sandbox's HTTP and SMTP servers."""

from __future__ import annotations

import contextlib
import socket
import threading


class TracksOpenConnections:
    """A socketserver mix-in that remembers open client sockets, so ``stop()`` can close them.

    Without it a stopped sandbox would go on answering on connections a client kept alive.
    """

    def _open_set(self) -> tuple[set[socket.socket], threading.Lock]:
        if not hasattr(self, "_open"):
            self._open: set[socket.socket] = set()
            self._open_lock = threading.Lock()
        return self._open, self._open_lock

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        sockets, lock = self._open_set()
        with lock:
            sockets.add(request)
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        sockets, lock = self._open_set()
        with lock:
            sockets.discard(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def close_open_connections(self) -> None:
        sockets, lock = self._open_set()
        with lock:
            open_now = list(sockets)
            sockets.clear()
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
