"""The read loop shared by exec and run: a bar's new state shows as soon as its bytes stop.

tqdm ends a frame only with the ``\\r`` of its *next* update, so waiting for terminators (or
for a long silence) would show every update one update late. The loop polls right after a
read and, when nothing more is waiting, parses the row being written.
"""

from __future__ import annotations

from collections import deque

from dockprogress.core.execprogress import ExecTracker
from dockprogress.events import Kind
from dockprogress.local._pump import IDLE_FLUSH, pump

FRAME = b"\rwork:  45%|####5     | 45/100 [00:01<00:01, 45.00it/s]"


class ScriptedReader:
    """A TTY source that answers each read from a script and records the timeouts asked."""

    def __init__(self, answers: list[bytes | None]) -> None:
        self.answers = deque(answers)
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> bytes | None:
        self.timeouts.append(timeout)
        return self.answers.popleft()


def test_the_row_being_written_shows_as_soon_as_the_output_pauses() -> None:
    tracker = ExecTracker("run:t", clock=lambda: 0.0, kind=Kind.COUNT)
    reader = ScriptedReader([FRAME, None, b""])
    events = []
    loop = pump(reader, tracker)
    for event in loop:
        events.append((len(reader.timeouts), event))
    # The 45 % event came from the poll right after the read (timeout 0), not after a wait.
    assert reader.timeouts[:2] == [IDLE_FLUSH, 0.0]
    at_45 = [calls for calls, event in events if event.percent == 45.0]
    assert at_45
    assert at_45[0] == 2


def test_a_burst_split_over_reads_is_polled_through_before_parsing() -> None:
    tracker = ExecTracker("run:t", clock=lambda: 0.0, kind=Kind.COUNT)
    half = len(FRAME) // 2
    reader = ScriptedReader([FRAME[:half], FRAME[half:], None, b""])
    percents = [event.percent for event in pump(reader, tracker) if event.percent]
    assert reader.timeouts[:3] == [IDLE_FLUSH, 0.0, 0.0]
    assert 45.0 in percents
    assert all(p == 45.0 for p in percents if p < 100)  # never a half-read number like 4%
