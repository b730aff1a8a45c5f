"""The dashboard hub at fleet scale: events/s with 1k, 10k and 100k running tasks, bytes per task.

Input: ``size`` distinct running tasks spread over 10 nodes (a fleet's shape), published
into an :class:`~dockprogress.sinks.web.hub.EventHub` with one subscribed client that never
reads (its mailbox holds one message per task: the worst case the slow-client policy allows);
then ``updates`` progress events cycling over those tasks, timed. The events are built before
the clock starts, so the figure is the hub's own cost (serialising each event once,
coalescing into the mailbox, the history bookkeeping).

Memory: the Python heap traced (``tracemalloc``) while ``size`` tasks are published, divided
by ``size``: the hub's entry, the event, its serialised form and the client's pending message.

Before issue 14 the hub scanned every task on each publish once more than 1000 ran (551
events/s at 8000 running tasks); the target is flat: at least 20,000 events/s at 100k.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
import tracemalloc
from typing import Any

from bench.harness import Comparison, Family, Figure, Target
from dockprogress.events import Kind, Operation, State, TaskEvent
from dockprogress.sinks.web.hub import EventHub

__all__ = ["SIZES", "bytes_per_task", "events_per_second", "run"]

SIZES = (1_000, 10_000, 100_000)
NODES = 10


def _tasks(size: int) -> list[TaskEvent]:
    template = TaskEvent(
        ts=time.time(),
        task="",
        operation=Operation.PULL,
        kind=Kind.DOWNLOAD,
        state=State.RUNNING,
        current=0,
        total=50_000_000,
        percent=0.0,
        description="downloading",
        phase="downloading",
        speed=5_000_000.0,
        eta=10.0,
        detail={"layers": 3},
    )
    return [
        dataclasses.replace(
            template, task=f"pull:127.0.0.1:5000/app/{i}:1", node=f"node-{i % NODES}"
        )
        for i in range(size)
    ]


def events_per_second(size: int, updates: int = 100_000) -> float:
    """Publish ``size`` running tasks, then time ``updates`` events over them; events/s."""
    created = _tasks(size)
    moves = [
        dataclasses.replace(
            created[i % size], current=1000 + i, percent=min(99.0, 1 + i / updates * 90)
        )
        for i in range(updates)
    ]

    async def scenario() -> float:
        hub = EventHub(max_live_per_node=size)
        async with hub.subscribe() as subscription:  # a client that never reads
            for event in created:
                hub.publish(event)
            gc.collect()
            start = time.perf_counter()
            for event in moves:
                hub.publish(event)
            elapsed = time.perf_counter() - start
            assert subscription.pending == size
        return updates / elapsed

    return asyncio.run(scenario())


def bytes_per_task(size: int = 10_000) -> float:
    """Heap bytes the hub (and one non-reading client) hold per running task."""
    created = _tasks(size)

    async def scenario() -> float:
        hub = EventHub(max_live_per_node=size)
        async with hub.subscribe():
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for event in created:
                hub.publish(event)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        return (after - before) / size

    return asyncio.run(scenario())


def run(runs: int = 3, sizes: tuple[int, ...] = SIZES, updates: int = 100_000) -> Family:
    started = time.perf_counter()
    figures: dict[int, Figure] = {}
    for size in sizes:
        rates = [events_per_second(size, updates) for _ in range(runs)]
        figures[size] = Figure(f"hub events/s, {size:,} running tasks", "events/s", rates)
    memory = Figure(
        "hub bytes per running task", "bytes", [bytes_per_task() for _ in range(runs)], False
    )
    smallest, largest = figures[sizes[0]], figures[sizes[-1]]
    family = Family("hub")
    family.comparisons.append(
        Comparison(
            f"hub throughput at {sizes[-1]:,} running tasks (vs {sizes[0]:,}: flat is 1.0x)",
            largest,
            [figures[s] for s in sizes[:-1]],
            input=f"{updates:,} progress events over tasks of {NODES} nodes, one idle client",
        )
    )
    family.comparisons.append(
        Comparison("hub memory", memory, [], input="10,000 running tasks", ratios=False)
    )
    details: dict[str, Any] = {s: round(f.median) for s, f in figures.items()}
    family.notes.append(f"events/s by running tasks: {details}")
    family.targets.append(
        Target(
            f"hub holds {sizes[-1]:,} running tasks at >= 20,000 events/s",
            largest.median,
            20_000.0,
            "events/s",
            True,
        )
    )
    family.targets.append(
        Target(
            "hub throughput flat from 1k to 100k running tasks (ratio >= 0.5)",
            largest.median / smallest.median,
            0.5,
            "x",
            True,
        )
    )
    family.seconds = time.perf_counter() - started
    return family
