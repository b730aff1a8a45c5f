"""``IncrementAdapter``: absolute snapshots in, the seed's increments out.

The handler here is a plain recorder implementing the ``MessageHandler`` protocol, the way
an application would; the events come from real ``Task`` objects or are random snapshots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress import IncrementAdapter, Kind, MessageHandler, Operation, State, Task, TaskEvent
from tests.spine.strategies import FakeClock, ops, play


@dataclass
class Recorder:
    """A ``MessageHandler`` that keeps every call, and each task's bar as a handler sees it."""

    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    bars: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int | None] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    def increment_progress(  # noqa: PLR0917
        self,
        task_id: str,
        increment: int,
        total: int | None,
        priority: int,
        operation: str,
        description: str,
        size: str,
    ) -> None:
        self._add("count", task_id, increment, total)
        self.calls.append(
            (
                "increment_progress",
                (task_id, increment, total, priority, operation, description, size),
            )
        )

    def increment_download_progress(  # noqa: PLR0917
        self,
        task_id: str,
        increment: int,
        total: int | None,
        priority: int,
        operation: str,
        description: str,
        height_class: str,
        humanized_size: str,
    ) -> None:
        self._add("download", task_id, increment, total)
        self.calls.append(
            (
                "increment_download_progress",
                (
                    task_id,
                    increment,
                    total,
                    priority,
                    operation,
                    description,
                    height_class,
                    humanized_size,
                ),
            )
        )

    def remove_progress(self, task_id: str) -> None:
        self.removed.add(task_id)
        self.calls.append(("remove_progress", (task_id,)))

    def reset_progress(self, task_id: str) -> None:
        self.bars[task_id] = 0
        self.calls.append(("reset_progress", (task_id,)))

    def _add(self, _kind: str, task_id: str, increment: int, total: int | None) -> None:
        assert type(increment) is int
        assert increment > 0, f"increment {increment} for {task_id}"
        assert total is None or type(total) is int
        self.bars[task_id] = self.bars.get(task_id, 0) + increment
        self.totals[task_id] = total


def test_recorder_is_a_message_handler() -> None:
    assert isinstance(Recorder(), MessageHandler)


@settings(max_examples=300, deadline=None)
@given(ops, st.sampled_from(list(Kind)))
def test_increments_of_a_task_sum_to_its_final_current(sequence, kind) -> None:
    run = play(sequence, kind=kind)
    recorder = Recorder()
    adapter = IncrementAdapter(recorder)
    for event in run.events:
        adapter.send(event)
        # At every step the handler's bar is exactly the task's whole units so far.
        assert recorder.bars.get("t", 0) == math.floor(event.current)
    final = run.events[-1]
    assert recorder.bars.get("t", 0) == math.floor(final.current)
    if final.state is State.DONE and final.total is not None:
        assert recorder.bars.get("t", 0) == math.floor(final.total)
        if math.floor(final.current) > 0:
            assert recorder.totals["t"] == math.floor(final.total)
    assert ("t" in recorder.removed) == (final.state in (State.ERROR, State.CANCELLED))


