"""Fleet fixtures: the bed's real redis-server, `serve --bus` replicas, a WebSocket reader.

The Redis is the test bed's own (scripts/testbed_redis.py, started here if the bed was
brought up before it existed). Each test gets database 3 flushed, so tests never see each
other's tasks. Replicas are real ``dockprogress serve --bus`` processes, stopped by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.conftest import chromium, free_port, probe  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import testbed_redis  # noqa: E402

DB = 3
STATE_DIR = Path(os.environ.get("TESTBED_DIR", REPO / ".testbed")).resolve()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dockprogress", *args]


@pytest.fixture(scope="session")
def redis_bed() -> Path:
    """The bed's redis-server running; its state folder."""
    try:
        testbed_redis.ensure_redis(STATE_DIR)
    except SystemExit as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"redis-server unavailable: {exc}", pytrace=False)
        pytest.skip(f"redis-server unavailable: {exc}")
    return STATE_DIR


@pytest.fixture
def bus_url(redis_bed: Path) -> str:
    """A flushed database of the bed's Redis, as a bus URL."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=testbed_redis.PORT, db=DB)
    client.flushdb()
    client.close()
    return f"redis://127.0.0.1:{testbed_redis.PORT}/{DB}"


@pytest.fixture
def sync_redis(bus_url: str) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(bus_url)
    yield client
    client.close()


class Replica:
    """One ``dockprogress serve --bus`` process."""

    def __init__(self, bus: str, log: Path, node_timeout: float = 30.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                cli(
                    "serve",
                    "--port",
                    str(self.port),
                    "--bus",
                    bus,
                    "--node",
                    f"replica-{self.port}",
                    "--node-timeout",
                    str(node_timeout),
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/api/tasks", timeout=1).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"replica did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def entries(self) -> list[dict[str, Any]]:
        response = httpx.get(self.url + "/api/tasks", timeout=5)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()
        return entries

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def replicas(bus_url: str, tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    started: list[Replica] = []

    def start(node_timeout: float = 30.0) -> Replica:
        replica = Replica(bus_url, tmp_path / f"replica-{len(started)}.log", node_timeout)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def ws_tasks(
    url: str,
    until: Callable[[dict[tuple[str, str], dict[str, Any]]], bool],
    timeout: float = 30.0,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Read a replica's ``/ws`` (snapshot, then updates) until ``until(tasks)`` holds.

    ``tasks`` maps ``(node, task)`` to the latest ENTRY; raises ``AssertionError`` with what
    was seen when ``timeout`` passes first.
    """
    from websockets.sync.client import connect

    tasks: dict[tuple[str, str], dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    with connect(url.replace("http://", "ws://") + "/ws", open_timeout=10) as ws:
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                message = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
                for entry in message.get("tasks", []):
                    event = entry["event"]
                    tasks[(event["node"], event["task"])] = entry
            if until(tasks):
                return tasks
    raise AssertionError(f"condition not met within {timeout} s; saw {sorted(tasks)}")
