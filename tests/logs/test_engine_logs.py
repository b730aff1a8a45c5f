"""The log follower against the real engine: PostgreSQL example, cuts, exits, restarts."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from dockprogress.core.milestones import DYNAMIC, MilestoneSet, load_milestones
from dockprogress.docker.compose import PROJECT_LABEL, SERVICE_LABEL, iter_follow_project
from dockprogress.docker.logs import iter_follow
from dockprogress.errors import LogFollowError
from dockprogress.events import State, TaskEvent
from dockprogress.examples import example_path, example_text
from tests.logs.socket_proxy import SocketProxy

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("on_engine")]

TICKS = 400
TICK_SCRIPT = (
    f"echo begin; i=1; while [ $i -le {TICKS} ]; do echo tick $i; i=$((i+1)); sleep 0.01; done;"
    " echo all done; sleep 60"
)
TICK_MILESTONES = MilestoneSet(
    [("^begin$", 0, "Begin"), (r"^tick (?P<value>\d+)$", DYNAMIC, "Ticks"), ("^all done$", 100)]
)


@pytest.fixture
def containers(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(name, force=True)


def run_container(
    client: docker.DockerClient, made: list[str], image: str, script: str, **kw: object
) -> str:
    name = f"dp-logs-{uuid.uuid4().hex[:10]}"
    made.append(name)
    client.containers.run(image, ["sh", "-c", script], name=name, detach=True, **kw)
    return name


def max_gap(events: list[TaskEvent]) -> float:
    start, end = events[0].ts, events[-1].ts
    return max(abs((e.percent or 0) - 100 * (e.ts - start) / (end - start)) for e in events)


@pytest.mark.slow
def test_postgres_example_calibrated_second_run(
    docker_client: docker.DockerClient, testbed: object, containers: list[str], tmp_path: Path
) -> None:
    milestones = load_milestones(example_path("postgres-load.toml"))
    profile = tmp_path / "postgres-load.json"
    gaps = []
    for run in (1, 2):
        name = run_container(
            docker_client,
            containers,
            testbed.postgres,  # type: ignore[attr-defined]
            example_text("postgres-load.sh"),
            environment={"PGBENCH_SCALE": "60"},
        )
        events = list(
            iter_follow(name, milestones=milestones, client=docker_client, profile=profile)
        )
        percents = [e.percent for e in events]
        assert percents == sorted(percents)
        assert events[-1].state is State.DONE
        assert events[-1].percent == 100
        assert events[-1].phase == "ready"
        assert all(e.percent is not None and e.percent < 100 for e in events[:-1])
        running = [e for e in events if e.state is State.RUNNING]
        if run == 1:  # no local run yet: the example's shipped prior guides it
            assert running[0].detail["prior"]
            assert profile.exists()
        else:
            assert running[0].detail["calibrated"]
            assert "prior" not in running[0].detail
            assert sum(e.eta is not None for e in running) >= len(running) - 1
        gaps.append(max_gap(events))
        docker_client.api.remove_container(name, force=True)
    print(f"\nmax |percent - elapsed share|: prior run {gaps[0]:.1f}, calibrated run {gaps[1]:.1f}")
    assert gaps[1] < gaps[0]


def test_cut_streams_lose_and_double_no_line(
    docker_client: docker.DockerClient, testbed: object, containers: list[str], tmp_path: Path
) -> None:
    # In front of the engine under test (the classic or the modern one).
    upstream = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    proxy = SocketProxy(tmp_path / "engine.sock", upstream=upstream)
    client = docker.DockerClient(base_url=proxy.url)
    name = run_container(docker_client, containers, testbed.base, TICK_SCRIPT)  # type: ignore[attr-defined]
    seen: list[str] = []

    def saboteur() -> None:
        time.sleep(1.0)
        proxy.cut()
        time.sleep(1.0)
        proxy.pause(1.5)  # like a daemon restart: the engine does not answer for a while
        time.sleep(2.0)
        proxy.cut()

    thread = threading.Thread(target=saboteur, daemon=True)
    thread.start()
    try:
        events = list(
            iter_follow(
                name,
                milestones=TICK_MILESTONES,
                client=client,
                calibrate=False,
                progress_handler=lambda p, d, line: seen.append(line),
            )
        )
    finally:
        thread.join()
        client.close()
        proxy.close()
    assert events[-1].state is State.DONE
    assert proxy.cuts >= 3
    full = docker_client.api.logs(name).decode().splitlines()
    expected = [line for line in full if TICK_MILESTONES.match(line)]
    assert seen == expected
    assert len(seen) == TICKS + 2


def test_exit_nonzero_before_final_is_an_error(
    docker_client: docker.DockerClient, testbed: object, containers: list[str]
) -> None:
    name = run_container(
        docker_client,
        containers,
        testbed.base,
        "echo begin; sleep 0.5; echo failing >&2; exit 3",  # type: ignore[attr-defined]
    )
    events: list[TaskEvent] = []
    follow = iter_follow(
        name, milestones=TICK_MILESTONES, client=docker_client, calibrate=False, restart_grace=0.5
    )
    with pytest.raises(LogFollowError) as caught:
        events.extend(follow)
    assert caught.value.exit_code == 3
    assert events[-1].state is State.ERROR
    assert events[-1].detail["exit_code"] == 3
    assert events[-1].detail["last_lines"][-1] == "failing"


def test_restarted_container_is_followed_again(
    docker_client: docker.DockerClient, testbed: object, containers: list[str]
) -> None:
    script = (
        "echo begin; if [ ! -e /tmp/ran ]; then touch /tmp/ran; echo tick 1; sleep 0.5; exit 1; fi;"
        " echo tick 2; echo all done; sleep 60"
    )
    name = run_container(
        docker_client,
        containers,
        testbed.base,
        script,  # type: ignore[attr-defined]
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
    )
    events = list(
        iter_follow(name, milestones=TICK_MILESTONES, client=docker_client, calibrate=False)
    )
    assert events[-1].state is State.DONE
    assert events[-1].detail["matches"] == 5  # begin, tick 1, begin, tick 2, all done


def test_compose_project_one_task_per_service_and_aggregate(
    docker_client: docker.DockerClient, testbed: object, containers: list[str]
) -> None:
    project = f"dp{uuid.uuid4().hex[:8]}"
    for service, ticks in (("db", 5), ("web", 10)):
        run_container(
            docker_client,
            containers,
            testbed.base,  # type: ignore[attr-defined]
            f"echo begin; for i in $(seq 1 {ticks}); do echo tick $i; sleep 0.05; done;"
            " echo all done; sleep 60",
            labels={PROJECT_LABEL: project, SERVICE_LABEL: service},
        )
    events = list(
        iter_follow_project(
            project, milestones=TICK_MILESTONES, client=docker_client, calibrate=False
        )
    )
    tasks = {e.task for e in events}
    assert tasks == {f"logs:{project}", f"logs:{project}/db", f"logs:{project}/web"}
    final = {e.task: e for e in events if e.terminal}
    assert {t: e.state for t, e in final.items()} == dict.fromkeys(tasks, State.DONE)
    assert events[-1].task == f"logs:{project}"
    aggregate = [e.percent for e in events if e.task == f"logs:{project}"]
    assert aggregate == sorted(aggregate)


def test_cli_invalid_pattern_exits_2_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[[milestone]]\npattern = 'ok'\nprogress = 0\n"
        "[[milestone]]\npattern = 'oops (x'\nprogress = 50\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "dockprogress", "logs", "anything", "--milestones", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "milestone #2 ('oops (x')" in result.stderr
    assert result.stdout == ""


def test_cli_follows_a_container_as_json(
    docker_client: docker.DockerClient, testbed: object, containers: list[str], tmp_path: Path
) -> None:
    name = run_container(
        docker_client, containers, testbed.base, "echo begin; echo tick 1; echo all done; sleep 60"
    )  # type: ignore[attr-defined]
    milestones = tmp_path / "m.toml"
    milestones.write_text(
        "[[milestone]]\npattern='^begin$'\nprogress=0\n"
        "[[milestone]]\npattern='^tick'\nprogress='dynamic'\n"
        "[[milestone]]\npattern='^all done$'\nprogress=100\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockprogress",
            "logs",
            name,
            "--milestones",
            str(milestones),
            "--progress",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [TaskEvent.from_dict(json.loads(x)) for x in result.stdout.splitlines()]
    assert lines[-1].state is State.DONE
    assert lines[-1].percent == 100


JSON = ("--progress", "json")


def test_a_missing_container_is_an_error_event_and_exit_status_1(tmp_path: Path) -> None:
    milestones = tmp_path / "m.toml"
    milestones.write_text('[[milestone]]\npattern = "ready"\nprogress = 100\n')
    name = f"dp-no-such-container-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockprogress",
            "logs",
            name,
            "--milestones",
            str(milestones),
            *JSON,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["task"], e["state"]) for e in events] == [(f"logs:{name}", "error")]
    assert "No such container" in events[0]["error"]


RUN_SCRIPT = "echo begin; echo tick 1; echo tick 2; echo all done"


def _restarted_twice(docker_client: docker.DockerClient, containers: list[str], image: str) -> str:
    """A container that ran three times (started, then started again twice) and stopped."""
    name = run_container(docker_client, containers, image, RUN_SCRIPT)
    container = docker_client.containers.get(name)
    for _ in range(2):
        container.wait(timeout=30)
        container.start()
    container.wait(timeout=30)
    assert docker_client.api.logs(name).decode().count("begin") == 3
    return name


@pytest.mark.parametrize("all_runs", [False, True], ids=["latest-run", "all-runs"])
def test_a_stopped_container_restarted_twice_is_read_from_its_latest_run(
    docker_client: docker.DockerClient, testbed: object, containers: list[str], all_runs: bool
) -> None:
    """Issue 18, item 3: the earlier runs' milestones are not counted (unless all_runs)."""
    name = _restarted_twice(docker_client, containers, testbed.base)  # type: ignore[attr-defined]
    seen: list[str] = []
    milestones = MilestoneSet(
        [("^begin$", 0, "Begin"), (r"^tick (?P<value>\d+)$", DYNAMIC, "Ticks"), ("^nope$", 100)]
    )
    events: list[TaskEvent] = []
    follow = iter_follow(
        name,
        milestones=milestones,
        client=docker_client,
        calibrate=False,
        restart_grace=0.2,
        progress_handler=lambda _p, _d, line: seen.append(line),
        all_runs=all_runs,
    )
    with pytest.raises(LogFollowError):  # exits 0 before its (absent) final milestone
        events.extend(follow)
    runs = 3 if all_runs else 1
    assert seen == ["begin", "tick 1", "tick 2"] * runs
    assert events[-1].detail["matches"] == 3 * runs


