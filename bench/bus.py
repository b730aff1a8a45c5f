"""The Redis bus end to end: events/s from publishing nodes through the real Redis into a
replica's hub, against redis-py's plain XADD/XREAD in the same run; Redis memory per 1,000
tasks.

Input: the test bed's redis-server (scripts/testbed_redis.py, database 4, flushed before each
run). ``nodes`` publishing nodes, each its own process as on a real fleet, make ``events``
progress events for each of ``tasks`` tasks and then each task's final state, in rounds (every
task's first event, then every task's second, ...), before the clock starts; on a common
start signal they publish them as fast as they can. The replica is this process: one feed
into one :class:`~dockprogress.sinks.web.hub.EventHub`. The clock runs from the start signal
to the moment the hub holds every task ended.

Two ways, measured alternately on the same events:

* **dockprogress bus**: :class:`~dockprogress.bus.publisher.RedisPublisher` in each node
  (batched publish script: stream entry, latest state, history) and
  :class:`~dockprogress.bus.feed.RedisFeed` (kept last id, stale judgement, lines passed
  through to the hub).
* **baseline**: what anyone would write with redis-py alone: each event ``json.dumps``-ed and
  appended with ``XADD`` (``MAXLEN ~``), pipelined 1,000 at a time; a consumer thread doing
  ``XREAD COUNT 1000 BLOCK``, ``json.loads``, ``TaskEvent.from_dict`` and ``hub.publish``.
  No latest-state hash, no history, no coalescing: the floor of the transport.

``send`` never blocks, and the bus coalesces a task's pending states while a batch is in
flight (its contract): publishing pre-made events in a tight loop would measure how much it
coalesces, not what it carries. So each bus node waits while :data:`HIGH_WATER` of its events
are not yet written (``publisher.pending``), like the baseline's synchronous pipeline waits
for its replies; a round of 1,000 distinct tasks is then never coalesced, and the figure is
events *delivered* per second (events that went through Redis into the hub). The notes say
how many were coalesced all the same.

Memory: ``INFO memory`` ``used_memory`` after a bus run minus before, per 1,000 tasks (the
hash of latest states, the history set, and the stream entries those tasks wrote).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import Comparison, Family, Figure, Target

ROOT = Path(__file__).resolve().parents[1]
DB = 4
#: The issue's goal for events/s through the bus.
GOAL = 20_000.0
BATCH = 1000
#: A node waits while this many of its events are not yet written (see the module notes).
HIGH_WATER = 1000


def _bed_url() -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    import testbed_redis

    state = Path(os.environ.get("TESTBED_DIR", ROOT / ".testbed")).resolve()
    testbed_redis.ensure_redis(state)
    return f"redis://127.0.0.1:{testbed_redis.PORT}/{DB}"


def make_events(node: str, tasks: int, events: int) -> list[Any]:
    """``events`` - 1 progress events per task in rounds, then every task's final state."""
    from dockprogress.events import Kind, Operation
    from dockprogress.task import Task

    trackers = [Task(f"run:{i}", Operation.RUN, Kind.COUNT, total=events) for i in range(tasks)]
    made = []
    for step in range(1, events):
        for tracker in trackers:
            event = tracker.update(current=step)
            if event is not None:
                made.append(dataclasses.replace(event, node=node))
    for tracker in trackers:
        ended = tracker.finish()
        if ended is not None:
            made.append(dataclasses.replace(ended, node=node))
    return made


def _node_main(job: dict[str, Any], ready: Any, go: Any, results: Any) -> None:
    """One publishing node (a child process): make the events, wait for ``go``, publish.

    ``job``: ``way`` (``bus`` or ``raw``), ``url``, ``node``, ``tasks``, ``events``.
    """
    import redis

    from dockprogress.bus.publisher import RedisPublisher
    from dockprogress.bus.redisstreams import Layout

    way, url, node = job["way"], job["url"], job["node"]
    made = make_events(node, job["tasks"], job["events"])
    report: dict[str, Any] = {"node": node, "sent": len(made)}
    if way == "bus":
        publisher = RedisPublisher(url, node, heartbeat=60.0)
        ready.put(node)
        go.wait()
        started = time.perf_counter()
        send = publisher.send
        for event in made:
            while publisher.pending >= HIGH_WATER:  # the flow control a measurement needs
                time.sleep(0.0005)
            send(event)
        report["send_seconds"] = time.perf_counter() - started
        publisher.close()
        report |= {"written": publisher.sent, "coalesced": publisher.coalesced}
    else:
        client = redis.Redis.from_url(url)
        stream = Layout().stream
        ready.put(node)
        go.wait()
        started = time.perf_counter()
        for at in range(0, len(made), BATCH):
            pipe = client.pipeline(transaction=False)
            for event in made[at : at + BATCH]:
                pipe.xadd(stream, {"e": json.dumps(event.to_dict())}, maxlen=100_000)
            pipe.execute()
        report["send_seconds"] = time.perf_counter() - started
        report["written"] = len(made)
        client.close()
    results.put(report)


class _RawConsumer:
    """The baseline's replica side: XREAD, json.loads, from_dict, hub.publish."""

    def __init__(self, url: str, hub: Any) -> None:
        import redis

        from dockprogress.bus.redisstreams import Layout

        self.client = redis.Redis.from_url(url)
        self.hub = hub
        self.stream = Layout().stream
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _RawConsumer:
        self._thread.start()
        return self

    def _run(self) -> None:
        from dockprogress.events import TaskEvent

        last = b"0-0"
        while not self._stop.is_set():
            reply = self.client.xread({self.stream: last}, count=1000, block=200)
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id
                    self.hub.publish(TaskEvent.from_dict(json.loads(fields[b"e"])))
                    self.received += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.close()


