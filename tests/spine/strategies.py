"""Hypothesis strategies shared by the spine's property tests: random tracker behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from dockprogress import Kind, Operation, Task, TaskEvent

amounts = st.one_of(
    st.integers(min_value=0, max_value=10**10).map(float),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), -1.0, -1e9]),  # a parser's garbage
)
totals = st.one_of(st.none(), amounts)
percents = st.one_of(
    st.none(), st.floats(min_value=-50, max_value=150), st.sampled_from([float("nan")])
)

update_op = st.fixed_dictionaries(
    {},
    optional={
        "current": amounts,
        "total": totals,
        "percent": percents,
        "description": st.text(max_size=8),
        "phase": st.one_of(st.none(), st.sampled_from(["downloading", "extracting"])),
        "eta": st.one_of(st.none(), st.floats(allow_nan=True)),
    },
).map(lambda kw: ("update", kw))
advance_op = st.tuples(st.just("advance"), st.floats(min_value=0, max_value=1e7))
end_op = st.sampled_from([("finish", None), ("fail", "disk full"), ("cancel", None)])
sleep_op = st.tuples(st.just("sleep"), st.floats(min_value=0, max_value=30))
snapshot_op = st.just(("snapshot", None))

ops = st.lists(
    st.one_of(update_op, advance_op, sleep_op, snapshot_op, end_op), min_size=0, max_size=40
)


@dataclass
class FakeClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    """The events one task gave for a sequence of operations."""

    task: Task
    events: list[TaskEvent] = field(default_factory=list)
    returned_none_after_end: bool = True


def play(
    operations: list[tuple[str, Any]],
    *,
    kind: Kind = Kind.DOWNLOAD,
    operation: Operation = Operation.PULL,
    task_id: str = "t",
    clock: FakeClock | None = None,
    end: bool = True,
) -> Run:
    """Apply ``operations`` to a fresh task; finish it at the end when ``end`` (and not ended)."""
    clock = clock if clock is not None else FakeClock()
    task = Task(task_id, operation, kind, clock=clock)
    run = Run(task)
    for name, arg in operations:
        ended_before = task.ended
        if name == "sleep":
            clock.now += arg
            continue
        if name == "update":
            event = task.update(**arg)
        elif name == "advance":
            event = task.advance(arg)
        elif name == "finish":
            event = task.finish()
        elif name == "fail":
            event = task.fail(arg)
        elif name == "cancel":
            event = task.cancel(arg)
        else:
            event = task.snapshot()
            if ended_before:
                continue  # a snapshot after the end is a re-read, not a new event
        if ended_before and name != "snapshot":
            run.returned_none_after_end &= event is None
        if event is not None:
            run.events.append(event)
        clock.now += 0.05
    if end and not task.ended:
        final = task.finish()
        assert final is not None
        run.events.append(final)
    return run
