"""No socket of a failed unix connect is left behind, by a request or by the log follower.

docker-py's unix transport creates a socket per connect and does not close it when the
connect fails; ``dockprogress.docker.unixsock`` swaps in one that does. The descriptors of
this process are counted (``/proc/self/fd``) with the garbage collector off, so that a
leaked socket stays open and counted instead of being closed by a collection.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests

from dockprogress.core.milestones import MilestoneSet
from dockprogress.docker import unixsock
from dockprogress.docker.client import connect
from dockprogress.docker.logs import iter_follow
from dockprogress.docker.unixsock import close_failed_connects
from dockprogress.events import State, TaskEvent
from tests.faults.harness import observe
from tests.logs.socket_proxy import SocketProxy

pytestmark = pytest.mark.timeout(120)

ATTEMPTS = 30


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _fail_to_inspect(client: docker.DockerClient, attempts: int) -> None:
    for _ in range(attempts):
        with pytest.raises((requests.ConnectionError, docker.errors.DockerException)):
            client.api.inspect_container("anything")


# Run apart (its own process, warnings off there): the leaked sockets cannot be closed here.
_CONTROL = """
import gc, os, sys, warnings
warnings.simplefilter("ignore")
import docker
client = docker.DockerClient(base_url="unix://" + sys.argv[1], version="1.41")
gc.disable()
before = len(os.listdir("/proc/self/fd"))
for _ in range(int(sys.argv[2])):
    try:
        client.api.inspect_container("anything")
    except Exception:
        pass
print(len(os.listdir("/proc/self/fd")) - before)
"""


def test_docker_py_alone_leaks_one_socket_per_failed_connect(tmp_path: Path) -> None:
    """The defect itself, so that the next test is known to be able to see it."""
    result = subprocess.run(
        [sys.executable, "-c", _CONTROL, str(tmp_path / "gone.sock"), str(ATTEMPTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(result.stdout) == ATTEMPTS


def test_our_client_closes_the_socket_of_every_failed_connect(tmp_path: Path, no_gc: None) -> None:
    client = close_failed_connects(
        docker.DockerClient(base_url=f"unix://{tmp_path}/gone.sock", version="1.41")
    )
    before = _open_fds()
    _fail_to_inspect(client, ATTEMPTS)
    assert _open_fds() == before
    client.close()


@pytest.mark.engine
def test_the_log_follower_leaks_no_socket_while_the_engine_is_down(
    docker_client: docker.DockerClient,
    testbed: object,
    tmp_path: Path,
    no_gc: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine (a proxy before it) is gone for 30 reconnect attempts, then back."""
    name = f"dp-fd-{os.getpid()}-{int(time.time())}"
    docker_client.containers.run(
        testbed.base,  # type: ignore[attr-defined]
        ["sh", "-c", "echo begin; sleep 30; echo all done; sleep 60"],
        name=name,
        detach=True,
        network_mode="none",
    )
    path = tmp_path / "engine.sock"
    proxy = SocketProxy(path)
    client = docker.DockerClient(base_url=proxy.url, version="1.41")
    milestones = MilestoneSet([("^begin$", 0, "Begin"), ("^all done$", 100, "Done")])
    events: list[TaskEvent] = []
    counts: dict[str, int] = {}

    def follow() -> None:
        events.extend(iter_follow(name, milestones=milestones, client=client, calibrate=False))

    failed: list[float] = []
    real_connect = unixsock._ClosingUnixConnection.connect

    def counted_connect(self: Any) -> None:
        try:
            real_connect(self)
        except OSError:
            failed.append(time.monotonic())
            raise

    monkeypatch.setattr(unixsock._ClosingUnixConnection, "connect", counted_connect)
    thread = threading.Thread(target=follow, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 20
        while not events and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the follow is reading: its connections are open
        counts["before"] = _open_fds()
        proxy.close()  # the engine is gone: every connect is refused
        path.unlink()
        # The follower asks (inspect) every second and its event watcher reconnects every
        # second: wait for 30 failed connects (counted on the connection class, not changed).
        deadline = time.monotonic() + 60
        while len(failed) < ATTEMPTS and time.monotonic() < deadline:
            time.sleep(0.2)
        counts["down"] = _open_fds()
        counts["failed_connects"] = len(failed)
        proxy = SocketProxy(path)  # back
        thread.join(60)
    finally:
        proxy.close()
        client.close()
        docker_client.api.remove_container(name, force=True)
    assert not thread.is_alive()
    assert events[-1].state is State.DONE
    # The two streams (logs, events) of the follow were cut when the engine went: nothing
    # may have grown while it was down.
    assert counts["failed_connects"] >= ATTEMPTS
    assert counts["down"] <= counts["before"], counts
    observe("open descriptors, log follower with the engine down ~15 s", **counts)


def test_connect_returns_a_client_that_closes_failed_connects(testbed: object) -> None:
    client = connect()
    try:
        assert type(client.api._custom_adapter).__name__ == "_ClosingUnixAdapter"
        assert client.ping()
    finally:
        client.close()
