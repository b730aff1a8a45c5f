"""The throttling proxy the push tests use (tests/throttle.py), on real loopback sockets.

The upstream here is a small TCP server of the test's own: it counts and keeps what it
receives and answers each connection with a fixed reply once the client has half-closed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.throttle import ThrottleProxy

REPLY = os.urandom(2 * 1024 * 1024)


class Upstream:
    """Accepts connections, reads each to its end, then sends ``REPLY`` and closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.broken: list[bytes] = []
        self.arrivals: list[tuple[float, int]] = []  # (monotonic time, bytes so far)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        parts: list[bytes] = []
        with conn:
            try:
                while data := conn.recv(65536):
                    parts.append(data)
                    total = sum(len(p) for p in parts)
                    self.arrivals.append((time.monotonic(), total))
                self.received.append(b"".join(parts))
                conn.sendall(REPLY)
            except OSError:  # the proxy went away first (a test that stops it mid-way)
                self.broken.append(b"".join(parts))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def _exchange(address: str, payload: bytes) -> tuple[bytes, float, float]:
    """Send ``payload``, half-close, read the reply: (reply, send seconds, reply seconds)."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port))) as conn:
        start = time.monotonic()
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        parts = []
        first: float | None = None
        while data := conn.recv(65536):
            if first is None:
                first = time.monotonic()
            parts.append(data)
        end = time.monotonic()
    assert first is not None, "no reply"
    return b"".join(parts), first - start, end - first


def test_uploads_are_paced_and_arrive_whole(upstream: Upstream) -> None:
    payload = os.urandom(300_000)
    with ThrottleProxy(f"127.0.0.1:{upstream.port}", rate=200_000) as proxy:
        reply, sending, replying = _exchange(proxy.address, payload)
        assert proxy.uploaded == len(payload)
        assert proxy.downloaded == len(REPLY)
        assert proxy.connections == 1
    assert hashlib.sha256(upstream.received[0]).digest() == hashlib.sha256(payload).digest()
    assert reply == REPLY
    # 300 kB at 200 kB/s: 1.5 s, give or take one piece; arriving evenly, not in one burst.
    assert 1.3 < sending < 3.0
    times = [t for t, n in upstream.arrivals if n <= len(payload) // 2]
    assert times[-1] - upstream.arrivals[0][0] > 0.5
    # The answer direction is not paced: 2 MB come back at loopback speed.
    assert replying < 0.5


def test_the_rate_is_shared_by_parallel_connections(upstream: Upstream) -> None:
    payload = os.urandom(150_000)
    with ThrottleProxy(f"127.0.0.1:{upstream.port}", rate=200_000) as proxy:
        results: list[float] = []

        def one() -> None:
            _, sending, _ = _exchange(proxy.address, payload)
            results.append(sending)

        threads = [threading.Thread(target=one) for _ in range(2)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        elapsed = time.monotonic() - start
        assert proxy.connections == 2
        assert proxy.open == 0
    # 2 x 150 kB through one 200 kB/s link: 1.5 s for both together.
    assert len(results) == 2
    assert elapsed > 1.3
    assert sorted(upstream.received) == [payload, payload]


def test_a_client_that_hangs_up_ends_the_upstream_connection(upstream: Upstream) -> None:
    payload = os.urandom(100_000)
    with ThrottleProxy(f"127.0.0.1:{upstream.port}", rate=200_000) as proxy:
        host, _, port = proxy.address.rpartition(":")
        conn = socket.create_connection((host, int(port)))
        conn.sendall(payload)
        assert proxy.wait_uploaded(len(payload), 5)
        assert proxy.open == 1
        port = conn.getsockname()[1]
        assert proxy.client_states() == {port: "ESTABLISHED"}
        assert [(link.client_port, link.uploaded, link.open) for link in proxy.links] == [
            (port, len(payload), True)
        ]
        conn.close()  # no half-close: gone, as an engine that cancels a push
        deadline = time.monotonic() + 5
        while proxy.open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.open == 0
        assert proxy.client_states().get(port) != "ESTABLISHED"
        assert proxy.links[0].open is False
    assert upstream.received == [payload]  # the upstream saw its connection end


def test_a_client_that_closes_with_data_queued_is_seen_closed_at_once(
    upstream: Upstream,
) -> None:
    """What the proxy still forwards was sent before the close: the client's own socket
    shows it has hung up long before the last of it comes through."""
    with ThrottleProxy(f"127.0.0.1:{upstream.port}", rate=100_000) as proxy:
        host, _, port = proxy.address.rpartition(":")
        conn = socket.create_connection((host, int(port)))
        conn.setblocking(False)
        queued = 0
        chunk = os.urandom(65536)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # fill every buffer on the way
            try:
                queued += conn.send(chunk)
            except BlockingIOError:
                if queued > 0:
                    break
                time.sleep(0.01)
        client_port = conn.getsockname()[1]
        conn.close()
        time.sleep(0.3)
        state = proxy.client_states().get(client_port)
        assert state in ("FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", None)
        assert proxy.open == 1  # still draining what was queued
        assert proxy.uploaded < queued
