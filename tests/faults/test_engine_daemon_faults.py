"""A dockerd restarted under a log follow, stopped under an exec; a container killed under one.

The dockerd cases run on a second dockerd of our own (:class:`~tests.faults.harness.OwnDockerd`,
``--live-restore``, its own data root and socket): restarting the shared engine would break
every other session. ``dp/base:1`` is copied into it with ``docker save | docker load``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from dockprogress.core.milestones import MilestoneSet
from dockprogress.docker.exec import iter_exec
from dockprogress.docker.logs import iter_follow
from dockprogress.errors import DockProgressError, ExecError
from dockprogress.events import State, TaskEvent
from tests.conftest import Testbed as Bed
from tests.contract import assert_event_lines
from tests.faults.harness import OwnDockerd, observe

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(240)]

STEPS = 120
# A run of numbered lines, 0.1 s apart, long enough to span a dockerd restart.
SCRIPT = (
    f'echo start; i=0; while [ $i -lt {STEPS} ]; do i=$((i+1)); echo "step $i"; sleep 0.1; done;'
    " echo finished; sleep 60"
)
LOOP = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"


@pytest.fixture(scope="module")
def own_dockerd(testbed: Bed, docker_client: docker.DockerClient) -> Iterator[OwnDockerd]:
    own = OwnDockerd()
    try:
        own.start()
        own.load_from(docker_client, testbed.base)
        yield own
    finally:
        own.close()


def _collect(
    events: list[TaskEvent], failure: list[BaseException], produce: Iterator[TaskEvent]
) -> threading.Thread:
    def run() -> None:
        try:
            events.extend(produce)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# docker-py's unix transport leaks the socket of a connect that fails; the clients here go
# through dockprogress.docker.unixsock, which closes it (tests/faults/test_unix_sockets.py),
# so no ResourceWarning is filtered.


def test_dockerd_restarted_during_a_log_follow_loses_and_doubles_no_milestone_line(
    own_dockerd: OwnDockerd, testbed: Bed
) -> None:
    client = own_dockerd.client()
    name = f"dpf-logs-{uuid.uuid4().hex[:8]}"
    client.containers.run(
        testbed.base, ["sh", "-c", SCRIPT], name=name, detach=True, network_mode="none"
    )
    milestones = MilestoneSet(
        [
            ("^start$", 0, "Starting"),
            {
                "pattern": r"^step (?P<value>\d+)$",
                "progress": "dynamic",
                "description": "Stepping",
                "expected": STEPS,
            },
            ("^finished$", 100, "Finished"),
        ]
    )
    seen: list[str] = []
    events: list[TaskEvent] = []
    failure: list[BaseException] = []
    follow = iter_follow(
        name,
        milestones=milestones,
        progress_handler=lambda _p, _d, line: seen.append(line),
        client=client,
        calibrate=False,
        reconnect_timeout=60,
    )
    thread = _collect(events, failure, follow)
    _wait_for(lambda: len(seen) >= 15, 30, "the first milestone lines")
    restart_started = time.monotonic()
    at_restart = len(seen)
    own_dockerd.restart()
    down_for = time.monotonic() - restart_started
    thread.join(120)
    assert not thread.is_alive(), "the follow did not end after the restart"
    assert not failure, failure
    assert seen == ["start", *(f"step {i}" for i in range(1, STEPS + 1)), "finished"]
    assert_event_lines([e.to_json() for e in events])
    assert events[-1].state is State.DONE
    observe(
        "dockerd restarted during log follow",
        lines=len(seen),
        lines_before_restart=at_restart,
        dockerd_down_seconds=round(down_for, 1),
        events=len(events),
    )
    client.close()


def test_dockerd_stopped_during_an_exec_is_a_clear_error(
    own_dockerd: OwnDockerd, testbed: Bed
) -> None:
    client = own_dockerd.client()
    name = f"dpf-exec-{uuid.uuid4().hex[:8]}"
    client.containers.run(
        testbed.base, ["sleep", "600"], name=name, detach=True, network_mode="none"
    )
    events: list[TaskEvent] = []
    failure: list[BaseException] = []
    thread = _collect(events, failure, iter_exec(name, ["sh", "-c", LOOP], client=client))
    _wait_for(lambda: bool(events), 30, "the exec's first event")
    time.sleep(1.0)
    stopped = time.monotonic()
    try:
        own_dockerd.stop()
        thread.join(60)
        ended_after = time.monotonic() - stopped
    finally:
        own_dockerd.start()  # the module's other cases and its cleanup need it
        client.close()
    assert not thread.is_alive(), "the exec did not end when dockerd stopped"
    assert failure, "no error raised"
    assert isinstance(failure[0], DockProgressError), repr(failure[0])
    assert events, "no event at all"
    assert events[-1].state is State.ERROR, events[-1]
    assert events[-1].error
    assert_event_lines([e.to_json() for e in events])
    observe(
        "dockerd stopped during exec",
        seconds_to_error=round(ended_after, 1),
        error=events[-1].error,
        raised=repr(failure[0]),
    )


def test_container_killed_during_an_exec_reports_the_exit_code(
    docker_client: docker.DockerClient, testbed: Bed
) -> None:
    name = f"dpf-kill-{uuid.uuid4().hex[:8]}"
    container = docker_client.containers.run(
        testbed.base, ["sleep", "300"], name=name, detach=True, network_mode="none"
    )
    try:
        events: list[TaskEvent] = []
        failure: list[BaseException] = []
        thread = _collect(
            events, failure, iter_exec(name, ["sh", "-c", LOOP], client=docker_client)
        )
        _wait_for(lambda: bool(events), 30, "the exec's first event")
        time.sleep(1.0)
        container.kill()
        thread.join(60)
    finally:
        container.remove(force=True)
    assert not thread.is_alive()
    assert failure
    assert isinstance(failure[0], ExecError), repr(failure[0])
    last = events[-1]
    assert last.state is State.ERROR
    assert_event_lines([e.to_json() for e in events])
    code = failure[0].exit_code
    assert code is not None, "exit code not reported"
    assert str(code) in (last.error or "")
    observe("container killed during exec", exit_code=code, error=last.error)
