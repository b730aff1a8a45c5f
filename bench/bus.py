"""The Redis bus end to end: events/s from publishers through the real Redis into a replica's
hub, and Redis memory per 1,000 tasks.

Input: the test bed's redis-server (scripts/testbed_redis.py, database 4, flushed first).
``nodes`` publishers (:class:`~dockprogress.bus.publisher.RedisPublisher`, one per simulated
node, in this process) each send ``events`` progress events over ``tasks`` tasks, then a
final state for each; one :class:`~dockprogress.bus.feed.RedisFeed` feeds a hub. The clock
runs from the first send to the moment the hub holds every task ``done``. Coalescing is
allowed by the bus's contract, so the figure counts events *sent* per second (what trackers
can push), and the notes say how many were written to Redis.

Memory: ``INFO memory`` ``used_memory`` after the run minus before, per 1,000 tasks (the
hash of latest states, the history set, and the stream entries those tasks wrote).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from bench.harness import Comparison, Family, Figure, Target
from dockprogress.bus.feed import RedisFeed
from dockprogress.bus.publisher import RedisPublisher
from dockprogress.events import Kind, Operation, State
from dockprogress.sinks.web.hub import EventHub
from dockprogress.task import Task

ROOT = Path(__file__).resolve().parents[1]
DB = 4


def _bed_url() -> str:
    import os

    sys.path.insert(0, str(ROOT / "scripts"))
    import testbed_redis

    state = Path(os.environ.get("TESTBED_DIR", ROOT / ".testbed")).resolve()
    testbed_redis.ensure_redis(state)
    return f"redis://127.0.0.1:{testbed_redis.PORT}/{DB}"


def end_to_end(
    url: str, *, nodes: int = 3, tasks: int = 1000, events: int = 20
) -> dict[str, float]:
    import redis

    sync = redis.Redis.from_url(url)
    sync.flushdb()
    memory_before = int(sync.info("memory")["used_memory"])
    hub = EventHub()
    feed = RedisFeed(url, hub, node_timeout=600).start()
    publishers = [RedisPublisher(url, f"bench-node-{n}") for n in range(nodes)]
    total_tasks = nodes * tasks

    def publish(publisher: RedisPublisher) -> None:
        trackers = [Task(f"run:{i}", Operation.RUN, Kind.COUNT, total=events) for i in range(tasks)]
        for step in range(1, events):
            for tracker in trackers:
                event = tracker.update(current=step)
                if event is not None:
                    publisher.send(event)
        for tracker in trackers:
            ended = tracker.finish()
            if ended is not None:
                publisher.send(ended)

    start = time.perf_counter()
    threads = [threading.Thread(target=publish, args=(p,)) for p in publishers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = sum(1 for e in hub.tasks() if e.state is State.DONE)
        if done >= total_tasks:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    arrived = sum(1 for e in hub.tasks() if e.state is State.DONE) / total_tasks
    written = sum(p.sent for p in publishers)
    for publisher in publishers:
        publisher.close()
    feed.close()
    memory_after = int(sync.info("memory")["used_memory"])
    sync.flushdb()
    sync.close()
    return {
        "sent_per_s": nodes * tasks * events / elapsed,
        "written": float(written),
        "sent": float(nodes * tasks * events),
        "redis_bytes_per_1000_tasks": (memory_after - memory_before) / total_tasks * 1000,
        "seconds": elapsed,
        "arrived": arrived,
    }


def run(runs: int = 3, tasks: int = 1000, events: int = 20) -> Family:
    started = time.perf_counter()
    url = _bed_url()
    results = [end_to_end(url, tasks=tasks, events=events) for _ in range(runs)]
    rate = Figure(
        "events/s sent through the bus to a replica's hub",
        "events/s",
        [r["sent_per_s"] for r in results],
    )
    memory = Figure(
        "Redis memory per 1,000 finished tasks",
        "bytes",
        [r["redis_bytes_per_1000_tasks"] for r in results],
        False,
    )
    family = Family("bus")
    family.comparisons.append(
        Comparison(
            "bus end to end (3 nodes -> Redis 7.0 -> 1 replica)",
            rate,
            [],
            input=f"3 x {tasks:,} tasks x {events} events, then each task's final state",
            ratios=False,
        )
    )
    family.comparisons.append(Comparison("Redis memory", memory, [], ratios=False))
    share = [r["written"] / r["sent"] for r in results]
    family.notes.append(
        f"written to Redis / sent: {', '.join(f'{s:.0%}' for s in share)} (the rest coalesced "
        "in the publishers' queues while a batch was in flight, as the bus allows)"
    )
    family.targets.append(
        Target(
            "every task's final state reaches the replica",
            100 * min(r["arrived"] for r in results),
            100.0,
            "%",
            True,
        )
    )
    family.seconds = time.perf_counter() - started
    return family