def end_to_end(
    url: str, way: str = "bus", *, nodes: int = 3, tasks: int = 1000, events: int = 20
) -> dict[str, float]:
    """One run of ``way`` (``bus`` or ``raw``); its figures."""
    import redis

    from dockprogress.bus.feed import RedisFeed
    from dockprogress.sinks.web.hub import EventHub

    sync = redis.Redis.from_url(url)
    sync.flushdb()
    memory_before = int(sync.info("memory")["used_memory"])
    hub = EventHub()
    consumer: Any = (
        RedisFeed(url, hub, node_timeout=600).start()
        if way == "bus"
        else _RawConsumer(url, hub).start()
    )
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    procs = [
        context.Process(
            target=_node_main,
            args=(
                {
                    "way": way,
                    "url": url,
                    "node": f"bench-node-{n}",
                    "tasks": tasks,
                    "events": events,
                },
                ready,
                go,
                results,
            ),
            daemon=True,
        )
        for n in range(nodes)
    ]
    for proc in procs:
        proc.start()
    waiting, deadline = len(procs), time.monotonic() + 120
    while waiting:
        try:
            ready.get(timeout=1)
            waiting -= 1
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                for proc in procs:
                    proc.kill()
                consumer.close()
                raise RuntimeError(f"a publishing node did not start (exit codes {dead})") from None
    total_tasks = nodes * tasks
    start = time.perf_counter()
    go.set()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if len(hub) >= total_tasks and hub.live_count() == 0:
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    reports = []
    for _ in procs:
        try:
            reports.append(results.get(timeout=60))
        except queue.Empty:
            break
    for proc in procs:
        proc.join(30)
    from dockprogress.events import State

    done = sum(1 for e in hub.tasks() if e.state is State.DONE)
    delivered = consumer.received
    consumer.close()
    memory_after = int(sync.info("memory")["used_memory"])
    sync.flushdb()
    sync.close()
    sent = sum(r["sent"] for r in reports)
    return {
        "delivered_per_s": delivered / elapsed,
        "sent_per_s": sent / elapsed,
        "send_only_per_s": sent / max(r["send_seconds"] for r in reports),
        "delivered": float(delivered),
        "written": float(sum(r["written"] for r in reports)),
        "sent": float(sent),
        "redis_bytes_per_1000_tasks": (memory_after - memory_before) / total_tasks * 1000,
        "seconds": elapsed,
        "arrived": done / total_tasks,
    }


def run(runs: int = 3, tasks: int = 1000, events: int = 20, nodes: int = 3) -> Family:
    started = time.perf_counter()
    url = _bed_url()
    bus_runs: list[dict[str, float]] = []
    raw_runs: list[dict[str, float]] = []
    for _ in range(runs):  # alternately, so both see the same neighbours
        bus_runs.append(end_to_end(url, "bus", nodes=nodes, tasks=tasks, events=events))
        raw_runs.append(end_to_end(url, "raw", nodes=nodes, tasks=tasks, events=events))
    delivered = Figure(
        "events/s delivered through the bus to a replica's hub",
        "events/s",
        [r["delivered_per_s"] for r in bus_runs],
    )
    raw = Figure(
        "json.dumps + redis-py XADD (pipelined) / XREAD + json.loads",
        "events/s",
        [r["delivered_per_s"] for r in raw_runs],
    )
    memory = Figure(
        f"Redis memory per 1,000 finished tasks (their states, history, {events:,} stream "
        "entries each)",
        "bytes",
        [r["redis_bytes_per_1000_tasks"] for r in bus_runs],
        False,
    )
    family = Family("bus")
    shape = f"{nodes} x {tasks:,} tasks x {events} events (the last each task's final state)"
    family.comparisons.append(
        Comparison(
            f"bus end to end ({nodes} node processes -> Redis 7.0 -> 1 replica's hub)",
            delivered,
            [raw],
            input=shape,
        )
    )
    family.comparisons.append(Comparison("Redis memory", memory, [], ratios=False))
    share = [r["delivered"] / r["sent"] for r in bus_runs]
    family.notes.append(
        f"delivered / sent: {', '.join(f'{s:.0%}' for s in share)} (the rest coalesced in the "
        "nodes' queues while a batch was in flight, as the bus allows; every final state "
        "arrives); the baseline delivers all it sends but keeps no latest state, history or "
        "node times, and a replica joining late could not catch up from it"
    )
    family.targets.append(
        Target(
            f"bus delivers >= {GOAL:,.0f} events/s end to end",
            delivered.median,
            GOAL,
            "events/s",
            True,
        )
    )
    family.targets.append(
        Target(
            "every task's final state reaches the replica",
            100 * min(r["arrived"] for r in bus_runs),
            100.0,
            "%",
            True,
        )
    )
    family.seconds = time.perf_counter() - started
    return family


if __name__ == "__main__":  # one run of each way against a given URL, for profiling
    target = sys.argv[1] if len(sys.argv) > 1 else _bed_url()
    ways = sys.argv[2].split(",") if len(sys.argv) > 2 else ["bus", "raw"]
    for name in ways:
        figures = end_to_end(target, name)
        print(name, json.dumps({k: round(v, 3) for k, v in figures.items()}), flush=True)
