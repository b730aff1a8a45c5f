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
* Each event is serialised once, in :meth:`EventHub.publish` (or not at all when the caller
  hands its line over); clients share the string.
* Tasks are keyed by ``(node, task)``: two machines' ``pull:app`` are two tasks.

Memory policy (what a fleet of nodes can make the hub hold):

* Finished tasks are history: at most ``max_history`` (10,000) and none older than
  ``history_age`` (24 h), the oldest-ended forgotten first. Ended tasks sit in a second
  dict in the order they ended, so forgetting is O(1) per task (the seed of this hub scanned
  every task on every publish: quadratic once more than a thousand ran).
* Running tasks are never forgotten, but each node may have at most ``max_live_per_node``
  of them: a new task beyond that is refused with :class:`TaskLimitError`, which says so.
* A node that went silent (no event or heartbeat within the bus's timeout) has its running
  tasks shown ``"stale": true`` (:meth:`EventHub.set_node_stale`) until it speaks again.

Wire format of the strings a subscription hands out (the page's protocol)::

    {"type": "snapshot", "heartbeat": 10.0, "tasks": [ENTRY, ...]}   first message
    {"type": "tasks", "tasks": [ENTRY, ...]}                          updates
    {"type": "heartbeat", "ts": 1700000000.0}                         when idle

    ENTRY = {"first_ts": <Unix time the hub first saw the task>,
             "cancellable": <true when this server started the task>,
             "stale": true,             <only while the task's node is silent>
             "event": <TaskEvent.to_dict(), with its "node">}
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

from dockprogress.errors import DockProgressError
from dockprogress.events import TaskEvent, default_node

__all__ = [
    "BURST",
    "DEFAULT_RATE",
    "MAX_HISTORY",
    "MAX_LIVE_PER_NODE",
    "EventHub",
    "Subscription",
    "TaskLimitError",
]

#: Messages per second per task per client.
DEFAULT_RATE: Final = 10.0
#: Messages a task may send a client back to back after a pause (the token bucket's size).
BURST: Final = 2.0
#: Finished tasks remembered, at most, and for how long (seconds).
MAX_HISTORY: Final = 10_000
HISTORY_AGE: Final = 24 * 3600.0
#: Running (or pending) tasks one node may have in the hub.
MAX_LIVE_PER_NODE: Final = 100_000

Key = tuple[str, str]  # (node, task)


class TaskLimitError(DockProgressError):
    """A node already has as many running tasks as the hub accepts from one node."""


Clock = Callable[[], float]


@dataclass(slots=True)
class _Entry:
    """What the hub keeps per task: the latest event and its one serialised form."""

    event: TaskEvent
    first_ts: float
    cancellable: bool
    payload: str
    stale: bool = False


class EventHub:
    """Fan-out of task events to subscribers; safe to publish into from any thread.

    ``rate`` caps messages per task per client per second; ``max_history`` and
    ``history_age`` bound the finished tasks remembered, ``max_live_per_node`` the running
    ones of each node; ``clock`` (monotonic seconds) is injectable for tests of the rate
    cap, ``wall`` (Unix seconds) for tests of the history age.
    """

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        max_history: int = MAX_HISTORY,
        history_age: float = HISTORY_AGE,
        max_live_per_node: int = MAX_LIVE_PER_NODE,
        heartbeat: float = 10.0,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.max_history = max_history
        self.history_age = history_age
        self.max_live_per_node = max_live_per_node
        self.heartbeat = heartbeat
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._tasks: dict[Key, _Entry] = {}  # first-seen order
        self._ended: dict[Key, float] = {}  # ended tasks, in the order they ended
        self._live: dict[str, set[Key]] = {}  # node -> its running tasks
        self._stale_nodes: set[str] = set()
        self._cancellable: set[Key] = set()
        self._subscribers: set[Subscription] = set()
        self.published = 0
        self.refused = 0

    # ------------------------------------------------------------------ producing

    def publish(self, event: TaskEvent, *, event_json: str | None = None) -> None:
        """Record ``event`` as its task's latest state and hand it to every subscriber.

        ``event_json`` is the event's line when the caller already holds it (the Redis feed
        passes through the bytes a publisher wrote, after checking they have exactly the
        contract's fields and types); otherwise the hub serialises the event, once.

        Raises :class:`TaskLimitError` for a new running task of a node that already has
        ``max_live_per_node`` of them (the event is not recorded).
        """
        node = event.node if event.node is not None else default_node()
        key = (node, event.task)
        terminal = event.terminal
        if event_json is None:
            event_json = event.to_json()  # the costly part, outside the lock
        with self._lock:
            if node in self._stale_nodes:
                self._set_stale(node, False)
            previous = self._tasks.get(key)
            if previous is not None and not previous.event.terminal:
                # The common case, an update of a running task: the entry is updated in place.
                entry = previous
                entry.event = event
                entry.payload = _entry_json(entry, event_json)
                if terminal:
                    self._live[node].discard(key)
                    self._ended[key] = self._wall()
            else:
                self._record(key, event, event_json, previous)
                entry = self._tasks[key]
            self.published += 1
            if self._ended and (len(self._ended) > self.max_history or terminal):
                self._prune()
            subscribers = tuple(self._subscribers)
        for subscriber in subscribers:
            subscriber._offer(key, entry.payload)

    def _record(self, key: Key, event: TaskEvent, event_json: str, previous: _Entry | None) -> None:
        """A task seen for the first time, or again after it ended (lock held)."""
        node, terminal = key[0], event.terminal
        live = self._live.get(node)
        if previous is not None and terminal:
            # One more final state of an ended task: it replaces the last one, in place.
            previous.event = event
            previous.payload = _entry_json(previous, event_json)
            return
        if not terminal and live is not None and len(live) >= self.max_live_per_node:
            self.refused += 1
            raise TaskLimitError(
                f"node {node!r} already has {self.max_live_per_node} running tasks, the "
                f"most this dashboard holds per node (max_live_per_node); task "
                f"{event.task!r} is not shown: end some tasks or raise the cap"
            )
        entry = _Entry(event, event.ts, key in self._cancellable, "")
        entry.payload = _entry_json(entry, event_json)
        # A new run goes to the back: the dict stays in first-seen order for snapshots.
        self._tasks.pop(key, None)
        self._tasks[key] = entry
        if terminal:
            self._ended[key] = self._wall()
        else:
            if live is None:
                live = self._live[node] = set()
            live.add(key)
            self._ended.pop(key, None)

    def send(self, event: TaskEvent) -> None:
        """:class:`~dockprogress.sinks.base.Sink` form of :meth:`publish`."""
        self.publish(event)

    def close(self) -> None:
        """Sink protocol; the hub holds nothing that needs releasing."""

    def mark_cancellable(self, task_id: str, node: str | None = None) -> None:
        """Declare that this process can cancel ``task_id`` (the page shows a cancel button)."""
        with self._lock:
            self._cancellable.add((node if node is not None else default_node(), task_id))

    def set_node_stale(self, node: str, stale: bool = True) -> None:
        """Show ``node``'s running tasks as stale (its heartbeats stopped), or live again."""
        with self._lock:
            if stale == (node in self._stale_nodes):
                return
            offers = self._set_stale(node, stale)
            subscribers = tuple(self._subscribers)
        for subscriber in subscribers:
            for key, payload in offers:
                subscriber._offer(key, payload)

    # ------------------------------------------------------------------- reading

    def tasks(self) -> list[TaskEvent]:
        """The latest event of every task the hub remembers, in first-seen order."""
        with self._lock:
            return [entry.event for entry in self._tasks.values()]

    def get(self, task_id: str, node: str | None = None) -> TaskEvent | None:
        with self._lock:
            entry = self._tasks.get((node if node is not None else default_node(), task_id))
            return None if entry is None else entry.event

    def entries_json(self) -> str:
        """Every task as a JSON array of ENTRY objects (the ``GET /api/tasks`` body)."""
        with self._lock:
            return "[" + ",".join(entry.payload for entry in self._tasks.values()) + "]"

    def live_count(self, node: str | None = None) -> int:
        """Running tasks of ``node`` (of every node when ``None``)."""
        with self._lock:
            if node is not None:
                return len(self._live.get(node, ()))
            return sum(len(keys) for keys in self._live.values())

    def stale_nodes(self) -> set[str]:
        with self._lock:
            return set(self._stale_nodes)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

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
        """Forget ended tasks, oldest-ended first, past ``max_history`` or ``history_age``.

        O(tasks forgotten): ``_ended`` is in ending order, so the loop stops at the first
        task that may stay (lock held).
        """
        oldest_allowed = self._wall() - self.history_age
        ended = self._ended
        while ended:
            key, at = next(iter(ended.items()))
            if len(ended) <= self.max_history and at >= oldest_allowed:
                break
            del ended[key]
            self._tasks.pop(key, None)
            self._cancellable.discard(key)

    def _set_stale(self, node: str, stale: bool) -> list[tuple[Key, str]]:
        """Flag ``node``'s running tasks (lock held); return the new payloads to offer."""
        if stale:
            self._stale_nodes.add(node)
        else:
            self._stale_nodes.discard(node)
        offers = []
        for key in self._live.get(node, ()):
            entry = self._tasks[key]
            entry.stale = stale
            entry.payload = _entry_json(entry, entry.event.to_json())
            offers.append((key, entry.payload))
        return offers


class Subscription:
    """One client's mailbox: at most one pending message per task, rate-capped per task.

    Created by :meth:`EventHub.subscribe`; read it from the event loop it was created in.
    """

    __slots__ = (
        "_bucket_limit",
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
        self._pending: dict[Key, str] = {}
        self._notified = False
        self._wakeup = asyncio.Event()
        # Per task: (tokens, when counted). A task never seen has a full bucket.
        self._buckets: dict[Key, tuple[float, float]] = {}
        self._bucket_limit = 1024
        self._closed = False
        self.snapshot = ""

    @property
    def pending(self) -> int:
        """Messages waiting for this client (at most one per task)."""
        with self._hub._lock:
            return len(self._pending)

    def _offer(self, task_id: Key, payload: str) -> None:
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
            if len(self._buckets) > self._bucket_limit:
                # A bucket that has filled up again is the same as no bucket.
                self._buckets = {
                    t: (tokens, counted)
                    for t, (tokens, counted) in self._buckets.items()
                    if tokens + (now - counted) * rate < BURST or t in self._pending
                }
                self._bucket_limit = max(1024, 2 * len(self._buckets))
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


def _entry_json(entry: _Entry, event_json: str) -> str:
    stale = '"stale":true,' if entry.stale else ""
    return (
        f'{{"first_ts":{round(entry.first_ts, 6)!r},'
        f'"cancellable":{"true" if entry.cancellable else "false"},{stale}'
        f'"event":{event_json}}}'
    )
