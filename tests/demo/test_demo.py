"""``dockprogress demo`` (the README's main job) on the real test bed.

One run of the whole showcase: a throttled pull, a PostgreSQL load followed through its
milestones and a tqdm exec, concurrently, with the dashboard embedded. The event lines must
keep the contract for every task, all three must end ``done``, and the demo's containers
must be gone afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys

import docker
import pytest

from tests.contract import assert_event_output

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_demo_runs_the_three_approaches_at_once(
    testbed: object, docker_client: docker.DockerClient
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockprogress",
            "demo",
            "--progress",
            "json",
            "--port",
            "0",
            "--scale",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert_event_output(done.stdout)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    finals = {event["task"]: event for event in events if event["state"] != "running"}
    operations = {event["operation"] for event in finals.values()}
    assert operations == {"pull", "logs", "exec", "build", "push"}
    assert all(event["state"] == "done" for event in finals.values()), finals
    pull = next(event for event in finals.values() if event["operation"] == "pull")
    assert pull["current"] == pull["total"] > 100_000_000  # the 6-layer image, every byte
    # Pull, logs, exec and build overlapped in time: each started before any other ended
    # (the push starts when the build has made its image).
    starts = {e["task"]: e["ts"] for e in reversed(events) if e["operation"] != "push"}
    assert max(starts.values()) < min(event["ts"] for event in finals.values())
    push = next(event for event in finals.values() if event["operation"] == "push")
    assert push["current"] == push["total"] >= 20_000_000  # the fresh payload layer
    assert "dashboard at http://127.0.0.1:" in done.stderr
    left = docker_client.containers.list(all=True, filters={"name": "dockprogress-demo"})
    assert left == []
