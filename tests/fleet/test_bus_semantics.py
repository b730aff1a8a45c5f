"""The bus's written semantics against the real Redis: stale nodes, garbage entries, wrong
credentials, the bounded resend queue, history limits and the kept last id."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockprogress.bus.feed import RedisFeed
from dockprogress.bus.publisher import RedisPublisher
from dockprogress.bus.redisstreams import Layout
from dockprogress.events import Kind, Operation
from dockprogress.sinks.web.hub import EventHub
from dockprogress.task import Task
from tests.fleet.conftest import REPO, Replica, cli, testbed_redis, ws_tasks


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _entry(hub: EventHub, node: str, task: str) -> dict[str, Any]:
    for entry in json.loads(hub.entries_json()):
        if entry["event"]["node"] == node and entry["event"]["task"] == task:
            return dict(entry)
    raise AssertionError(f"{node}/{task} not in the hub")


@pytest.mark.slow
def test_a_killed_node_s_running_task_turns_stale_on_the_replica(
    bus_url: str, replicas: Callable[..., Replica]
) -> None:
    replica = replicas(node_timeout=1.5)
    node = subprocess.Popen(
        cli("run", "--bus", bus_url, "--node", "doomed", "--progress", "json", "--",
            "sh", "-c", 'printf "\\r10%%"; sleep 60'),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )  # fmt: skip
    try:
        seen = ws_tasks(replica.url, lambda t: any(k[0] == "doomed" for k in t), timeout=20)
        key = next(k for k in seen if k[0] == "doomed")
        assert seen[key]["event"]["state"] == "running"
        assert not seen[key].get("stale")
        node.send_signal(signal.SIGKILL)  # no final state, no more heartbeats
        node.wait(10)
        stale = ws_tasks(replica.url, lambda t: bool(t.get(key, {}).get("stale")), timeout=10)
        assert stale[key]["event"]["state"] == "running"  # not invented as ended: stale
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(5)


def test_garbage_entries_are_skipped_and_counted(bus_url: str, sync_redis: Any) -> None:
    layout = Layout()
    sync_redis.xadd(layout.stream, {"junk": "1"})
    hub = EventHub()
    feed = RedisFeed(bus_url, hub, node_timeout=60).start()
    try:
        sync_redis.xadd(layout.stream, {"e": "not json"})
        sync_redis.xadd(layout.stream, {"e": json.dumps({"task": "x", "node": "n"})})
        sync_redis.xadd(layout.stream, {"e": json.dumps([1, 2])})
        sync_redis.xadd(layout.stream, {"other": "field"})
        event = Task("run:ok", Operation.RUN, Kind.COUNT, total=10).update(current=5)
        assert event is not None
        good = json.dumps({**event.to_dict(), "node": "n"})
        sync_redis.xadd(layout.stream, {"e": good})
        _wait(lambda: len(hub) == 1)
        assert feed.skipped == 4  # the entry before the feed started is not its business
        assert _entry(hub, "n", "run:ok")["event"]["percent"] == 50
    finally:
        feed.close()


def test_a_wrong_redis_password_is_a_clear_error(redis_bed: Path) -> None:
    wrong = f"redis://{testbed_redis.USER}:wrong@127.0.0.1:{testbed_redis.PORT}/3"
    serve = subprocess.run(
        cli("serve", "--port", "0", "--bus", wrong),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert serve.returncode == 1
    assert "refused the credentials" in serve.stderr
    assert "wrong" not in serve.stderr  # the password is never printed
    run = subprocess.run(
        cli("run", "--bus", wrong, "--progress", "plain", "--", "true"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 0  # the command's own result: the bus is an extra display
    assert "refused the credentials" in run.stderr
    right = testbed_redis.url(user=True)
    ok = subprocess.run(
        cli("run", "--bus", right, "--progress", "plain", "--", "true"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert ok.returncode == 0
    assert "refused" not in ok.stderr


def test_the_resend_queue_is_bounded_and_keeps_every_final_state(
    bus_url: str, sync_redis: Any
) -> None:
    dead = "redis://127.0.0.1:1/0"  # nothing listens: every write fails
    publisher = RedisPublisher(dead, "n", max_queue=50, close_timeout=0.5)
    try:
        for i in range(200):
            task = Task(f"run:{i}", Operation.RUN, Kind.COUNT, total=10)
            for step in range(5):
                event = task.update(current=step)
                if event is not None:
                    publisher.send(event)
            if i % 10 == 0:
                ended = task.finish()
                assert ended is not None
                publisher.send(ended)
        pending = publisher.pending
        assert pending <= 50 + 20  # the running states are shed, the 20 final states kept
        assert publisher.coalesced > 0
        assert publisher.dropped > 0
    finally:
        publisher.close()


def test_history_is_bounded_in_redis_and_running_tasks_stay(bus_url: str, sync_redis: Any) -> None:
    layout = Layout(history_max=5)
    publisher = RedisPublisher(bus_url, "n", layout)
    running = Task("run:long", Operation.RUN, Kind.COUNT, total=10).update(current=1)
    assert running is not None
    publisher.send(running)
    for i in range(12):
        ended = Task(f"run:{i}", Operation.RUN, Kind.COUNT, total=1).finish()
        assert ended is not None
        publisher.send(ended)
    publisher.close()
    fields = sorted(f.decode().split("\n")[1] for f in sync_redis.hkeys(layout.tasks))
    assert "run:long" in fields
    assert len(fields) == 6
    assert sync_redis.zcard(layout.ended) == 5


def test_the_feed_goes_on_from_its_last_id_across_a_redis_restart(
    bus_url: str, redis_bed: Path
) -> None:
    hub = EventHub()
    feed = RedisFeed(bus_url, hub, node_timeout=60).start()
    publisher = RedisPublisher(bus_url, "n", heartbeat=0.2)
    try:
        task = Task("run:r", Operation.RUN, Kind.COUNT, total=100)
        first = task.update(current=10)
        assert first is not None
        publisher.send(first)
        _wait(lambda: len(hub) == 1)
        testbed_redis.stop_redis(redis_bed)
        later = task.update(current=60)
        assert later is not None
        publisher.send(later)  # queued while Redis is away
        time.sleep(0.5)
        testbed_redis.ensure_redis(redis_bed)
        done = task.finish()
        assert done is not None
        publisher.send(done)
        _wait(lambda: _entry(hub, "n", "run:r")["event"]["state"] == "done", timeout=20)
        assert feed.snapshots == 1  # the stream still held its last id: no second snapshot
    finally:
        publisher.close()
        feed.close()
