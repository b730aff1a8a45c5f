"""Just enough HTTP/1.1 for the engine's unix socket and a loopback registry.

:mod:`http.client` would do, but importing it loads the ``email`` package (its header
parser), ``ssl``, ``datetime`` and ``calendar``, and connecting it to ``127.0.0.1`` loads the
``idna`` codec: about 10 ms of a start-up whose whole budget is a few tens of milliseconds
(see :mod:`dockprogress.docker.lean`). What the engine and a registry answer here is plain:
a status line, headers, then a body sized by ``Content-Length``, chunked, or read to the
close. :class:`Connection` sends one request at a time on a kept-alive socket;
:class:`Response` reads a body whole or chunk by chunk (each chunk as the server sent it,
what a pull's progress stream is made of).

Errors are ``OSError``: the socket's own, ``ConnectionError`` when the peer closes
mid-answer, :class:`ProtocolError` for an answer that is not HTTP/1.x.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from contextlib import suppress
from io import BufferedReader
from typing import Final, Protocol

__all__ = [
    "Connection",
    "ProtocolError",
    "Readable",
    "Response",
    "tcp_connector",
    "unix_connector",
]


class Readable(Protocol):
    """A request body: anything with ``read(size)`` (a file, a counting wrapper)."""

    def read(self, size: int = -1, /) -> bytes: ...


_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 200
_NO_BODY: Final = (204, 304)


class ProtocolError(OSError):
    """The peer's answer is not the HTTP/1.x this module reads."""


def unix_connector(path: str, timeout: float) -> Callable[[], socket.socket]:
    """Connects to a unix socket; a failed connect closes its socket at once."""

    def connect() -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return sock

    return connect


def tcp_connector(host: str, port: int, timeout: float) -> Callable[[], socket.socket]:
    """Connects to ``host:port`` (the host as bytes: no ``idna`` codec to load)."""

    def connect() -> socket.socket:
        return socket.create_connection((host.encode("ascii"), port), timeout=timeout)  # type: ignore[arg-type]

    return connect


def _line(reader: BufferedReader) -> bytes:
    line = reader.readline(_MAX_LINE + 1)
    if not line:
        raise ConnectionError("the connection closed before the answer was complete")
    if len(line) > _MAX_LINE:
        raise ProtocolError("an answer line longer than 64 KiB")
    return line


class Response:
    """An answer: ``status``, ``headers`` (lower-case names), and its body to read."""

    def __init__(self, connection: Connection, reader: BufferedReader, method: str) -> None:
        self._connection = connection
        self._reader = reader
        status_line = _line(reader)
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        self.status = int(parts[1])
        self.reason = parts[2].strip().decode("latin-1") if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = _line(reader)
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError(f"a header line without a colon: {line[:80]!r}")
            headers[name.strip().lower()] = value.strip()
        else:
            raise ProtocolError(f"more than {_MAX_HEADERS} header lines")
        self.headers: Mapping[str, str] = headers
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self.will_close = (
            parts[0] == b"HTTP/1.0" or headers.get("connection", "").lower() == "close"
        )
        self._left: int | None = None  # bytes of a Content-Length body not read yet
        self._done = False
        if method == "HEAD" or self.status in _NO_BODY or 100 <= self.status < 200:
            self._done = True
        elif not self.chunked:
            length = headers.get("content-length")
            if length is not None:
                if not length.isdigit():
                    raise ProtocolError(f"a Content-Length that is not a number: {length!r}")
                self._left = int(length)
                self._done = self._left == 0
            else:
                self.will_close = True  # the body ends with the connection
        if self._done:
            self._finish()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def _finish(self) -> None:
        self._done = True
        self._connection._answered(self)

    def read_chunk(self) -> bytes:
        """The next piece of the body as the server sent it (a whole chunk); ``b""`` at its end."""
        if self._done:
            return b""
        reader = self._reader
        if self.chunked:
            size_line = _line(reader)
            size_text = size_line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"a chunk size that is not hex: {size_line[:80]!r}") from None
            if size == 0:
                while _line(reader) not in (b"\r\n", b"\n"):  # trailers, then the blank line
                    pass
                self._finish()
                return b""
            data = reader.read(size)
            if len(data) < size:
                raise ConnectionError("the connection closed inside a chunk")
            if _line(reader) not in (b"\r\n", b"\n"):
                raise ProtocolError("a chunk not followed by CRLF")
            return data
        if self._left is not None:
            data = reader.read1(min(self._left, 65536)) if self._left else b""
            if not data and self._left:
                raise ConnectionError("the connection closed before the body was complete")
            self._left -= len(data)
            if self._left == 0:
                self._finish()
            return bytes(data)
        data = reader.read1(65536)
        if not data:
            self._finish()
        return bytes(data)

    def read(self) -> bytes:
        """The rest of the body."""
        pieces = []
        while piece := self.read_chunk():
            pieces.append(piece)
        return b"".join(pieces)


class Connection:
    """One kept-alive connection, opened on first use; one request at a time."""

    def __init__(self, connect: Callable[[], socket.socket], host: str) -> None:
        self._connect = connect
        self._host = host
        self.sock: socket.socket | None = None
        self._reader: BufferedReader | None = None
        self._reusable = False

    @property
    def idle(self) -> bool:
        """Open, its last answer read to the end: a next request may go on it."""
        return self.sock is not None and self._reusable

    def open(self) -> None:
        """Connect now (raises the connect's ``OSError``)."""
        if self.sock is None:
            self.sock = self._connect()
            self._reader = self.sock.makefile("rb")
            self._reusable = True

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None) -> Response:
        """Send ``method path`` (no body) and read the answer's status line and headers."""
        self.send(method, path, headers)
        return self.response(method)

    def send(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: Readable | None = None,
        length: int = 0,
    ) -> None:
        """Send ``method path``, with ``length`` bytes read from ``body`` if given (sent as
        they are read: a reader may report them, or raise to stop); :meth:`response` reads
        the answer later."""
        self.open()
        assert self.sock is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}"]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {length if body is not None else 0}")
        self._reusable = False
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        left = length if body is not None else 0
        while left > 0:
            assert body is not None
            data = body.read(min(left, 1 << 16))
            if not data:
                raise ProtocolError(f"the request body ended {left} bytes early")
            self.sock.sendall(data)
            left -= len(data)

    def response(self, method: str) -> Response:
        """The answer to the request :meth:`send` sent (``method`` as sent)."""
        if self._reader is None:
            raise ConnectionError("the connection was closed before its answer was read")
        return Response(self, self._reader, method)

    def _answered(self, response: Response) -> None:
        if response.will_close:
            self.close()
        else:
            self._reusable = True

    def shutdown(self) -> None:
        """Wake a reader blocked on this connection (from any thread); :meth:`close` after."""
        sock = self.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        sock, reader = self.sock, self._reader
        self.sock = self._reader = None
        self._reusable = False
        if reader is not None:
            with suppress(Exception):  # closed under a reader in another thread
                reader.close()
        if sock is not None:
            sock.close()
