"""The event-line promises, held by ``Task`` under random tracker behaviour (hypothesis).

Every sequence of events a task gives is checked with the same contract validator the CLI
tests use, after a round trip through the JSON line, so the wire form is covered too.
"""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress import Kind, Operation, State, Task, TaskEvent
from dockprogress.task import MAX_RUNNING_PERCENT
from tests.contract import assert_event_lines
from tests.spine.strategies import FakeClock, ops, play

kinds = st.sampled_from(list(Kind))
operations = st.sampled_from(list(Operation))


@settings(max_examples=300, deadline=None)
@given(ops, kinds, operations)
def test_random_updates_keep_every_promise(sequence, kind, operation) -> None:
    run = play(sequence, kind=kind, operation=operation)
    lines = [event.to_json() for event in run.events]
    parsed = assert_event_lines(lines)
    assert len(parsed) == len(run.events)
    terminal = [event for event in run.events if event.terminal]
    assert len(terminal) == 1
    assert terminal[0] is run.events[-1]
    assert run.returned_none_after_end


@settings(max_examples=200, deadline=None)
@given(ops)
def test_percent_is_monotonic_and_below_100_until_done(sequence) -> None:
    run = play(sequence)
    seen: float | None = None
    for event in run.events:
        if seen is not None:
            assert event.percent is not None
            assert event.percent >= seen
        if event.percent is not None:
            seen = event.percent
            if event.state is State.DONE:
                assert event.percent == 100.0
            else:
                assert event.percent <= MAX_RUNNING_PERCENT


@settings(max_examples=200, deadline=None)
@given(ops)
def test_numbers_in_events_are_finite_and_sane(sequence) -> None:
    for event in play(sequence).events:
        for value in (event.current, event.total, event.percent, event.speed, event.eta):
            assert value is None or math.isfinite(value)
        assert event.current >= 0
        assert event.speed is None or event.speed >= 0
        if event.total is not None:
            assert 0 <= event.current <= event.total
        # The round trip through the wire form gives the same event back.
        again = TaskEvent.from_dict(json.loads(event.to_json()))
        assert again.state is event.state
        assert again.current == event.current


def test_total_shrinking_below_current_clamps_current() -> None:
    task = Task("t", Operation.PULL, Kind.DOWNLOAD, clock=FakeClock())
    task.update(current=800, total=1000)
    event = task.update(total=500)
    assert event is not None
    assert (event.current, event.total) == (500, 500)
    assert event.percent == MAX_RUNNING_PERCENT  # 80 % held, capped below 100 until done


def test_own_percent_then_none_stays_monotonic() -> None:
    task = Task("t", Operation.PULL, Kind.DOWNLOAD, clock=FakeClock())
    first = task.update(current=10, total=100, percent=60.0)
    second = task.update(current=20)  # 20 % by bytes, but the tracker had said 60
    assert first is not None
    assert second is not None
    assert first.percent == 60.0
    assert second.percent == 60.0


def test_finish_without_total_records_the_work_done() -> None:
    count = Task("c", Operation.LOGS, Kind.COUNT, clock=FakeClock())
    count.update(current=7)
    done = count.finish()
    assert done is not None
    assert (done.current, done.total, done.percent) == (7, 7, 100.0)
    download = Task("d", Operation.PULL, Kind.DOWNLOAD, clock=FakeClock())
    download.update(current=4096)
    done = download.finish()
    assert done is not None
    assert done.total == done.current == 4096
    assert_event_lines([done.to_json()])


def test_nothing_after_the_end() -> None:
    task = Task("t", Operation.EXEC, Kind.COUNT, total=100, clock=FakeClock())
    assert task.finish() is not None
    assert task.fail("late") is None
    assert task.cancel() is None
    assert task.update(current=5) is None
    assert task.advance(1) is None
    assert task.finish() is None
    assert task.snapshot().state is State.DONE


def test_garbage_numbers_are_ignored() -> None:
    task = Task("t", Operation.EXEC, Kind.COUNT, clock=FakeClock())
    task.update(current=5, total=10)
    event = task.update(current=float("nan"), total=float("inf"), percent=float("nan"))
    assert event is not None
    assert (event.current, event.total, event.percent) == (5, 10, 50.0)
    event = task.update(current=-3, eta=float("inf"))
    assert event is not None
    assert event.current == 5
    assert event.eta is None


def test_speed_and_eta_from_the_window_with_a_fake_clock() -> None:
    clock = FakeClock()
    task = Task("t", Operation.PULL, Kind.DOWNLOAD, total=10_000_000, clock=clock, window=8.0)
    task.update(current=0)
    for _ in range(10):
        clock.now += 1.0
        event = task.advance(500_000)
    assert event is not None
    assert event.speed == 500_000.0
    assert event.eta == 10.0  # 5 MB left at 0.5 MB/s
    clock.now += 1.0
    event = task.update(current=1_000)  # the counter restarted: no negative speed
    assert event is not None
    assert event.speed is None
    assert event.eta is None
