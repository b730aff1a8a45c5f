"""Pull, logs and exec over every remote way (tcp, ssh, a context, TLS), on the real engines.

The engine behind each way is checked through its own local socket (``way_client``), never
through the way under test. Exec's cancel is checked with ``ps`` in the container: on a
remote engine the engine's pids are not ours, so the second-exec kill path must do it.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from dockprogress.core.milestones import MilestoneSet
from dockprogress.docker.endpoint import resolve
from dockprogress.docker.exec import iter_exec
from dockprogress.docker.logs import iter_follow
from dockprogress.docker.pull import iter_pull
from dockprogress.events import State, TaskEvent
from tests.conftest import Testbed as Bed
from tests.conftest import _remove_image
from tests.contract import assert_event_lines
from tests.remote.conftest import Way

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("on_way")]


def _check(events: list[TaskEvent]) -> list[TaskEvent]:
    assert_event_lines([event.to_json() for event in events])
    return events


@pytest.fixture(scope="module")
def box(way: Way, way_client: docker.DockerClient, testbed: Bed) -> Iterator[Any]:
    """A python container on the engine behind ``way`` (ps is there)."""
    name = f"dp-remote-{way.name}-{uuid.uuid4().hex[:8]}"
    made = way_client.containers.run(testbed.python, ["sleep", "600"], detach=True, name=name)
    try:
        yield made
    finally:
        made.remove(force=True)


def test_the_way_resolves_to_a_remote_endpoint(way: Way) -> None:
    endpoint = resolve(**way.kwargs)
    assert not endpoint.local
    assert endpoint.transport == {"context": "ssh"}.get(way.name, way.name)
    if way.name == "context":
        assert endpoint.source == "context 'dp-ssh' (DOCKER_CONTEXT)"


def test_pull(way: Way, way_client: docker.DockerClient, testbed: Bed) -> None:
    image = testbed.shared_a
    _remove_image(way_client, image, (testbed.registry, testbed.slow_registry))
    events = _check(list(iter_pull(image, **way.kwargs)))
    last = events[-1]
    assert last.state is State.DONE
    assert last.percent == 100.0
    assert last.total is not None
    assert last.current == last.total
    first_running = next(e for e in events if e.state is State.RUNNING)
    assert first_running.detail["exact_total"] is True  # the manifest was read from here
    way_client.images.get(image)  # it is on the engine behind the way


def test_logs(way: Way, way_client: docker.DockerClient, testbed: Bed) -> None:
    name = f"dp-remote-logs-{uuid.uuid4().hex[:8]}"
    script = "echo step one; sleep 0.4; echo step two; sleep 0.4; echo all done; sleep 60"
    way_client.containers.run(testbed.base, ["sh", "-c", script], detach=True, name=name)
    milestones = MilestoneSet(
        [("^step one$", 10, "One"), ("^step two$", 60, "Two"), ("^all done$", 100, "Done")]
    )
    try:
        follow = iter_follow(name, milestones=milestones, calibrate=False, **way.kwargs)
        events = _check(list(follow))
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            way_client.api.remove_container(name, force=True)
    assert events[-1].state is State.DONE
    assert [e.description for e in events if e.description in ("One", "Two", "Done")][-3:] == [
        "One",
        "Two",
        "Done",
    ]


def test_exec_console_size(way: Way, box: Any) -> None:
    # The modern engine takes ConsoleSize at create. Engine 20.10 (API 1.41) gets it by
    # exec_resize just after the start, on a second connection: over ssh that is one more
    # `docker system dial-stdio` on the remote side, so the command waits (up to 10 s) until
    # the TTY has a size, then prints it; COLUMNS/LINES are there at once.
    out = io.BytesIO()
    wait = 'i=0; while [ "$(stty size)" = "0 0" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done'
    command = ["sh", "-c", f"echo $COLUMNS $LINES; {wait}; stty size"]
    events = _check(
        list(iter_exec(box.name, command, passthrough=out, size=(101, 33), **way.kwargs))
    )
    assert events[-1].state is State.DONE
    assert out.getvalue().split() == [b"101", b"33", b"33", b"101"]


def _sleepers(box: Any, marker: str) -> list[str]:
    listing = box.exec_run(["ps", "-eo", "args"]).output.decode()
    return [line for line in listing.splitlines() if marker in line]


def test_exec_cancel_kills_the_process_in_the_container(way: Way, box: Any) -> None:
    marker = f"sleep {900 + uuid.uuid4().int % 90}"
    cancel = threading.Event()
    events: list[TaskEvent] = []
    seen_running = False
    timer: threading.Timer | None = None
    command = ["sh", "-c", f"echo started; {marker}"]
    for event in iter_exec(box.name, command, cancel=cancel, **way.kwargs):
        events.append(event)
        if event.state is State.RUNNING and not seen_running:
            seen_running = True
            assert _wait_for(lambda: bool(_sleepers(box, marker)), 10)  # it really runs
            timer = threading.Timer(0.2, cancel.set)
            timer.start()
    if timer is not None:
        timer.join()
    _check(events)
    assert events[-1].state is State.CANCELLED
    assert _wait_for(lambda: not _sleepers(box, marker), 10), _sleepers(box, marker)


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())
