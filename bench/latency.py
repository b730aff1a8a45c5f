"""Latency: from a line written inside a container to its event at a dashboard client.

A ``dockprogress serve`` subprocess (default settings, a free 127.0.0.1 port) and one
WebSocket client of it (the ``websockets`` library). Two paths, each started through the
server's own HTTP API, so the server runs the tracker as it would for the page:

* logs: a ``dp/python:1`` container prints ``tick <n> <unix time>`` every 100 ms;
  ``POST /api/logs`` follows it with a dynamic milestone on ``^tick``. Each event carries the
  matched line in ``detail.line``, hence the time the line was written;
* exec: ``POST /api/exec`` runs a tqdm loop in a ``dp/python:1`` container under a TTY,
  one update every 100 ms whose description is the time of the update. The event's
  ``description`` is the bar's, hence the time the update was written.

Latency = the client's clock when the message arrived minus the time written in the line
(same machine, same clock: containers share the host's kernel clock). A sample is counted
once (its first arrival); lines the hub coalesced away (a newer state replaced them) have no
arrival and are counted as coalesced, not as latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Comparison, Family, Figure, Target, percentile
from dockprogress.local._pump import IDLE_FLUSH

__all__ = ["LatencyRun", "Server", "measure_exec", "measure_logs", "run"]

PYTHON_IMAGE = "127.0.0.1:5000/dp/python:1"
INTERVAL = 0.1

# Printed by the logs container: a start pause, then one line per INTERVAL, then the end.
_LOG_SCRIPT = """
import sys, time
n, interval = int(sys.argv[1]), float(sys.argv[2])
time.sleep(1.5)
start = time.time()
for i in range(n):
    time.sleep(max(0.0, start + i * interval - time.time()))
    print(f"tick {i} {time.time():.6f}", flush=True)
print("bench done", flush=True)
"""

# Run by the exec: a tqdm bar redrawn on each update, its description the time of the update.
_TQDM_SCRIPT = """
import sys, time
from tqdm import tqdm
n, interval = int(sys.argv[1]), float(sys.argv[2])
time.sleep(1.0)
bar = tqdm(total=n, mininterval=0, miniters=1, desc="start")
start = time.time()
for i in range(n):
    time.sleep(max(0.0, start + i * interval - time.time()))
    bar.set_description_str(f"T{time.time():.6f}", refresh=False)
    bar.update(1)
bar.close()
"""

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _dockprogress() -> list[str]:
    script = Path(sys.executable).with_name("dockprogress")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dockprogress"]


class Server:
    """``dockprogress serve`` as a subprocess on a free loopback port; a context manager."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            [*_dockprogress(), "serve", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with _OPENER.open(self.url + "/api/tasks", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dockprogress serve did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def post(self, path: str, body: Any, content_type: str = "application/json") -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method="POST", headers={"Content-Type": content_type}
        )
        with _OPENER.open(request, timeout=30) as answer:
            return json.loads(answer.read())


@dataclass
class LatencyRun:
    path: str
    written: int  # samples the container wrote after the warm-up
    latencies: list[float] = field(default_factory=list)  # seconds, one per sample seen
    notes: list[str] = field(default_factory=list)

    @property
    def coalesced(self) -> int:
        return self.written - len(self.latencies)


def _docker(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=timeout
    )
    return done.stdout.strip()


