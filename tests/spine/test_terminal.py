"""The live terminal display: frames drawn at fixed times from real ``Task`` events.

Frames are drawn with :meth:`TerminalSink.renderable` on a recording rich console and a fake
clock, so each frame is exact; the refresh thread is tested separately for its throttle.
"""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from dockprogress import Kind, Operation, Task, TerminalSink, humanize
from tests.spine.strategies import FakeClock

SGR_COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-9]|4[0-9]|9[0-7])[0-9;]*m")


def draw(sink: TerminalSink, now: float, *, width: int = 150, colour: bool = False) -> str:
    console = Console(
        file=io.StringIO(),
        width=width,
        record=True,
        force_terminal=colour,
        color_system="truecolor" if colour else None,
        highlight=False,
    )
    console.print(sink.renderable(now))
    return console.export_text(styles=colour)


def rows(frame: str) -> list[str]:
    return [line.rstrip() for line in frame.splitlines() if line.strip()]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_download_bar_shows_bytes_speed_and_eta(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    task = Task("pull:127.0.0.1:5000/dp/layers:1", Operation.PULL, Kind.DOWNLOAD, clock=clock)
    sink.send(task.update(current=0, total=3_100_000_000, description="Downloading"))
    for _ in range(5):
        clock.now += 1.0
        event = task.advance(240_000_000)
        sink.send(event)
    assert event is not None
    (row,) = rows(draw(sink, clock.now))
    assert row.startswith("› pull:127.0.0.1:5000/dp/layers:1 Downloading")
    assert "1.2 GB / 3.1 GB" in row
    assert "240 MB/s" in row
    assert f"{int(event.percent or 0)}%" in row
    # 1.9 GB left at 240 MB/s is 7.9 s: shown rounded up.
    assert row.endswith("eta 0:08")
    assert "━" in row


def test_count_bar_shows_current_over_total_and_description(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    task = Task("exec:py/train", Operation.EXEC, Kind.COUNT, total=100, clock=clock)
    sink.send(task.update(current=45, description="epoch 3"))
    (row,) = rows(draw(sink, clock.now))
    assert "exec:py/train" in row
    assert "epoch 3" in row
    assert "45/100" in row
    assert "45%" in row
    assert "/s" not in row  # count bars show no byte speed


def test_percent_never_shows_100_before_done(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    task = Task("exec:x", Operation.EXEC, Kind.COUNT, total=1000, clock=clock)
    sink.send(task.update(current=999.9))
    assert "99%" in draw(sink, clock.now)
    sink.send(task.finish())
    (row,) = rows(draw(sink, clock.now))
    assert row.startswith("✓ exec:x")
    assert "100%" in row
    assert "1000/1000" in row


def test_unknown_total_pulses_with_the_clock(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    task = Task("logs:pg", Operation.LOGS, Kind.COUNT, clock=clock)
    sink.send(task.update(current=3, description="Loading data"))
    first = draw(sink, clock.now)
    assert draw(sink, clock.now) == first  # a frame is a function of the time
    later = draw(sink, clock.now + 0.25)
    assert later != first  # the segment moved
    for frame in (first, later):
        (row,) = rows(frame)
        assert "3/?" in row
        assert "%" not in row
        assert "─" in row  # the track is visible without colours, unlike a solid bar
    clock.now += 65
    (row,) = rows(draw(sink, clock.now))
    assert row.endswith("1:05")  # elapsed time stands in for an ETA


def test_unknown_download_total(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    task = Task("pull:a", Operation.PULL, Kind.DOWNLOAD, clock=clock)
    sink.send(task.update(current=0))
    clock.now += 2
    sink.send(task.update(current=12_300_000))
    (row,) = rows(draw(sink, clock.now))
    assert "12 MB / ?" in row
    assert "6.2 MB/s" in row


def test_error_and_cancelled_rows_show_their_message(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    failing = Task("exec:bad", Operation.EXEC, Kind.COUNT, total=100, clock=clock)
    stopped = Task("pull:c", Operation.PULL, Kind.DOWNLOAD, total=10_000, clock=clock)
    sink.send(failing.update(current=45, description="step 2"))
    sink.send(stopped.update(current=1_000))
    clock.now += 5
    sink.send(failing.fail("exit code 2: \x1b[2J\x1b[31mboom\x1b[0m\nTraceback (most recent)"))
    sink.send(stopped.cancel("Ctrl-C"))
    error_row, cancel_row = rows(draw(sink, clock.now, width=160))
    assert error_row.startswith("✗ exec:bad")
    assert "error: exit code 2: boom Traceback (most recent)" in error_row
    assert "45%" in error_row  # the bar stays where it failed
    assert error_row.endswith("in 0:05")
    # On a narrow terminal the message wraps in its column, in full, never cut.
    narrow = rows(draw(sink, clock.now, width=70))
    assert len(narrow) > 2
    words = " ".join(line[8:40] for line in narrow[:-1])
    for word in ("exit", "code", "boom", "Traceback", "(most", "recent)"):
        assert word in words
    assert cancel_row.startswith("⊘ pull:c")
    assert "cancelled: Ctrl-C" in cancel_row
    assert "1.0 kB / 10 kB" in cancel_row


def test_container_text_cannot_inject_escape_sequences(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    evil = "ok\x1b[2J\x1b]0;title\x07\x1b[31m[red]markup[/red]\r\x08\x9b1A done"
    task = Task("logs:evil\x1b[H", Operation.LOGS, Kind.COUNT, total=10, clock=clock)
    sink.send(task.update(current=1, description=evil))
    styled = draw(sink, clock.now, colour=True)
    for sequence in ("\x1b[2J", "\x1b]0;", "\x07", "\x1b[H", "\x9b", "\r", "\x08"):
        assert sequence not in styled
    assert "[red]markup[/red]" in styled  # shown as text, not interpreted as rich markup
    assert SGR_COLOUR.search(styled)  # colours are still ours to use


@pytest.mark.parametrize("width", [60, 80, 100, 150, 200])
def test_rows_fit_the_width_and_keep_their_figures(clock: FakeClock, width: int) -> None:
    sink = TerminalSink(clock=clock, live=False)
    pull = Task("pull:127.0.0.1:5000/dp/postgres:1", Operation.PULL, Kind.DOWNLOAD, clock=clock)
    logs = Task("logs:compose-project-db-1", Operation.LOGS, Kind.COUNT, clock=clock)
    sink.send(pull.update(current=0, total=2_500_000_000, description="Downloading 3 of 5 layers"))
    sink.send(logs.update(current=12, description="checkpoint complete: wrote 34 buffers " * 3))
    clock.now += 2
    sink.send(pull.update(current=1_250_000_000))
    lines = rows(draw(sink, clock.now, width=width))
    assert len(lines) == 2
    for line in lines:
        assert len(line) <= width
    pull_row, logs_row = lines
    assert pull_row.startswith("› pull:")
    assert "1.2 GB / 2.5 GB" in pull_row
    assert "50%" in pull_row
    assert "625 MB/s" in pull_row
    assert pull_row.endswith("eta 0:02")
    assert logs_row.startswith("› logs:")
    assert "12/?" in logs_row
    if width >= 150:
        assert "pull:127.0.0.1:5000/dp/postgres:1 Downloading 3 of 5 layers" in pull_row


def test_rows_are_ordered_by_priority_then_start(clock: FakeClock) -> None:
    sink = TerminalSink(clock=clock, live=False)
    specs = [("late-important", 0), ("early-minor", 5), ("early-important", 0), ("mid", 2)]
    tasks = {}
    for name, priority in specs:
        clock.now += 1
        tasks[name] = Task(name, Operation.EXEC, Kind.COUNT, priority=priority, clock=clock)
    # They start in this order, which is not the order they were created in.
    for name in ("early-minor", "early-important", "late-important", "mid"):
        clock.now += 1
        sink.send(tasks[name].update(current=1))
    names = [row.split()[1] for row in rows(draw(sink, clock.now))]
    assert names == ["early-important", "late-important", "mid", "early-minor"]


def test_no_color_is_respected(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    task = Task("exec:x", Operation.EXEC, Kind.COUNT, total=10, clock=clock)
    outputs = {}
    for no_color in ("", "1"):
        monkeypatch.setenv("NO_COLOR", no_color)
        stream = io.StringIO()
        sink = TerminalSink(stream, clock=clock)
        assert sink.console.no_color is bool(no_color)
        sink.send(task.snapshot())
        sink.close()
        outputs[no_color] = stream.getvalue()
    assert "exec:x" in outputs["1"]
    assert SGR_COLOUR.search(outputs[""])
    assert not SGR_COLOUR.search(outputs["1"])


def test_redraws_are_throttled_to_ten_a_second() -> None:
    stream = io.StringIO()
    sink = TerminalSink(stream, refresh_per_second=10)
    task = Task("pull:x", Operation.PULL, Kind.DOWNLOAD, total=10**9)
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < 1.2:
        sink.send(task.advance(1_000))  # thousands of events a second
        sent += 1
        if sent % 200 == 0:
            time.sleep(0.001)  # let the refresh thread run, as a real tracker's I/O would
    elapsed = time.monotonic() - started
    frames_while_running = sink.frames
    sink.close()
    assert sent > 1_000
    # Start draws once, then the thread at most 10 a second (+1 for timer granularity).
    assert 3 <= frames_while_running <= 10 * elapsed + 2
    assert humanize.size_pair(task.current, task.total) in stream.getvalue()
