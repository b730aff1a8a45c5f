"""The event hub: snapshot, coalescing mailboxes, the per-task rate cap, threads, cleanup."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from dockprogress.events import TaskEvent
from dockprogress.sinks.web.hub import BURST, EventHub
from tests.web.conftest import count_events, download_events


def _tasks(message: str) -> list[dict[str, object]]:
    data = json.loads(message)
    assert data["type"] in ("snapshot", "tasks")
    tasks: list[dict[str, object]] = data["tasks"]
    return tasks


def test_snapshot_holds_the_latest_state_of_each_task_in_first_seen_order() -> None:
    hub = EventHub()
    pull = download_events("pull:a", 3_100_000_000, 5)
    exec_ = count_events("exec:b", 4, description="epoch")
    for event in [pull[0], exec_[0], *pull[1:3], *exec_[1:]]:
        hub.publish(event)

    async def scenario() -> list[dict[str, object]]:
        async with hub.subscribe() as sub:
            return _tasks(sub.snapshot)

    tasks = asyncio.run(scenario())
    assert [t["event"]["task"] for t in tasks] == ["pull:a", "exec:b"]  # type: ignore[index]
    assert tasks[0]["event"] == pull[2].to_dict()
    assert tasks[1]["event"] == exec_[-1].to_dict()
    assert tasks[0]["first_ts"] == round(pull[0].ts, 6)
    assert json.loads(hub.entries_json()) == tasks


def test_a_client_that_does_not_read_holds_one_message_per_task() -> None:
    hub = EventHub()
    streams = [download_events(f"pull:{i}", 10**9, 200) for i in range(10)]

    async def scenario() -> None:
        async with hub.subscribe() as sub:
            for step in range(201):
                for stream in streams:
                    hub.publish(stream[step])
            assert sub.pending == 10  # 2010 events published, 10 waiting
            received = _tasks(await sub.get(timeout=1))
            assert [t["event"] for t in received] == [s[-1].to_dict() for s in streams]
            assert sub.pending == 0

    asyncio.run(scenario())


def test_each_event_is_serialised_once_whatever_the_number_of_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    original = TaskEvent.to_json

    def counting(self: TaskEvent) -> str:
        calls.append(self.task)
        return original(self)

    monkeypatch.setattr(TaskEvent, "to_json", counting)
    hub = EventHub()
    event = download_events("pull:x", 1000, 1)[0]

    async def scenario() -> list[str | None]:
        async with (
            hub.subscribe() as a,
            hub.subscribe() as b,
            hub.subscribe() as c,
        ):
            hub.publish(event)
            return [await s.get(timeout=1) for s in (a, b, c)]

    messages = asyncio.run(scenario())
    assert calls == ["pull:x"]
    assert messages[0] == messages[1] == messages[2]
    assert messages[0] is not None
    assert _tasks(messages[0])[0]["event"] == event.to_dict()


def test_updates_per_task_are_capped_and_the_last_state_always_arrives() -> None:
    rate = 20.0
    hub = EventHub(rate=rate)
    events = download_events("pull:fast", 10**9, 2000)
    other = count_events("exec:slow", 5)

    def produce() -> None:
        # 2000 events in about one second: 100 times the cap.
        for i, event in enumerate(events):
            hub.publish(event)
            if i % 400 == 0:
                hub.publish(other[min(i // 400, len(other) - 1)])
            time.sleep(0.0005)
        hub.publish(other[-1])

    async def scenario() -> dict[str, list[tuple[float, dict[str, object]]]]:
        seen: dict[str, list[tuple[float, dict[str, object]]]] = {}
        async with hub.subscribe() as sub:
            thread = threading.Thread(target=produce)
            thread.start()
            while True:
                message = await sub.get(timeout=2)
                if message is None:
                    break
                now = time.monotonic()
                for entry in _tasks(message):
                    event = entry["event"]
                    seen.setdefault(event["task"], []).append((now, event))  # type: ignore[index]
            thread.join()
        return seen

    seen = asyncio.run(scenario())
    fast = seen["pull:fast"]
    elapsed = fast[-1][0] - fast[0][0]
    assert len(fast) <= elapsed * rate + BURST + 1
    # The token bucket: never more than BURST messages within one interval (a little slack
    # for the time between taking a message and reading it here), rate+1 within a second.
    times = [t for t, _ in fast]
    for i, start in enumerate(times):
        in_interval = sum(1 for t in times[i:] if t < start + 1 / rate - 0.01)
        in_second = sum(1 for t in times[i:] if t < start + 1.0)
        assert in_interval <= BURST
        assert in_second <= rate + BURST
    assert fast[-1][1] == events[-1].to_dict()  # the terminal event is never coalesced away
    assert seen["exec:slow"][-1][1] == other[-1].to_dict()
    percents = [e["percent"] for _, e in fast]
    assert percents == sorted(percents)  # coalescing keeps the order of a task's states


def test_publishing_from_many_threads_loses_no_final_state() -> None:
    hub = EventHub(rate=1000)
    streams = {f"exec:{i}": count_events(f"exec:{i}", 300) for i in range(8)}

    def produce(events: list[TaskEvent]) -> None:
        for event in events:
            hub.publish(event)

    async def scenario() -> dict[str, dict[str, object]]:
        latest: dict[str, dict[str, object]] = {}
        async with hub.subscribe() as sub:
            threads = [threading.Thread(target=produce, args=(s,)) for s in streams.values()]
            for thread in threads:
                thread.start()
            while len([e for e in latest.values() if e["state"] == "done"]) < len(streams):
                message = await sub.get(timeout=5)
                assert message is not None, "an update was lost"
                for entry in _tasks(message):
                    event = entry["event"]
                    latest[event["task"]] = event  # type: ignore[index]
            for thread in threads:
                thread.join()
        return latest

    latest = asyncio.run(scenario())
    assert latest == {task: events[-1].to_dict() for task, events in streams.items()}
    assert hub.published == sum(len(s) for s in streams.values())


def test_subscriptions_are_removed_on_exit_error_and_cancellation() -> None:
    hub = EventHub()

    async def reader(started: asyncio.Event) -> None:
        async with hub.subscribe() as sub:
            started.set()
            await sub.get()

    async def scenario() -> None:
        async def failing_client() -> None:
            async with hub.subscribe():
                assert hub.subscriber_count == 1
                raise RuntimeError("client went away")

        with pytest.raises(RuntimeError):
            await failing_client()
        assert hub.subscriber_count == 0
        started = asyncio.Event()
        task = asyncio.create_task(reader(started))
        await started.wait()
        assert hub.subscriber_count == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert hub.subscriber_count == 0

    asyncio.run(scenario())


def test_an_idle_subscription_times_out_for_the_heartbeat() -> None:
    hub = EventHub()

    async def scenario() -> tuple[str | None, float]:
        async with hub.subscribe() as sub:
            start = time.monotonic()
            message = await sub.get(timeout=0.2)
            return message, time.monotonic() - start

    message, waited = asyncio.run(scenario())
    assert message is None
    assert 0.15 <= waited < 1.0


def test_oldest_ended_tasks_are_forgotten_past_max_history_running_ones_never() -> None:
    hub = EventHub(max_history=4)
    running = download_events("pull:running", 100, 3)[0]
    hub.publish(running)
    for i in range(10):
        hub.publish(count_events(f"exec:{i}", 2)[-1])
    remembered = [e.task for e in hub.tasks()]
    assert remembered == ["pull:running", "exec:6", "exec:7", "exec:8", "exec:9"]


def test_a_task_that_runs_again_after_ending_starts_a_new_run() -> None:
    hub = EventHub()
    first = count_events("exec:again", 3)
    second = download_events("exec:again", 100, 2)
    for event in first:
        hub.publish(event)
    later = [TaskEvent.from_dict({**e.to_dict(), "ts": e.ts + 100}) for e in second]
    hub.publish(later[0])
    entry = json.loads(hub.entries_json())[0]
    assert entry["first_ts"] == round(later[0].ts, 6)
    assert entry["event"]["state"] == "running"


def test_cancellable_tasks_are_flagged_for_the_page() -> None:
    hub = EventHub()
    hub.mark_cancellable("exec:mine")
    hub.publish(count_events("exec:mine", 3)[0])
    hub.publish(count_events("exec:theirs", 3)[0])
    flags = {e["event"]["task"]: e["cancellable"] for e in json.loads(hub.entries_json())}
    assert flags == {"exec:mine": True, "exec:theirs": False}


def test_an_update_at_about_the_cap_is_not_held_back_by_jitter() -> None:
    # A tracker updating at 10 Hz never hits the beat exactly: an update 90 ms after the
    # previous one must go out at once (a token is left), while a sustained flood is capped.
    now = [100.0]
    hub = EventHub(rate=10.0, clock=lambda: now[0])
    events = download_events("pull:beat", 10**6, 40)

    async def scenario() -> list[str | None]:
        got: list[str | None] = []
        async with hub.subscribe() as sub:
            for i in range(4):
                hub.publish(events[i])
                got.append(await sub.get(timeout=0))
                now[0] += 0.09
            for event in events[4:30]:  # 26 updates at once: the bucket allows one more
                hub.publish(event)
                got.append(await sub.get(timeout=0))
        return got

    got = asyncio.run(scenario())
    assert all(message is not None for message in got[:4])
    assert sum(message is not None for message in got[4:]) == 1
