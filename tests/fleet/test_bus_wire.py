"""What travels on the bus, byte for byte: a publisher's event lines reach browsers as they
were written; anything else reaches them only in the contract's form; one publish script call
keeps the history set and the latest-state hash together however many events it carries."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from dockprogress.bus.feed import RedisFeed, _wire_form
from dockprogress.bus.publisher import RedisPublisher
from dockprogress.bus.redisstreams import PUBLISH_SCRIPT, Layout, task_field
from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.sinks.web.hub import EventHub
from dockprogress.task import Task
from tests.pull.recordings import load, manifest, replay


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _recorded_events() -> list[TaskEvent]:
    """A real pull's events (layers in ``detail``, bytes, speeds), then a run with odd text."""
    rec = load("fresh_layers")
    events = replay(rec, [rec.raw], sizes=manifest("dp_layers_1").sizes)
    task = Task('run:naïve «quoted» "x"\n', Operation.RUN, Kind.COUNT, total=3)
    for step in range(1, 3):
        event = task.update(current=step, description=f"étape {step} \u2713 \\ \t")
        assert event is not None
        events.append(event)
    failed = task.fail("exit status 3: \u00e9chec")
    assert failed is not None
    return [*events, failed]


def _payloads(hub: EventHub) -> dict[str, str]:
    """Task id -> the ``"event":...`` text of its entry as the hub hands it out."""
    out = {}
    for entry in json.loads(hub.entries_json()):
        out[entry["event"]["task"]] = entry["event"]
    return out


def test_every_line_a_tracker_writes_has_the_wire_form() -> None:
    for event in _recorded_events():
        data = json.loads(event.to_json(node="n"))
        assert _wire_form(data)
        assert TaskEvent.from_dict(data) == TaskEvent.from_dict(json.loads(json.dumps(data)))
        assert TaskEvent.from_dict(data).to_json() == event.to_json(node="n")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"extra": "<b>x</b>"}, "a field the contract does not have"),
        ({"current": "5"}, "a number written as text"),
        ({"total": True}, "a boolean for a number"),
        ({"priority": 1.5}, "a fraction for the priority"),
        ({"description": 7}, "a number for text"),
        ({"detail": None}, "null for the detail object"),
        ({"error": ["x"]}, "a list for the error text"),
    ],
)
def test_anything_else_is_not_passed_through(change: dict[str, Any], why: str) -> None:
    event = Task("run:x", Operation.RUN, Kind.COUNT, total=10).update(current=5)
    assert event is not None
    data = {**json.loads(event.to_json(node="n")), **change}
    assert not _wire_form(data), why


def test_a_publisher_s_lines_reach_the_hub_as_written(bus_url: str, sync_redis: Any) -> None:
    events = _recorded_events()
    hub = EventHub()
    feed = RedisFeed(bus_url, hub, node_timeout=60).start()
    publisher = RedisPublisher(bus_url, "node-ü")
    try:
        for event in events:
            publisher.send(event)
        publisher.close()
        tasks = {e.task for e in events}
        _wait(lambda: len(hub) == len(tasks) and hub.live_count() == 0)
    finally:
        feed.close()
    layout = Layout()
    entries = sync_redis.xrange(layout.stream)
    written = [fields[b"e"].decode() for _id, fields in entries if b"e" in fields]
    assert written  # every line in the stream is the tracker's own line, stamped with the node
    lines = {e.to_json(node="node-ü") for e in events}
    assert set(written) <= lines
    body = hub.entries_json()
    for task in tasks:
        last = sync_redis.hget(layout.tasks, task_field("node-ü", task)).decode()
        assert f'"event":{last}' in body  # the very text Redis holds
    assert _payloads(hub)[events[-1].task] == json.loads(events[-1].to_json(node="node-ü"))
    assert feed.skipped == 0


def test_an_odd_entry_reaches_browsers_in_the_contract_s_form(
    bus_url: str, sync_redis: Any
) -> None:
    hub = EventHub()
    feed = RedisFeed(bus_url, hub, node_timeout=60).start()
    try:
        event = Task("run:odd", Operation.RUN, Kind.COUNT, total=10).update(current=5)
        assert event is not None
        data = {**json.loads(event.to_json(node="n")), "current": "5", "extra": "<i>x</i>"}
        sync_redis.xadd(Layout().stream, {"e": json.dumps(data)})
        _wait(lambda: len(hub) == 1)
    finally:
        feed.close()
    shown = _payloads(hub)["run:odd"]
    assert shown == json.loads(event.to_json(node="n"))  # "current" a number, no "extra"
    assert shown["current"] == 5
    assert "extra" not in hub.entries_json()


def test_one_script_call_keeps_history_and_latest_states_together(sync_redis: Any) -> None:
    layout = Layout(history_max=3)
    script = sync_redis.register_script(PUBLISH_SCRIPT)
    keys = [layout.stream, layout.tasks, layout.ended, layout.nodes]
    head = ["n", layout.stream_maxlen, layout.history_max, layout.history_age]

    def call(events: list[TaskEvent]) -> int:
        args: list[Any] = list(head)
        for event in events:
            args += [
                task_field("n", event.task),
                event.to_json(node="n"),
                "1" if event.terminal else "0",
            ]
        return int(script(keys=keys, args=args))

    running = [Task(f"run:live-{i}", Operation.RUN, Kind.COUNT, total=9) for i in range(4)]
    ended = [Task(f"run:end-{i}", Operation.RUN, Kind.COUNT, total=1).finish() for i in range(40)]
    batch = [t.update(current=1) for t in running] + ended
    assert all(e is not None for e in batch)
    assert call([e for e in batch if e is not None]) == 44
    assert sync_redis.xlen(layout.stream) == 44  # one stream entry per event
    in_history = {f.decode() for f in sync_redis.zrange(layout.ended, 0, -1)}
    assert len(in_history) == 3
    states = {f.decode() for f in sync_redis.hkeys(layout.tasks)}
    live = {task_field("n", t.task_id) for t in running}
    assert states == live | in_history  # no latest state outlives its place in the history
    # A task that ran again after it ended leaves the history in the same call.
    again = Task(next(iter(in_history)).split("\n")[1], Operation.RUN, Kind.COUNT, total=5)
    event = again.update(current=1)
    assert event is not None
    call([event])
    assert sync_redis.zcard(layout.ended) == 2
    assert json.loads(sync_redis.hget(layout.tasks, task_field("n", event.task)))["state"] == (
        "running"
    )
    assert sync_redis.hget(layout.nodes, "n") is not None
