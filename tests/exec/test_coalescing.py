"""ExecTracker's coalescing: the board reads the held-back frames at most once per
``min_interval`` of the injected clock, and the events stay independent of the chunking.

The clock here advances by a fixed step on every call: the tracker reads it once per frame
(and the task once per event), so its readings depend only on the frames, never on where
the reads were cut, and the same bytes must give the same events in any chunking.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from dockprogress.core.execprogress import MIN_INTERVAL, ExecTracker
from tests.exec.recordings import ALL, chunks, load, replay

STEP = MIN_INTERVAL / 8  # about eight frames per read of the board


def _stepping_clock(step: float = STEP) -> Any:
    ticks = itertools.count()
    return lambda: 1000.0 + step * next(ticks)


def _coalesced(pieces: list[bytes]) -> list[dict[str, Any]]:
    tracker = ExecTracker("exec:test", description="demo", clock=_stepping_clock())
    events = [e for e in [tracker.start()] if e is not None]
    for piece in pieces:
        events.extend(tracker.feed(piece))
    events.extend(tracker.feed_eof())
    end = tracker.exit(0)
    assert end is not None
    events.append(end)
    return [event.to_dict() for event in events]


@pytest.mark.parametrize("name", ALL)
def test_coalesced_events_are_the_same_for_any_chunking(name: str) -> None:
    data = load(name)
    whole = _coalesced([data])
    assert _coalesced([data[i : i + 1] for i in range(len(data))]) == whole
    rng = random.Random(name)
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, len(data)), min(40, len(data) - 1)))
        assert _coalesced(chunks(data, cuts)) == whole


@pytest.mark.parametrize("name", ALL)
def test_coalescing_keeps_the_end_state_and_never_goes_back(name: str) -> None:
    coalesced = [e for e in _coalesced([load(name)]) if e["state"] == "running"]
    every = [e for e in replay([load(name)]) if e["state"] == "running"]
    assert len(coalesced) <= len(every)
    percents = [e["percent"] for e in coalesced if e["percent"] is not None]
    assert percents == sorted(percents)
    if every:
        assert coalesced[-1]["percent"] == every[-1]["percent"]
        assert coalesced[-1]["total"] == every[-1]["total"]


def test_a_fast_bar_is_read_a_few_times_not_per_redraw() -> None:
    data = load("tqdm_fast")
    coalesced = [e for e in _coalesced([data]) if e["state"] == "running"]
    every = [e for e in replay([data]) if e["state"] == "running"]
    assert len(every) > 500  # tqdm with mininterval=0: a frame per item, an event per 0.1 %
    assert 3 <= len(coalesced) <= len(every) // 2


def test_held_frames_are_read_when_output_pauses() -> None:
    # A fixed clock: every frame comes within min_interval of the first read, so the frames
    # after it wait, and flush_partial (the adapter's idle call) shows the latest of them.
    tracker = ExecTracker("exec:test", clock=lambda: 0.0)
    data = load("tqdm_one")
    first = tracker.feed(data[: len(data) // 2])
    assert len([e for e in first if e.percent is not None]) <= 1
    flushed = tracker.flush_partial()
    assert flushed
    assert flushed[-1].percent is not None
    assert flushed[-1].percent > max((e.percent or 0.0 for e in first), default=0.0)
