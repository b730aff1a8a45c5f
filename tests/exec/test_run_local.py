"""``dockprogress run``: a local command under a pty, with the venv's real tqdm and rich."""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dockprogress.errors import ExecError, UsageError
from dockprogress.events import Kind, State, TaskEvent
from dockprogress.local import iter_run, run_with_progress
from tests.contract import assert_event_lines, assert_event_output

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "dockprogress" / "examples"
TQDM = [sys.executable, str(EXAMPLES / "tqdm_demo.py")]
RICH = [sys.executable, str(EXAMPLES / "rich_demo.py")]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockprogress", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_run_tqdm_script_works_like_exec() -> None:
    result = _cli("run", "--progress", "json", "--", *TQDM, "one", "20", "0.02")
    assert result.returncode == 0, result.stderr
    events = assert_event_output(result.stdout)
    assert {e["operation"] for e in events} == {"run"}
    percents = [e["percent"] for e in events if e["state"] == "running" and e["percent"]]
    assert len(percents) >= 4
    assert events[-1]["state"] == "done"


def test_cli_run_exit_status_3_gives_error_and_status_1() -> None:
    result = _cli("run", "--progress", "json", "--", *TQDM, "one", "5", "0", "3")
    assert result.returncode == 1
    assert assert_event_output(result.stdout)[-1]["state"] == "error"
    assert "exited with status 3" in result.stderr


def test_cli_run_usage_errors_are_status_2() -> None:
    assert _cli("run", "--progress", "json").returncode == 2
    assert _cli("run", "--bar", "(", "--", "true").returncode == 2


def test_rich_and_bytes_bars_under_a_local_pty() -> None:
    events = list(iter_run([*RICH, "multi", "15", "0.02"], size=(100, 30)))
    assert_event_lines([e.to_json() for e in events])
    assert events[-1].state is State.DONE
    assert len({e.percent for e in events}) >= 5
    download = list(iter_run([*TQDM, "bytes", "10", "0.02"]))
    assert {e.kind for e in download} == {Kind.DOWNLOAD}
    assert download[-1].current == download[-1].total


def test_missing_local_command_is_a_clear_error() -> None:
    with pytest.raises(ExecError) as raised:
        list(iter_run(["/no/such/program"]))
    assert "could not be started" in str(raised.value)
    with pytest.raises(UsageError):
        list(iter_run([]))


def test_cancel_kills_the_whole_process_group() -> None:
    cancel = threading.Event()
    events: list[TaskEvent] = []
    # a shell whose child does the work: both must go
    script = f"{sys.executable} {EXAMPLES / 'tqdm_demo.py'} one 1000 0.05 & echo child $!; wait"
    for event in iter_run(["sh", "-c", script], cancel=cancel):
        events.append(event)
        if event.percent:
            cancel.set()
    assert events[-1].state is State.CANCELLED
    child = [line for line in _tail_lines(events) if line.startswith("child ")]
    assert child
    pid = int(child[0].split()[1])
    assert _dead(pid)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for a reaper (this machine's pid 1 may not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _tail_lines(events: list[TaskEvent]) -> list[str]:
    return [line for event in events for line in event.detail.get("last_lines", [])]


def test_progress_callback_gets_increasing_percents_and_100() -> None:
    percents: list[float] = []
    final = run_with_progress([*TQDM, "nested", "10", "0.03"], progress_callback=percents.append)
    assert final is not None
    assert final.state is State.DONE
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert any(33.4 < p < 66.6 for p in percents)


def test_cancel_waits_for_a_child_that_is_slow_to_die() -> None:
    # The shell dies at once on SIGTERM; its child takes 0.5 s to. Cancelled must mean both.
    slow = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.5), sys.exit(0)))\n"
        "time.sleep(60)\n"
    )
    script = f"{sys.executable} -c {shlex.quote(slow)} & echo child $!; wait"
    cancel = threading.Event()
    timer = threading.Timer(1.5, cancel.set)  # the child has set its handler by then
    timer.start()
    try:
        events = list(iter_run(["sh", "-c", script], cancel=cancel))
    finally:
        timer.cancel()
    assert events[-1].state is State.CANCELLED
    child = [line for line in _tail_lines(events) if line.startswith("child ")]
    assert child
    assert _dead(int(child[0].split()[1]))
