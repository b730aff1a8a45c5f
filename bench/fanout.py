"""Fan-out: 100 WebSocket clients and 50 tasks updating at 10 Hz through ``dockprogress serve``.

Per run, a fresh ``dockprogress serve`` subprocess (default settings) and:

* 50 tasks, each a real :class:`~dockprogress.task.Task` updated every 100 ms in this
  process and published as JSON lines to ``POST /api/publish`` (one request per 100 ms tick,
  the way ``--dashboard`` publishers reach the server);
* 100 reading clients (``websockets``), in two subprocesses of 50 (``python -m bench.fanout
  client …``) so that decoding on the client side does not queue behind one interpreter.
  Each notes, per task entry it receives, its arrival time minus the event's ``ts``;
* one client that completes the WebSocket handshake on a raw socket with a small receive
  buffer and then never reads.

Measured over a window after a warm-up: the server process's CPU (``/proc/<pid>/stat``, as a
share of one core), the delivery delay of every entry (p50, p99, max), and the server's
resident memory (``/proc/<pid>/status`` VmRSS) sampled every 0.5 s: its growth from the
start to the end of the window says whether the stalled client costs memory over time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Comparison, Family, Figure, Target
from bench.latency import Server
from dockprogress.events import Kind, Operation
from dockprogress.task import Task

__all__ = ["FanoutRun", "fanout_once", "run"]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_EVENT_TS = re.compile(r'"event":\{"ts":([0-9.eE+-]+)')
MB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FanoutRun:
    clients: int
    tasks: int
    seconds: float
    cpu_percent: float
    delay_ms: Counter[int]
    rss_mb: list[tuple[float, float]]  # (seconds into the window, MB)
    entries: int
    published: int
    client_cpu: list[float] = field(default_factory=list)  # % of one core, per client process
    notes: list[str] = field(default_factory=list)

    def delay(self, q: float) -> float:
        """The ``q``-th percentile delay (ms) from the 1 ms histogram."""
        total = sum(self.delay_ms.values())
        if not total:
            return float("nan")
        rank = q / 100.0 * total
        seen = 0
        for value in sorted(self.delay_ms):
            seen += self.delay_ms[value]
            if seen >= rank:
                return float(value)
        return float(max(self.delay_ms))

    @property
    def rss_growth(self) -> float:
        """MB: median of the last 5 s of the window minus median of its first 5 s."""
        if len(self.rss_mb) < 4:
            return float("nan")
        span = self.rss_mb[-1][0]
        first = [mb for t, mb in self.rss_mb if t <= 5.0]
        last = [mb for t, mb in self.rss_mb if t >= span - 5.0]
        return statistics.median(last) - statistics.median(first)


# ------------------------------------------------------------------------ the server side


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    return float("nan")


def _stalled_client(port: int) -> socket.socket:
    """A WebSocket client that shakes hands and then never reads (4 KiB receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        piece = sock.recv(1)  # byte by byte: read nothing past the handshake
        if not piece:
            raise RuntimeError("the server closed the stalled client's handshake")
        answer += piece
    if b" 101 " not in answer.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {answer[:80]!r}")
    return sock


def _publisher(port: int, tasks: int, rate: float, stop: threading.Event, out: list[int]) -> None:
    """Update ``tasks`` tasks ``rate`` times a second; POST each tick's events as JSON lines."""
    board = [
        Task(f"bench:fanout:{i:02d}", Operation.RUN, Kind.COUNT, description=f"task {i}", total=1e6)
        for i in range(tasks)
    ]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval = 1.0 / rate
    start = time.monotonic()
    tick = 0
    published = 0
    while not stop.is_set():
        lines = []
        for task in board:
            event = task.advance(1.0, description=f"step {tick}")
            if event is not None:
                lines.append(event.to_json())
        connection.request(
            "POST",
            "/api/publish",
            body="\n".join(lines).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        connection.getresponse().read()
        published += len(lines)
        tick += 1
        stop.wait(max(0.0, start + tick * interval - time.monotonic()))
    connection.close()
    out.append(published)


# ------------------------------------------------------------------------ the client side


async def _clients(url: str, count: int, begin: float, end: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    histogram: Counter[int] = Counter()
    entries = 0
    connections = [
        await connect(url, max_size=None, proxy=None, open_timeout=20) for _ in range(count)
    ]
    print("ready", flush=True)

    async def read(ws: Any) -> None:
        nonlocal entries
        find_ts = _EVENT_TS.findall
        while True:
            left = end - time.time()
            if left <= 0:
                return
            try:
                raw = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                return
            now = time.time()
            if now < begin:
                continue
            # Every entry is {"first_ts":…,"cancellable":…,"event":{"ts":…}}: reading the
            # event times with one regex keeps the client's own cost far below a full decode.
            for stamp in find_ts(raw):
                histogram[int(1000 * (now - float(stamp)))] += 1
                entries += 1

    async def meter() -> None:
        # CPU of this process over the measured window only (the readers keep reading
        # before it, so nothing queues up).
        await asyncio.sleep(max(0.0, begin - time.time()))
        window[0], window[1] = time.process_time(), time.time()

    window = [0.0, 0.0]
    await asyncio.gather(meter(), *(read(ws) for ws in connections))
    cpu = 100.0 * (time.process_time() - window[0]) / max(time.time() - window[1], 1e-9)
    for ws in connections:
        await ws.close()
    return {
        "histogram": {str(k): v for k, v in histogram.items()},
        "entries": entries,
        "cpu_percent": cpu,
    }


def _client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout client")
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("begin", type=float)
    parser.add_argument("end", type=float)
    args = parser.parse_args(argv)
    result = asyncio.run(_clients(args.url, args.count, args.begin, args.end))
    print(json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------ one run


def fanout_once(
    *,
    clients: int = 100,
    tasks: int = 50,
    rate: float = 10.0,
    seconds: float = 25.0,
    warmup: float = 5.0,
    processes: int = 2,
) -> FanoutRun:
    """One measured run against a fresh server (see the module docstring)."""
    notes: list[str] = []
    with Server() as server:
        pid = server.pid
        stalled = _stalled_client(server.port)
        per_process = [clients // processes + (i < clients % processes) for i in range(processes)]
        connect_budget = 3.0 + 0.05 * clients
        begin = time.time() + connect_budget + warmup
        end = begin + seconds
        readers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.fanout",
                    "client",
                    server.ws_url,
                    str(n),
                    repr(begin),
                    repr(end),
                ],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for n in per_process
            if n
        ]
        for reader in readers:
            assert reader.stdout is not None
            if reader.stdout.readline().strip() != "ready":
                notes.append("a client process did not connect")
        stop = threading.Event()
        published: list[int] = []
        publisher = threading.Thread(
            target=_publisher, args=(server.port, tasks, rate, stop, published), daemon=True
        )
        publisher.start()
        rss: list[tuple[float, float]] = []
        time.sleep(max(0.0, begin - time.time()))
        cpu_begin, wall_begin = _cpu_seconds(pid), time.time()
        while time.time() < end:
            rss.append((time.time() - begin, _rss_mb(pid)))
            time.sleep(0.5)
        cpu_end, wall_end = _cpu_seconds(pid), time.time()
        stop.set()
        publisher.join(15)
        histogram: Counter[int] = Counter()
        entries = 0
        client_cpu: list[float] = []
        for reader in readers:
            out, _ = reader.communicate(timeout=60)
            try:
                result = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                notes.append("a client process gave no result")
                continue
            histogram.update({int(k): v for k, v in result["histogram"].items()})
            entries += int(result["entries"])
            client_cpu.append(float(result["cpu_percent"]))
        stalled.close()
    return FanoutRun(
        clients,
        tasks,
        seconds,
        100.0 * (cpu_end - cpu_begin) / (wall_end - wall_begin),
        histogram,
        rss,
        entries,
        published[0] if published else 0,
        client_cpu,
        notes,
    )


def run(*, runs: int = 3, seconds: float = 25.0, clients: int = 100, tasks: int = 50) -> Family:
    started = time.perf_counter()
    family = Family("Dashboard fan-out")
    results = [fanout_once(clients=clients, tasks=tasks, seconds=seconds) for _ in range(runs)]
    expected = clients * tasks * 10.0 * seconds
    cpu = Figure("server CPU, % of one core", "%", [r.cpu_percent for r in results], False)
    p99 = Figure("delivery delay p99", "ms", [r.delay(99) for r in results], False)
    family.comparisons.append(
        Comparison(
            f"Fan-out: {clients} clients (+1 that never reads), {tasks} tasks at 10 Hz",
            p99,
            [
                Figure("delivery delay p50", "ms", [r.delay(50) for r in results], False),
                Figure("delivery delay max", "ms", [r.delay(100) for r in results], False),
                cpu,
                Figure(
                    "client process CPU (the busiest one), % of one core",
                    "%",
                    [max(r.client_cpu) for r in results if r.client_cpu],
                    False,
                ),
                Figure(
                    "entries delivered / entries a perfect 10 Hz fan-out would send",
                    "%",
                    [100.0 * r.entries / expected for r in results],
                ),
            ],
            input=f"{runs} runs of {seconds:.0f} s after a warm-up; a fresh server each run",
            ratios=False,
        )
    )
    growth = Figure(
        "server RSS growth over the window (last 5 s - first 5 s)",
        "MB",
        [r.rss_growth for r in results],
        False,
    )
    start_rss = Figure(
        "server RSS at the window's start",
        "MB",
        [r.rss_mb[0][1] for r in results if r.rss_mb],
        False,
    )
    end_rss = Figure(
        "server RSS at the window's end",
        "MB",
        [r.rss_mb[-1][1] for r in results if r.rss_mb],
        False,
    )
    family.comparisons.append(
        Comparison(
            "Fan-out: server memory with one client that never reads",
            growth,
            [start_rss, end_rss],
            input="VmRSS sampled every 0.5 s",
            ratios=False,
        )
    )
    family.targets.append(
        Target("fan-out delivery delay p99 under 200 ms", p99.median, 200.0, "ms", False)
    )
    family.targets.append(
        Target(
            "fan-out memory flat with a stalled client (growth <= 5 MB over the window)",
            max(growth.runs) if growth.runs else float("nan"),
            5.0,
            "MB (worst run)",
            False,
        )
    )
    samples = results[-1].rss_mb if results else []
    if samples:
        trace = ", ".join(f"{t:.0f}s {mb:.1f}" for t, mb in samples[:: max(1, len(samples) // 10)])
        family.notes.append(f"Server RSS trace, last run (s into the window, MB): {trace}")
    for r in results:
        family.notes.extend(r.notes)
    family.seconds = time.perf_counter() - started
    return family


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        raise SystemExit(_client_main(sys.argv[2:]))
    print("usage: python -m bench.fanout client URL COUNT BEGIN END", file=sys.stderr)
    raise SystemExit(2)