def _remove_container(name: str) -> None:
    subprocess.run(
        ["docker", "rm", "-f", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )


async def _collect(
    server: Server,
    start: Callable[[], str],
    stamp: Callable[[dict[str, Any]], tuple[str, float] | None],
    timeout: float,
) -> tuple[str, dict[str, float], float]:
    """Subscribe, start the operation, and note the first arrival of each stamped sample.

    Returns the task id, ``{sample key: arrival - written}`` and the time the task started.
    """
    from websockets.asyncio.client import connect

    arrivals: dict[str, dict[str, float]] = {}
    ended: set[str] = set()
    async with connect(server.ws_url, max_size=None, proxy=None, open_timeout=10) as ws:
        await ws.recv()  # the snapshot
        started_at = time.time()
        task_id = await asyncio.to_thread(start)
        deadline = time.monotonic() + timeout
        while task_id not in ended and time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            now = time.time()
            message = json.loads(raw)
            for entry in message.get("tasks", ()):
                event = entry["event"]
                found = stamp(event)
                if found is not None:
                    key, written = found
                    arrivals.setdefault(event["task"], {}).setdefault(key, now - written)
                if event["state"] in ("done", "error", "cancelled"):
                    ended.add(event["task"])
    return task_id, arrivals.get(task_id, {}), started_at


def _log_stamp(event: dict[str, Any]) -> tuple[str, float] | None:
    line = (event.get("detail") or {}).get("line") or ""
    parts = line.split()
    if len(parts) == 3 and parts[0] == "tick":
        return parts[1], float(parts[2])
    return None


def _exec_stamp(event: dict[str, Any]) -> tuple[str, float] | None:
    description = event.get("description") or ""
    if description.startswith("T"):
        with contextlib.suppress(ValueError):
            return description, float(description[1:])
    return None


def measure_logs(server: Server, samples: int, *, warmup: float = 0.5) -> LatencyRun:
    """One container printing ``samples`` timestamped lines, followed through the server."""
    name = f"dp-bench-lat-logs-{os.getpid()}-{time.monotonic_ns()}"
    _remove_container(name)
    _docker(
        "run", "-d", "--name", name, PYTHON_IMAGE,
        "python3", "-u", "-c", _LOG_SCRIPT, str(samples), str(INTERVAL),
    )  # fmt: skip
    milestones = [
        {"pattern": r"^tick \d+ ", "progress": "dynamic", "description": "tick"},
        {"pattern": r"^bench done", "progress": 100, "description": "done"},
    ]
    try:

        def start() -> str:
            answer = server.post("/api/logs", {"container": name, "milestones": milestones})
            return str(answer["task"])

        _task, seen, started_at = asyncio.run(
            _collect(server, start, _log_stamp, timeout=samples * INTERVAL + 30)
        )
    finally:
        _remove_container(name)
    # The first lines may predate the follow: only lines written after it began count.
    kept = [v for k, v in seen.items() if int(k) >= round(warmup / INTERVAL)]
    result = LatencyRun("logs", samples - round(warmup / INTERVAL), kept)
    if started_at and not seen:
        result.notes.append("logs: no stamped event arrived")
    return result


def measure_exec(server: Server, container: str, samples: int, *, skip: int = 5) -> LatencyRun:
    """A tqdm loop of ``samples`` updates run through ``POST /api/exec`` in ``container``."""

    def start() -> str:
        answer = server.post(
            "/api/exec",
            {
                "container": container,
                "cmd": ["python3", "-c", _TQDM_SCRIPT, str(samples), str(INTERVAL)],
            },
        )
        return str(answer["task"])

    _task, seen, _started = asyncio.run(
        _collect(server, start, _exec_stamp, timeout=samples * INTERVAL + 30)
    )
    ordered = [seen[k] for k in sorted(seen, key=lambda k: float(k[1:]))]
    result = LatencyRun("exec", samples - skip, ordered[skip:])
    if not seen:
        result.notes.append("exec: no stamped event arrived")
    return result


def measure_exec_direct(container: str, samples: int, idle: float, *, skip: int = 5) -> LatencyRun:
    """The exec adapter alone, in this process (no server): update written -> event yielded.

    Separates the adapter's own delay (its idle flush, ``idle`` seconds) from the hub's."""
    from dockprogress.docker.exec import iter_exec

    seen: dict[str, float] = {}
    argv = ["python3", "-c", _TQDM_SCRIPT, str(samples), str(INTERVAL)]
    for event in iter_exec(container, argv, idle=idle):
        found = _exec_stamp(event.to_dict())
        if found is not None:
            seen.setdefault(found[0], time.time() - found[1])
    ordered = [seen[k] for k in sorted(seen, key=lambda k: float(k[1:]))]
    return LatencyRun(f"exec adapter, idle={idle:g}", samples - skip, ordered[skip:])


def run(*, runs: int = 3, samples: int = 120) -> Family:
    started = time.perf_counter()
    family = Family("Latency to a dashboard client")
    results: dict[str, list[LatencyRun]] = {"logs": [], "exec": []}
    exec_container = f"dp-bench-lat-exec-{os.getpid()}"
    _remove_container(exec_container)
    _docker("run", "-d", "--name", exec_container, PYTHON_IMAGE, "sleep", "3600")
    try:
        with Server() as server:
            for _ in range(runs):
                results["logs"].append(measure_logs(server, samples))
                results["exec"].append(measure_exec(server, exec_container, samples))
        # The exec path without the server: the adapter alone, at its default idle timer and
        # at a short one (the read loop flushes as soon as a read leaves the socket empty, so
        # the two should agree), one run each.
        direct = [measure_exec_direct(exec_container, samples, idle) for idle in (IDLE_FLUSH, 0.01)]
    finally:
        _remove_container(exec_container)
    for path, label in (
        ("logs", "container log line -> WebSocket event (POST /api/logs)"),
        ("exec", "tqdm update in an exec -> WebSocket event (POST /api/exec)"),
    ):
        runs_ = results[path]
        ms = [[1000 * v for v in r.latencies] for r in runs_]
        p50 = Figure(f"{path}: p50", "ms", [percentile(v, 50) for v in ms if v], False)
        p99 = Figure(f"{path}: p99", "ms", [percentile(v, 99) for v in ms if v], False)
        worst = Figure(f"{path}: max", "ms", [max(v) for v in ms if v], False)
        share = Figure(
            f"{path}: samples delivered (rest coalesced into a newer state)",
            "%",
            [100.0 * len(r.latencies) / max(r.written, 1) for r in runs_],
        )
        family.comparisons.append(
            Comparison(
                f"Latency, {label}",
                p99,
                [p50, worst, share],
                input=f"{runs} runs of {samples} updates, one every {INTERVAL * 1000:.0f} ms; "
                "dockprogress serve at default settings",
                ratios=False,
            )
        )
        family.targets.append(
            Target(f"latency p99 under 100 ms ({path})", p99.median, 100.0, "ms", False)
        )
        for r in runs_:
            family.notes.extend(r.notes)
    family.comparisons.append(
        Comparison(
            "Exec adapter alone (no server): tqdm update -> event yielded, p50 / p99",
            Figure(
                f"iter_exec, default idle flush {IDLE_FLUSH * 1000:.0f} ms: p99",
                "ms",
                [1000 * percentile(direct[0].latencies, 99)],
                False,
            ),
            [
                Figure(
                    f"iter_exec, idle flush {IDLE_FLUSH * 1000:.0f} ms: p50",
                    "ms",
                    [1000 * percentile(direct[0].latencies, 50)],
                    False,
                ),
                Figure(
                    "iter_exec, idle flush 10 ms: p99",
                    "ms",
                    [1000 * percentile(direct[1].latencies, 99)],
                    False,
                ),
                Figure(
                    "iter_exec, idle flush 10 ms: p50",
                    "ms",
                    [1000 * percentile(direct[1].latencies, 50)],
                    False,
                ),
            ],
            input=f"one run each of {samples} updates; same container, same script",
            ratios=False,
        )
    )
    family.seconds = time.perf_counter() - started
    return family
