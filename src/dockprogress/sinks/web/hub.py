"""The event hub: one producer side, one bounded, coalescing mailbox per dashboard client.

Trackers (in any thread) call :meth:`EventHub.publish` — or use the hub as a
:class:`~dockprogress.sinks.base.Sink` — and every subscribed client gets the task's new state.
The hub is plain Python with no server in it, so an application can embed it and serve it
with :mod:`dockprogress.sinks.web.server`, or read it itself.

Slow-client policy (written down because websockets' ``broadcast()`` has none):

* Events are whole snapshots of a task, so a client only ever needs the *latest* state of
  each task. A client's mailbox holds at most one pending message per task: a newer event
  replaces the pending one (coalescing). A client that never reads therefore costs at most one
  message per task, never a growing backlog.
* Each client receives at most ``rate`` messages per second per task (default 10), as a
  token bucket holding :data:`BURST` messages: a task that updates faster is coalesced the
  same way, and its latest state goes out when its next token is there. Terminal events are
  latest states too, so they are never lost. The burst of 2 is what keeps a tracker that
  updates at about the cap on time: with a strict minimum gap, every bit of jitter in its
  10 Hz updates would hold an event back for up to a whole interval; over any second a task
  still sends at most ``rate + 1`` messages to a client.
* Each event is serialised once, in :meth:`EventHub.publish`; clients share the string.
* The hub forgets the oldest ended tasks once it holds more than ``max_tasks``.

Wire format of the strings a subscription hands out (the page's protocol)::

    {"type": "snapshot", "heartbeat": 10.0, "tasks": [ENTRY, ...]}   first message
    {"type": "tasks", "tasks": [ENTRY, ...]}                          updates
    {"type": "heartbeat", "ts": 1700000000.0}                         when idle

    ENTRY = {"first_ts": <Unix time the hub first saw the task>,
             "cancellable": <true when this server started the task>,
             "event": <TaskEvent.to_dict()>}
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from dockprogress.events import TaskEvent

__all__ = ["BURST", "DEFAULT_RATE", "EventHub", "Subscription"]

#: Messages per second per task per client.
DEFAULT_RATE: Final = 10.0
#: Messages a task may send a client back to back after a pause (the token bucket's size).
BURST: Final = 2.0

Clock = Callable[[], float]


@dataclass(slots=True)
class _Entry:
    """What the hub keeps per task: the latest event and its one serialised form."""

    event: TaskEvent
    first_ts: float
    cancellable: bool
    payload: str


class EventHub:
    """Fan-out of task events to subscribers; safe to publish into from any thread.

    ``rate`` caps messages per task per client per second; ``max_tasks`` bounds what the hub
    remembers (oldest ended tasks are forgotten first); ``clock`` (monotonic seconds) is
    injectable for tests of the rate cap.
    """

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        max_tasks: int = 1000,
        heartbeat: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.max_tasks = max_tasks
        self.heartbeat = heartbeat
        self._clock = clock
        self._lock = threading.Lock()
        self._tasks: dict[str, _Entry] = {}
        self._cancellable: set[str] = set()
        self._subscribers: set[Subscription] = set()
        self.published = 0

    # ------------------------------------------------------------------ producing

    def publish(self, event: TaskEvent) -> None:
        """Record ``event`` as its task's latest state and hand it to every subscriber."""
        with self._lock:
            previous = self._tasks.get(event.task)
            new_run = previous is None or (previous.event.terminal and not event.terminal)
            first_ts = event.ts if new_run or previous is None else previous.first_ts
            entry = _Entry(event, first_ts, event.task in self._cancellable, "")
            entry.payload = _entry_json(entry)
            # Re-inserting keeps the dict in first-seen order for pruning and snapshots.
            if new_run:
                self._tasks.pop(event.task, None)
            self._tasks[event.task] = entry
            self.published += 1
            if len(self._tasks) > self.max_tasks:
                self._prune()
            subscribers = tuple(self._subscribers)
        for subscriber in subscribers:
            subscriber._offer(event.task, entry.payload)

    def send(self, event: TaskEvent) -> None:
        """:class:`~dockprogress.sinks.base.Sink` form of :meth:`publish`."""
        self.publish(event)

    def close(self) -> None:
        """Sink protocol; the hub holds nothing that needs releasing."""

    def mark_cancellable(self, task_id: str) -> None:
        """Declare that this process can cancel ``task_id`` (the page shows a cancel button)."""
        with self._lock:
            self._cancellable.add(task_id)

    # ------------------------------------------------------------------- reading

    def tasks(self) -> list[TaskEvent]:
        """The latest event of every task the hub remembers, in first-seen order."""
        with self._lock:
            return [entry.event for entry in self._tasks.values()]

    def get(self, task_id: str) -> TaskEvent | None:
        with self._lock:
            entry = self._tasks.get(task_id)
            return None if entry is None else entry.event

    def entries_json(self) -> str:
        """Every task as a JSON array of ENTRY objects (the ``GET /api/tasks`` body)."""
        with self._lock:
            return "[" + ",".join(entry.payload for entry in self._tasks.values()) + "]"

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """A subscription for the running event loop, removed from the hub on exit.

        Its :attr:`Subscription.snapshot` is consistent with what it receives afterwards:
        both are taken under the hub's lock, so no event falls between them.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            subscription = Subscription(self, loop, self._clock)
            subscription.snapshot = (
                f'{{"type":"snapshot","heartbeat":{json.dumps(self.heartbeat)},"tasks":['
                + ",".join(entry.payload for entry in self._tasks.values())
                + "]}"
            )
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers.discard(subscription)
            subscription._closed = True

    # ------------------------------------------------------------------ internals

    def _prune(self) -> None:
        """Forget ended tasks, oldest first, until at most ``max_tasks`` remain (lock held)."""
        excess = len(self._tasks) - self.max_tasks
        for task_id in [t for t, e in self._tasks.items() if e.event.terminal][:excess]:
            del self._tasks[task_id]
            self._cancellable.discard(task_id)


class Subscription:
    """One client's mailbox: at most one pending message per task, rate-capped per task.

    Created by :meth:`EventHub.subscribe`; read it from the event loop it was created in.
    """

    __slots__ = (
        "_buckets",
        "_clock",
        "_closed",
        "_hub",
        "_loop",
        "_notified",
        "_pending",
        "_rate",
        "_wakeup",
        "snapshot",
    )

    def __init__(self, hub: EventHub, loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
        self._hub = hub
        self._loop = loop
        self._clock = clock
        self._rate = hub.rate
        # Guarded by the hub's lock: written by publishers (any thread), read by the loop.
        self._pending: dict[str, str] = {}
        self._notified = False
        self._wakeup = asyncio.Event()
        # Per task: (tokens, when counted). A task never seen has a full bucket.
        self._buckets: dict[str, tuple[float, float]] = {}
        self._closed = False
        self.snapshot = ""

    @property
    def pending(self) -> int:
        """Messages waiting for this client (at most one per task)."""
        with self._hub._lock:
            return len(self._pending)

    def _offer(self, task_id: str, payload: str) -> None:
        with self._hub._lock:
            if self._closed:
                return
            self._pending.pop(task_id, None)  # the newest goes to the back of the line
            self._pending[task_id] = payload
            if self._notified:
                return
            self._notified = True
        try:
            self._loop.call_soon_threadsafe(self._wakeup.set)
        except RuntimeError:  # the loop has closed: the client is gone
            self._closed = True

    def _take_due(self, now: float) -> tuple[list[str], float | None]:
        """Pop every message whose task may send now; also return the wait for the next one."""
        due: list[str] = []
        next_at: float | None = None
        rate = self._rate
        with self._hub._lock:
            self._notified = False
            self._wakeup.clear()
            for task_id in list(self._pending):
                tokens, counted = self._buckets.get(task_id, (BURST, now))
                tokens = min(BURST, tokens + (now - counted) * rate)
                if tokens >= 1.0:
                    due.append(self._pending.pop(task_id))
                    tokens -= 1.0
                else:
                    ready = now + (1.0 - tokens) / rate
                    if next_at is None or ready < next_at:
                        next_at = ready
                self._buckets[task_id] = (tokens, now)
            if len(self._buckets) > 2 * self._hub.max_tasks:
                # A bucket that has filled up again is the same as no bucket.
                self._buckets = {
                    t: (tokens, counted)
                    for t, (tokens, counted) in self._buckets.items()
                    if tokens + (now - counted) * rate < BURST or t in self._pending
                }
        return due, next_at

    async def get(self, timeout: float | None = None) -> str | None:
        """The next ``tasks`` message (all tasks due now), or ``None`` after ``timeout`` s idle."""
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            now = self._clock()
            due, next_at = self._take_due(now)
            if due:
                return '{"type":"tasks","tasks":[' + ",".join(due) + "]}"
            wait_until = next_at
            if deadline is not None and (wait_until is None or deadline < wait_until):
                wait_until = deadline
            if deadline is not None and now >= deadline:
                return None
            try:
                if wait_until is None:
                    await self._wakeup.wait()
                else:
                    await asyncio.wait_for(self._wakeup.wait(), max(wait_until - now, 0.0))
            except TimeoutError:
                pass


def _entry_json(entry: _Entry) -> str:
    return (
        f'{{"first_ts":{json.dumps(round(entry.first_ts, 6))},'
        f'"cancellable":{"true" if entry.cancellable else "false"},'
        f'"event":{entry.event.to_json()}}}'
    )
