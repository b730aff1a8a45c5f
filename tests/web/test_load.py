"""Slow clients under load: one server process, clients that never read, clients that do.

The server (``dockprogress serve`` in a subprocess) gets about 1000 events a second (50
tasks, 2 KB of text each) for several seconds through ``/api/publish``. Three WebSocket
clients complete the handshake and then never read a byte (with a tiny receive buffer);
four others read everything. A per-client queue without coalescing would grow by megabytes
a second for each silent client; the hub's mailboxes hold one message per task.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from dockprogress.events import Kind, Operation
from dockprogress.task import Task
from tests.web.conftest import free_port

TASKS = 50
SECONDS = 8.0
BATCHES_PER_SECOND = 20
READERS = 4
SILENT = 3


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def serve() -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DOCKPROGRESS_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "dockprogress", "serve", "--port", str(port)],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/api/tasks")
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
    try:
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _silent_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


@pytest.mark.slow
def test_silent_clients_cost_bounded_memory_and_readers_stay_on_time(
    serve: tuple[str, int],
) -> None:
    url, pid = serve
    port = int(url.rsplit(":", 1)[1])
    silent = [_silent_client(port) for _ in range(SILENT)]
    lags: list[list[float]] = [[] for _ in range(READERS)]
    finals: list[dict[str, str]] = [{} for _ in range(READERS)]
    stop = threading.Event()

    async def reader(index: int) -> None:
        async with websockets.connect(url.replace("http", "ws") + "/ws", max_size=None) as ws:
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                message = json.loads(raw)
                for entry in message.get("tasks", ()):
                    event = entry["event"]
                    if message["type"] == "tasks":
                        lags[index].append(now - event["ts"])
                    finals[index][event["task"]] = event["state"]

    def readers() -> None:
        async def all_readers() -> None:
            await asyncio.gather(*(reader(i) for i in range(READERS)))

        asyncio.run(all_readers())

    reading = threading.Thread(target=readers)
    reading.start()
    tasks = [Task(f"exec:load-{i}", Operation.EXEC, Kind.COUNT, total=10**6) for i in range(TASKS)]
    rss: list[tuple[float, int]] = []
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        step = 0
        while time.monotonic() - started < SECONDS:
            step += 1
            text = secrets.token_hex(1000)  # 2 KB that compresses to nothing useful
            batch = []
            for task in tasks:
                event = task.update(current=step, description=text)
                assert event is not None
                batch.append(event.to_json())
            response = client.post(
                url + "/api/publish",
                content="\n".join(batch),
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert response.status_code == 200
            rss.append((time.monotonic() - started, _rss_kib(pid)))
            time.sleep(1 / BATCHES_PER_SECOND)
        ends = []
        for task in tasks:
            end = task.finish()
            assert end is not None
            ends.append(end.to_json())
        client.post(
            url + "/api/publish",
            content="\n".join(ends),
            headers={"Content-Type": "application/x-ndjson"},
        )
    published_mb = step * TASKS * 2.2 / 1000
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(
        len(f) == TASKS and set(f.values()) == {"done"} for f in finals
    ):
        time.sleep(0.1)
    stop.set()
    reading.join(10)
    for sock in silent:
        sock.close()

    # Memory: flat after warm-up, although each silent client missed ~all of it.
    warm = [kib for t, kib in rss if t >= 2.0]
    growth_mb = (max(warm) - warm[0]) / 1024
    print(f"published {published_mb:.0f} MB; server RSS {warm[0] / 1024:.0f} MB, +{growth_mb:.1f}")
    assert published_mb > 10  # each silent client would hold this much in a plain queue
    assert growth_mb < 8, f"server memory grew by {growth_mb:.1f} MB"

    # The readers: every final state arrived, and updates were on time.
    for index in range(READERS):
        assert finals[index] == {t.task_id: "done" for t in tasks}
        ordered = sorted(lags[index])
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        print(
            f"reader {index}: {len(ordered)} updates, median lag "
            f"{statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
        )
        assert len(ordered) > TASKS * SECONDS * 2  # far more than one update per task
        assert p95 < 1.0
