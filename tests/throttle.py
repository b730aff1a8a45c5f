"""A TCP proxy on a free loopback port that paces uploads: the bed's slow front for pushes.

The test bed's nginx front (127.0.0.1:5001) slows what the registry *sends* (``limit_rate``
applies to responses), so a push through it goes at full speed. :class:`ThrottleProxy`
forwards every connection to ``upstream`` (the registry, 127.0.0.1:5000) and lets the
client-to-upstream bytes through at ``rate`` bytes per second, shared by all connections
(the engine sends layers in parallel: the whole push takes ``bytes / rate``); the answers
come back unpaced. Reads from the client wait for the paced write, so the engine's own
sends block as they would on a slow link.

It runs an asyncio loop in a daemon thread: ``with ThrottleProxy(...) as proxy`` (or
:meth:`start`/:meth:`stop`), then ``proxy.address`` ("127.0.0.1:PORT") names it. The counters
(``uploaded``, ``downloaded``, ``connections``, ``open``) and each connection's
:class:`Link` are read from any thread. :meth:`ThrottleProxy.client_states` tells, from
``/proc/net/tcp``, the TCP state of each client's own socket: whether the client has closed
it, even while what it sent before still drains through the paced link.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

__all__ = ["Link", "ThrottleProxy"]

CHUNK = 16 * 1024  # paced in pieces this big: smooth progress, a few hundred writes a second
RECEIVE_BUFFER = 64 * 1024


# /proc/net/tcp's "st" column
TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


@dataclass
class Link:
    """One client connection: the client's port, bytes it sent upstream, still open here."""

    client_port: int
    uploaded: int = 0
    open: bool = True


class ThrottleProxy:
    """Forward 127.0.0.1:<free port> to ``upstream`` ("host:port"), uploads at ``rate`` B/s."""

    def __init__(self, upstream: str, rate: float, *, host: str = "127.0.0.1") -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        up_host, _, up_port = upstream.rpartition(":")
        self.upstream = (up_host, int(up_port))
        self.rate = float(rate)
        self.host = host
        self.port = 0
        self.uploaded = 0  # client -> upstream bytes forwarded
        self.downloaded = 0  # upstream -> client bytes forwarded
        self.connections = 0  # accepted in all
        self.open = 0  # open now
        self.links: list[Link] = []
        self._next_free = 0.0  # when the shared link is free for the next piece (loop time)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ life

    def start(self) -> ThrottleProxy:
        self._thread = threading.Thread(target=self._run, name="throttle-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the throttling proxy did not start")
        if self._error is not None:
            raise RuntimeError(f"the throttling proxy did not start: {self._error}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> ThrottleProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            # A small receive buffer (inherited by each accepted socket): what the proxy has
            # not forwarded yet waits in the engine's socket, not in a large buffer here.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            listener.bind((self.host, 0))
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, sock=listener))
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()  # until stop()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        """Stop accepting, end every connection (idempotent)."""
        assert self._server is not None
        self._server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=5)

    # ------------------------------------------------------------------ forwarding

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.open += 1
        link = Link(int(writer.get_extra_info("peername")[1]))
        self.links.append(link)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            up = asyncio.ensure_future(self._pump(reader, up_writer, link=link))
            down = asyncio.ensure_future(self._pump(up_reader, writer, link=None))
            pumps = [up, down]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
                # The client half-closed: pass that on and let the answer finish. (A reset,
                # or the upstream closing, ends the connection at once.)
                half_closed = up.done() and not up.cancelled() and up.exception() is None
                if half_closed and not down.done():
                    with contextlib.suppress(OSError):
                        up_writer.write_eof()
                    await down
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self.open -= 1
            link.open = False
            self._tasks.discard(task)
            for w in (writer, up_writer):
                if w is not None:
                    w.close()  # not wait_closed(): it may wait for a peer that never answers

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, link: Link | None
    ) -> None:
        """Copy ``reader`` to ``writer``; paced (and counted on ``link``) when it is the
        client's upload."""
        loop = asyncio.get_running_loop()
        paced = link is not None
        while data := await reader.read(CHUNK if paced else 1 << 16):
            if link is not None:
                # One shared link: each piece takes len/rate seconds after the previous one.
                start = max(loop.time(), self._next_free)
                self._next_free = start + len(data) / self.rate
                await asyncio.sleep(self._next_free - loop.time())
            writer.write(data)
            await writer.drain()
            if link is not None:
                self.uploaded += len(data)
                link.uploaded += len(data)
            else:
                self.downloaded += len(data)

    # ------------------------------------------------------------------ observing

    def client_states(self) -> dict[int, str]:
        """The state of each client socket connected to this proxy (``ESTABLISHED``,
        ``FIN_WAIT1`` once the client closed it with data still queued, ...), by the client's
        port; a socket that is gone is absent. Read from ``/proc/net/tcp`` (same host)."""
        wanted = f"0100007F:{self.port:04X}"
        states: dict[int, str] = {}
        with open("/proc/net/tcp", encoding="ascii") as table:
            next(table)
            for row in table:
                fields = row.split()
                local, remote, state = fields[1], fields[2], fields[3]
                if remote == wanted:
                    states[int(local.split(":")[1], 16)] = TCP_STATES.get(state, state)
        return states

    def wait_uploaded(self, amount: int, timeout: float) -> bool:
        """Wait until at least ``amount`` bytes went upstream; ``False`` at the timeout."""
        deadline = time.monotonic() + timeout
        while self.uploaded < amount:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
