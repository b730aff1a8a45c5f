"""A Unix-socket proxy in front of the engine's socket that a test can cut and pause.

Real bytes from the real engine pass through; :meth:`cut` closes every open connection (what
a client sees when dockerd restarts), :meth:`pause` refuses new connections for a while (the
daemon being down). Threads only, stopped by :meth:`close`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path


class SocketProxy:
    def __init__(self, path: Path, upstream: str = "/var/run/docker.sock") -> None:
        self.path = path
        self.upstream = upstream
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(64)
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._paused_until = 0.0
        self._closed = False
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if time.monotonic() < self._paused_until:
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                client.close()
                upstream.close()
                continue
            with self._lock:
                if self._closed:  # close() ran while this one was being accepted
                    client.close()
                    upstream.close()
                    return
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every connection now open (the client sees its streams break)."""
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.cuts += 1

    def pause(self, seconds: float) -> None:
        """Refuse new connections for ``seconds`` (and cut the open ones)."""
        self._paused_until = time.monotonic() + seconds
        self.cut()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._server.close()
        self.cut()
