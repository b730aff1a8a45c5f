"""``--progress plain``: one line per change, no escape codes, from real ``Task`` events."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress import Kind, Operation, PlainSink, Task
from tests.spine.strategies import FakeClock


def lines_of(stream: io.StringIO) -> list[str]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_a_pull_gives_one_line_per_ten_percent_step() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    sink = PlainSink(stream)
    task = Task("pull:127.0.0.1:5000/dp/layers:1", Operation.PULL, Kind.DOWNLOAD, clock=clock)
    total = 117_000_000
    sink.send(task.update(current=0, total=total, description="Downloading", phase="downloading"))
    for _ in range(1_000):
        clock.now += 0.01
        sink.send(task.advance(total / 1_000))
    clock.now += 0.5
    sink.send(task.finish(description="Pull complete"))
    lines = lines_of(stream)
    # 0 %, then 10 % .. 90 %, then done: the 1001 running events collapse to 10 lines.
    assert len(lines) == 11
    shown = [line.split("  ")[2] for line in lines]
    assert shown == [f"{p}%" for p in range(0, 100, 10)] + ["100%"]
    assert lines[0] == ("pull:127.0.0.1:5000/dp/layers:1  running  0%  0 B / 117 MB  Downloading")
    assert "  eta " in lines[5]
    assert "MB/s" in lines[5]
    assert lines[-1] == (
        "pull:127.0.0.1:5000/dp/layers:1  done  100%  117 MB / 117 MB  in 0:11  Pull complete"
    )


def test_state_phase_and_description_changes_each_give_a_line() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    sink = PlainSink(stream)
    task = Task("logs:pg", Operation.LOGS, Kind.COUNT, total=100, clock=clock)
    sink.send(task.update(current=1, description="Starting", phase="start"))
    sink.send(task.update(current=2))  # same step, same words: no line
    sink.send(task.update(current=3, phase="load"))
    sink.send(task.update(current=4, description="Loading data"))
    sink.send(task.update(current=5, description="Loading data"))  # no change
    clock.now += 3
    sink.send(task.fail("container exited with status 1 before 'Database ready'"))
    sink.send(task.snapshot())  # after the end: nothing
    lines = lines_of(stream)
    assert lines == [
        "logs:pg  running  1%  1/100  Starting",
        "logs:pg  running  3%  3/100  Starting",
        "logs:pg  running  4%  4/100  Loading data",
        "logs:pg  error  5%  5/100  in 0:03  container exited with status 1 before"
        " 'Database ready'",
    ]


def test_unknown_totals_get_a_heartbeat_line() -> None:
    clock = FakeClock()
    stream = io.StringIO()
    sink = PlainSink(stream, heartbeat=10.0)
    task = Task("run:job", Operation.RUN, Kind.COUNT, clock=clock)
    for _ in range(60):
        sink.send(task.advance(1))
        clock.now += 1.0
    lines = lines_of(stream)
    assert [line.split("  ")[2] for line in lines] == [
        "1/?",
        "11/?",
        "21/?",
        "31/?",
        "41/?",
        "51/?",
    ]


def test_cancelled_line() -> None:
    stream = io.StringIO()
    sink = PlainSink(stream)
    task = Task("exec:x", Operation.EXEC, Kind.COUNT, total=10, clock=FakeClock())
    sink.send(task.cancel("Ctrl-C"))
    assert lines_of(stream) == ["exec:x  cancelled  0/10  in 0:00  Ctrl-C"]


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_plain_output_never_carries_control_characters(description, error) -> None:
    stream = io.StringIO()
    sink = PlainSink(stream)
    task = Task("exec:\x1b[2Jx", Operation.EXEC, Kind.COUNT, total=10, clock=FakeClock())
    sink.send(task.update(current=5, description=description))
    sink.send(task.fail(error or "failed"))
    sink.close()
    text = stream.getvalue()
    assert text.count("\n") == 2
    for line in text.splitlines():
        assert line.isprintable(), repr(line)
