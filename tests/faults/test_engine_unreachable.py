"""Engine not reachable at all: every command says which socket it tried and what to do.

No engine is needed: ``DOCKER_HOST`` points at a socket that does not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract import assert_event_output
from tests.faults.harness import observe

pytestmark = pytest.mark.timeout(120)

SOCKET = "/nonexistent-dockprogress.sock"


@pytest.mark.parametrize(
    "argv",
    [
        ["pull", "127.0.0.1:5000/dp/base:1"],
        ["logs", "some-container", "--milestones", "{milestones}"],
        ["exec", "some-container", "--", "true"],
        ["logs", "--compose-project", "some-project", "--milestones", "{milestones}"],
    ],
    ids=["pull", "logs", "exec", "logs-compose"],
)
def test_engine_not_reachable_names_the_socket_and_what_to_do(
    argv: list[str], tmp_path: Path
) -> None:
    milestones = tmp_path / "m.toml"
    milestones.write_text('[[milestone]]\npattern = "ready"\nprogress = 100\n')
    args = [a.replace("{milestones}", str(milestones)) for a in argv]
    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"}
    result = subprocess.run(
        # Options before the arguments: after exec's "--" they would be the command's own.
        [sys.executable, "-m", "dockprogress", args[0], "--progress", "json", *args[1:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"unix://{SOCKET}" in result.stderr
    assert "does not exist: is dockerd running? (or set DOCKER_HOST)" in result.stderr
    events = assert_event_output(result.stdout)  # only valid event lines on stdout
    # Each command's task ends in error with the same message, for scripts and dashboards.
    assert [event["state"] for event in events] == ["error"]
    assert f"unix://{SOCKET}" in events[0]["error"]
    observe(f"engine unreachable ({argv[0]})", stderr=result.stderr.strip(), events=len(events))


def test_plain_error_line_says_error_once(tmp_path: Path) -> None:
    """The plain line's state word is the only "error" before the message (issue 18, item 6)."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"}
    result = subprocess.run(
        [sys.executable, "-m", "dockprogress", "exec", "--progress", "plain", "c", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    line = next(x for x in result.stderr.splitlines() if x.startswith("exec:"))
    assert line.split("  ")[1] == "error"
    assert "error:" not in line
    assert f"could not connect to the Docker engine at unix://{SOCKET}" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pull"], "dockprogress: pull: the following arguments are required: IMAGE"),
        (["--bogus"], "dockprogress: unrecognized arguments: --bogus"),
        (
            ["exec", "c", "--bogus", "--", "true"],
            "dockprogress: exec: unrecognized arguments: --bogus",
        ),
    ],
)
def test_usage_errors_name_the_program_once(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dockprogress", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == message
