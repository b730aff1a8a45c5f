"""Feeding recorded streams to the build and push trackers, whole, message by message, split.

The recordings are in tests/fixtures/build (see its README.md for how they were made).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.events import State, TaskEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "build"


def recording(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class StepClock:
    """A clock that moves 10 ms each time it is read."""

    def __init__(self, start: float = 1_700_000_000.0, step: float = 0.01) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def chunks(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def feed_jsonlines(
    tracker: Any, parts: list[bytes], end: Callable[[], TaskEvent | None] | None = None
) -> list[TaskEvent]:
    decoder = JsonLinesDecoder()
    events: list[TaskEvent | None] = [tracker.begin()]
    for part in parts:
        for message in decoder.decode(part):
            events.append(tracker.feed(message))
    for message in decoder.flush():
        events.append(tracker.feed(message))
    events.append(end() if end is not None else tracker.feed_eof())
    return [e for e in events if e is not None]


def assert_promises(events: list[TaskEvent]) -> None:
    """The event-line promises for one task's events."""
    assert events, "no events"
    percents = [e.percent for e in events if e.percent is not None]
    assert percents == sorted(percents), "percent went backwards"
    terminal = [e for e in events if e.terminal]
    assert len(terminal) == 1, "exactly one terminal event"
    assert events[-1].terminal, "the terminal event is the last"
    for event in events:
        if event.percent == 100:
            assert event.state is State.DONE, "100 % only on done"
        if event.total is not None:
            assert event.current <= event.total