snapshot_values = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.floats(min_value=0, max_value=1e12, allow_nan=False),
        st.one_of(st.none(), st.floats(min_value=0, max_value=1e12, allow_nan=False)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(snapshot_values)
def test_random_snapshots_of_interleaved_tasks(values) -> None:
    """Any absolute values, even going down: increments stay positive and add up."""
    recorder = Recorder()
    adapter = IncrementAdapter(recorder)
    latest: dict[str, float] = {}
    for ts, (task, current, total) in enumerate(values, 1):
        event = TaskEvent(
            ts=float(ts),
            task=task,
            operation=Operation.EXEC,
            kind=Kind.COUNT,
            state=State.RUNNING,
            current=current,
            total=total,
            percent=None,
        )
        adapter.send(event)
        latest[task] = current
    for task, current in latest.items():
        assert recorder.bars.get(task, 0) == math.floor(current)
        assert adapter.sent(task) == math.floor(current)
    resets = sum(1 for name, _ in recorder.calls if name == "reset_progress")
    decreases = sum(
        1
        for task in latest
        for before, after in pairwise([math.floor(v) for t, v, _ in values if t == task])
        if after < before
    )
    assert resets == decreases


def test_total_changing_mid_way_causes_no_drift() -> None:
    clock = FakeClock()
    task = Task("pull:x", Operation.PULL, Kind.DOWNLOAD, total=1_000, clock=clock, priority=3)
    recorder = Recorder()
    adapter = IncrementAdapter(recorder, height_class="h-3")
    for change in (
        {"current": 300},
        {"total": 5_000},  # a layer's size learned late: no increment, nothing lost
        {"current": 2_500},
        {"total": 4_000, "current": 3_999},
    ):
        event = task.update(**change)
        assert event is not None
        adapter.send(event)
    done = task.finish()
    assert done is not None
    adapter.send(done)
    increments = [args[1] for name, args in recorder.calls if name == "increment_download_progress"]
    assert increments == [300, 2_200, 1_499, 1]
    assert sum(increments) == 4_000
    name, args = recorder.calls[-1]
    assert name == "increment_download_progress"
    assert args == ("pull:x", 1, 4_000, 3, "pull", "", "h-3", "4.0 kB / 4.0 kB")
    assert "pull:x" not in recorder.removed


def test_total_learned_only_at_the_end_restarts_the_bar_explicitly() -> None:
    task = Task("logs:db", Operation.LOGS, Kind.COUNT, clock=FakeClock())
    recorder = Recorder()
    adapter = IncrementAdapter(recorder)
    for event in (task.update(current=5), task.update(current=9), task.finish()):
        assert event is not None
        adapter.send(event)
    names = [name for name, _ in recorder.calls]
    assert names == [
        "increment_progress",
        "increment_progress",
        "reset_progress",
        "increment_progress",
    ]
    assert recorder.calls[-1][1] == ("logs:db", 9, 9, 0, "logs", "", "9/9")
    assert recorder.bars["logs:db"] == 9


def test_errors_and_cancels_remove_the_bar_and_nothing_follows() -> None:
    recorder = Recorder()
    adapter = IncrementAdapter(recorder, remove_on_done=True)
    clock = FakeClock()
    failing = Task("exec:a", Operation.EXEC, Kind.COUNT, total=100, clock=clock)
    cancelled = Task("exec:b", Operation.EXEC, Kind.COUNT, total=100, clock=clock)
    finishing = Task("exec:c", Operation.EXEC, Kind.COUNT, total=100, clock=clock)
    events = [
        failing.update(current=40),
        cancelled.update(current=10, description="\x1b[31mred\x1b[0m step"),
        failing.fail("exit code 2"),
        cancelled.cancel(),
        finishing.finish(),
    ]
    for event in events:
        assert event is not None
        adapter.send(event)
    adapter.send(failing.snapshot())  # a re-read after the end changes nothing
    assert recorder.removed == {"exec:a", "exec:b", "exec:c"}
    assert [name for name, _ in recorder.calls].count("remove_progress") == 3
    description = next(args[5] for name, args in recorder.calls if args[0] == "exec:b")
    assert description == "red step"  # no escape sequence reaches the handler
    assert recorder.bars == {"exec:a": 40, "exec:b": 10, "exec:c": 100}


def test_fractional_counts_never_send_zero() -> None:
    task = Task("run:x", Operation.RUN, Kind.COUNT, total=100, clock=FakeClock())
    recorder = Recorder()
    adapter = IncrementAdapter(recorder)
    for current in (0.2, 0.7, 1.1, 1.9, 2.0, 2.4, 99.5):
        event = task.update(current=current)
        assert event is not None
        adapter.send(event)
    done = task.finish()
    assert done is not None
    adapter.send(done)
    increments = [args[1] for _, args in recorder.calls]
    assert increments == [1, 1, 97, 1]
