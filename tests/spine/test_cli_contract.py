"""Every command's ``--progress json`` output keeps the event-line contract, on the real bed.

The commands run as a user runs them (``python -m dockprogress ...`` in a subprocess) against
the test bed's engine and registry; standard output is checked with ``tests/contract.py``,
standard error must hold no event lines, and ``--progress plain`` must hold no escape codes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest

from tests.contract import assert_event_output

if TYPE_CHECKING:  # imported at run time, pytest would try to collect the class
    from tests.conftest import Testbed

pytestmark = pytest.mark.engine

MILESTONES = """\
name = "spine-contract"

[[milestone]]
pattern = 'Starting DB init!'
progress = 0
description = "Starting database initialization"

[[milestone]]
pattern = 'loaded (?P<value>\\d+) of 3'
progress = "dynamic"
description = "Loading data"

[[milestone]]
pattern = 'Finished DB init!'
progress = 100
description = "Database ready"
"""


def dockprogress(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120")
    return subprocess.run(
        [sys.executable, "-m", "dockprogress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_pull_json_lines_keep_the_contract(testbed: Testbed) -> None:
    missing = testbed.base.rsplit(":", 1)[0] + ":no-such-tag"
    result = dockprogress("pull", testbed.base, missing, "--progress", "json")
    events = assert_event_output(result.stdout)
    assert result.returncode == 1  # one image does not exist
    ends = {event["task"]: event for event in events if event["state"] != "running"}
    assert ends[f"pull:{testbed.base}"]["state"] == "done"
    assert ends[f"pull:{missing}"]["state"] == "error"
    assert "not found" in ends[f"pull:{missing}"]["error"]
    assert "{" not in result.stderr.split("\n", 1)[0]  # diagnostics, not event lines, there


def test_pull_plain_has_no_escape_codes(testbed: Testbed) -> None:
    result = dockprogress("pull", testbed.base, "--progress", "plain")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # plain and tty displays write to standard error
    assert f"pull:{testbed.base}  done  100%" in result.stderr
    assert "\x1b" not in result.stderr
    assert "\r" not in result.stderr


@pytest.fixture
def milestone_file(tmp_path: Path) -> Path:
    path = tmp_path / "milestones.toml"
    path.write_text(MILESTONES, encoding="utf-8")
    return path


@pytest.fixture
def containers(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(name).remove(force=True)


def start(docker_client: docker.DockerClient, image: str, script: str, names: list[str]) -> str:
    name = f"dp-spine-{uuid.uuid4().hex[:10]}"
    names.append(name)
    docker_client.containers.run(image, ["sh", "-c", script], name=name, detach=True)
    return name


@pytest.mark.parametrize(
    "case",
    [
        (
            "echo 'Starting DB init!'; sleep 0.5; for i in 1 2 3; do echo \"loaded $i of 3\";"
            " sleep 0.3; done; echo 'Finished DB init!'; sleep 60",
            0,
            "done",
        ),
        ("echo 'Starting DB init!'; sleep 0.5; echo 'disk full' >&2; exit 3", 1, "error"),
    ],
    ids=["reaches-final-milestone", "dies-before-it"],
)
def test_logs_json_lines_keep_the_contract(
    testbed: Testbed,
    docker_client: docker.DockerClient,
    containers: list[str],
    milestone_file: Path,
    case: tuple[str, int, str],
) -> None:
    script, status, end = case
    name = start(docker_client, testbed.base, script, containers)
    result = dockprogress(
        "logs", name, "--milestones", str(milestone_file), "--no-calibration", "--progress", "json"
    )
    events = assert_event_output(result.stdout)
    assert result.returncode == status, result.stderr
    assert events
    assert {event["operation"] for event in events} == {"logs"}
    assert events[-1]["state"] == end
    if end == "done":
        descriptions = [event["description"] for event in events]
        assert "Loading data" in descriptions
        assert descriptions[-1] == "Database ready"
    else:
        assert events[-1]["error"]


def test_every_event_line_is_one_json_object_per_line(testbed: Testbed) -> None:
    """Lines are flushed whole: no line is split or merged, whatever the pipe's buffering."""
    result = dockprogress("pull", testbed.base, "--progress", "json")
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        assert isinstance(json.loads(line), dict)
    assert_event_output(result.stdout)


TQDM_SCRIPT = (
    "import time\n"
    "from tqdm import tqdm\n"
    "for _ in tqdm(range(200), desc='work'):\n"
    "    time.sleep(0.005)\n"
)


def test_run_json_lines_keep_the_contract() -> None:
    result = dockprogress("run", "--progress", "json", "--", sys.executable, "-c", TQDM_SCRIPT)
    events = assert_event_output(result.stdout)
    assert result.returncode == 0, result.stderr
    assert {event["operation"] for event in events} == {"run"}
    assert events[-1]["state"] == "done"
    assert any(0 < (event["percent"] or 0) < 100 for event in events)  # the bar was seen


@pytest.mark.parametrize(
    "case",
    [(TQDM_SCRIPT, 0, "done"), (TQDM_SCRIPT + "raise SystemExit(4)\n", 1, "error")],
    ids=["succeeds", "fails"],
)
def test_exec_json_lines_keep_the_contract(
    testbed: Testbed,
    docker_client: docker.DockerClient,
    containers: list[str],
    case: tuple[str, int, str],
) -> None:
    script, status, end = case
    name = start(docker_client, testbed.python, "sleep 120", containers)
    result = dockprogress("exec", name, "--progress", "json", "--", "python3", "-c", script)
    events = assert_event_output(result.stdout)
    assert result.returncode == status, result.stderr
    assert {event["operation"] for event in events} == {"exec"}
    assert events[-1]["state"] == end
