"""The exec adapter against the real engine, in a container of the python fixture image."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockprogress.docker.exec import exec_with_progress, iter_exec
from dockprogress.errors import ExecError
from dockprogress.events import State, TaskEvent
from tests.contract import assert_event_lines, assert_event_output

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("on_engine")]

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "dockprogress" / "examples"
TQDM = ["python3", "-c", (EXAMPLES / "tqdm_demo.py").read_text()]
RICH = ["python3", "-c", (EXAMPLES / "rich_demo.py").read_text()]


@pytest.fixture(scope="module")
def container(testbed: Any, docker_client: Any) -> Iterator[Any]:
    name = f"dp-exec-test-{uuid.uuid4().hex[:8]}"
    box = docker_client.containers.run(testbed.python, ["sleep", "600"], detach=True, name=name)
    try:
        yield box
    finally:
        box.remove(force=True)


def _check(events: list[TaskEvent]) -> list[TaskEvent]:
    assert_event_lines([event.to_json() for event in events])
    return events


def _running_tqdm(box: Any) -> list[str]:
    result = box.exec_run(["ps", "-eo", "args"])
    return [line for line in result.output.decode().splitlines() if "tqdm" in line]


def test_console_size_reaches_the_command(container: Any) -> None:
    # API 1.41: the size is set by exec_resize right after the start (the command's first
    # few milliseconds may still see 0x0, as with the docker CLI), COLUMNS/LINES at once.
    out = io.BytesIO()
    command = ["sh", "-c", "echo $COLUMNS $LINES; sleep 0.5; stty size"]
    events = _check(list(iter_exec(container.name, command, passthrough=out, size=(101, 33))))
    assert events[-1].state is State.DONE
    assert out.getvalue().split() == [b"101", b"33", b"33", b"101"]


def test_tqdm_in_a_container_ends_at_100(container: Any) -> None:
    out = io.BytesIO()
    percents: list[float] = []
    final = exec_with_progress(
        container.name,
        [*TQDM, "one", "30", "0.03"],
        progress_callback=percents.append,
        passthrough=out,
    )
    assert final is not None
    assert final.state is State.DONE
    assert "█".encode() in out.getvalue()  # tqdm drew its bar: it had a width
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert len(percents) >= 5
    assert final.detail["exit_code"] == 0


def test_rich_in_a_container_ends_at_100(container: Any) -> None:
    events = _check(list(iter_exec(container.name, [*RICH, "multi", "20", "0.03"])))
    percents = [e.percent for e in events if e.percent is not None]
    assert events[-1].state is State.DONE
    assert len(set(percents)) >= 5
    assert {bar["description"] for bar in events[-1].detail["bars"]} == {
        "fetch",
        "decode",
        "index",
    }


def test_nested_tqdm_follows_the_outer_bar(container: Any) -> None:
    events = _check(list(iter_exec(container.name, [*TQDM, "nested", "10", "0.02"])))
    percents = [e.percent for e in events if e.state is State.RUNNING and e.percent]
    assert any(40 < p < 60 for p in percents)  # inside the second epoch, not only 33/67
    assert events[-1].state is State.DONE


def test_non_zero_exit_is_an_error_with_status_and_output(container: Any) -> None:
    seen: list[TaskEvent] = []
    with pytest.raises(ExecError) as raised:
        exec_with_progress(container.name, [*TQDM, "one", "5", "0.01", "3"], on_event=seen.append)
    assert raised.value.exit_code == 3
    assert "finished one" in raised.value.last_lines
    assert seen[-1].state is State.ERROR
    assert seen[-1].error is not None
    assert "status 3" in seen[-1].error
    _check(seen)


def test_missing_command_is_a_clear_error(container: Any) -> None:
    with pytest.raises(ExecError) as raised:
        list(iter_exec(container.name, ["no-such-command-here"]))
    assert raised.value.exit_code in (126, 127)
    assert "no-such-command-here" in str(raised.value)
    assert "not found" in str(raised.value)


@pytest.mark.parametrize("kill_via", ["auto", "exec"])
def test_cancel_kills_the_process_in_the_container(container: Any, kill_via: str) -> None:
    cancel = threading.Event()
    events: list[TaskEvent] = []
    for event in iter_exec(
        container.name,
        [*TQDM, "one", "1000", "0.05"],
        cancel=cancel,
        kill_via=kill_via,  # type: ignore[arg-type]
    ):
        events.append(event)
        if event.percent is not None and event.percent > 0.5:
            cancel.set()
    assert events[-1].state is State.CANCELLED
    _check(events)
    assert _running_tqdm(container) == []


def test_closing_the_generator_early_kills_the_command(container: Any) -> None:
    events = iter_exec(container.name, [*TQDM, "one", "1000", "0.05"])
    for event in events:
        if event.percent:
            break
    events.close()  # type: ignore[attr-defined]
    assert _running_tqdm(container) == []


def _cli(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dockprogress", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_cli_exec_json_and_exit_statuses(container: Any) -> None:
    ok = _cli("exec", container.name, "--progress", "json", "--", *TQDM, "one", "10", "0.01")
    out, _ = ok.communicate(timeout=60)
    assert ok.returncode == 0
    events = assert_event_output(out)
    assert events[-1]["state"] == "done"
    assert events[-1]["operation"] == "exec"

    failing = _cli("exec", container.name, "--progress", "json", "--", *TQDM, "one", "5", "0", "3")
    out, err = failing.communicate(timeout=60)
    assert failing.returncode == 1
    assert assert_event_output(out)[-1]["state"] == "error"
    assert "status 3" in err


def test_cli_ctrl_c_kills_the_command_and_exits_130(container: Any) -> None:
    proc = _cli("exec", container.name, "--progress", "json", "--", *TQDM, "one", "1000", "0.05")
    assert proc.stdout is not None
    for line in proc.stdout:  # wait for a real bar update
        if json.loads(line)["percent"]:
            break
    os.kill(proc.pid, signal.SIGINT)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert json.loads(rest.splitlines()[-1])["state"] == "cancelled"
    deadline = time.monotonic() + 5
    while _running_tqdm(container) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running_tqdm(container) == []