def test_a_running_container_restarted_twice_is_read_from_its_latest_run(
    docker_client: docker.DockerClient, testbed: object, containers: list[str]
) -> None:
    script = "echo begin; echo tick 1; sleep 0.3; echo all done; sleep 60"
    name = run_container(docker_client, containers, testbed.base, script)  # type: ignore[attr-defined]
    container = docker_client.containers.get(name)
    for _ in range(2):
        time.sleep(0.5)
        container.restart(timeout=0)
    time.sleep(0.8)
    assert docker_client.api.logs(name).decode().count("begin") == 3
    events = list(
        iter_follow(name, milestones=TICK_MILESTONES, client=docker_client, calibrate=False)
    )
    assert events[-1].state is State.DONE
    assert events[-1].detail["matches"] == 3  # begin, tick 1, all done: one run's


def test_cli_all_runs_flag_reads_every_run(
    docker_client: docker.DockerClient, testbed: object, containers: list[str], tmp_path: Path
) -> None:
    name = _restarted_twice(docker_client, containers, testbed.base)  # type: ignore[attr-defined]
    path = tmp_path / "m.toml"
    path.write_text("[[milestone]]\npattern = '^begin$'\nprogress = 10\n")
    counts = {}
    command = [sys.executable, "-m", "dockprogress", "logs", name]
    for flag in ([], ["--all-runs"]):
        result = subprocess.run(
            [*command, "--milestones", str(path), "--no-calibration", "--progress", "json", *flag],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr  # no final milestone: done on exit 0
        last = json.loads(result.stdout.splitlines()[-1])
        counts[bool(flag)] = last["detail"]["matches"]
    assert counts == {False: 1, True: 3}
