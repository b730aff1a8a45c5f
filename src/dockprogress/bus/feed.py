"""The feeding half of the Redis bus: every node's events into a dashboard's hub.

:class:`RedisFeed` runs redis-py's asyncio client in its own thread (the hub is thread-safe,
so the dashboard's own event loop never waits on Redis):

1. **Snapshot.** In one ``MULTI``: the stream's last entry id, every task's latest state,
   every node's last-seen time, and Redis's clock. Each task goes into the hub.
2. **Follow.** ``XREAD BLOCK`` from the *kept* last id (never ``$``, which would lose what was
   added between two reads), up to ``count`` entries at a time; the id advances with each
   entry read.
3. **Reconnect.** When Redis goes away the feed retries with a growing delay; once back, it
   goes on from its last id if the stream still holds it, else (trimmed past it, or Redis lost
   its data) it takes a new snapshot.
4. **Stale.** Each node's last entry (event or heartbeat) is remembered; a node silent for
   ``node_timeout`` seconds while Redis answers has its running tasks flagged ``stale`` in the
   hub, until it speaks again. Nodes are not judged while Redis itself is away.

An event written by a publisher goes into the hub with the very text it was written as
(:func:`_wire_form` checks its fields and their types); the hub does not encode it again.

Entries that are not events are skipped and counted (:attr:`RedisFeed.skipped`); events the
hub refuses (a node over its live-task cap) are counted in :attr:`RedisFeed.refused`, with one
message per node on standard error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from typing import Any, TextIO

from dockprogress.bus.redisstreams import Layout, connect
from dockprogress.events import TaskEvent
from dockprogress.sinks.web.hub import EventHub, TaskLimitError

__all__ = ["RedisFeed"]


class RedisFeed:
    """Feeds ``hub`` from the Redis bus at ``url`` between :meth:`start` and :meth:`close`."""

    def __init__(
        self,
        url: str,
        hub: EventHub,
        layout: Layout | None = None,
        *,
        node_timeout: float = 30.0,
        block: float = 0.5,
        count: int = 1000,
        max_backoff: float = 2.0,
        stderr: TextIO | None = None,
    ) -> None:
        self.url = url
        self.hub = hub
        self.layout = layout if layout is not None else Layout()
        self.node_timeout = node_timeout
        self.block = block
        self.count = count
        self.max_backoff = max_backoff
        self._stderr = stderr
        self.last_id = b"0-0"
        self.skipped = 0
        self.refused = 0
        self.received = 0
        self.snapshots = 0
        self.connected = False
        self.error: str | None = None
        self._seen: dict[str, float] = {}  # node -> monotonic time of its last entry
        self._stale: set[str] = set()
        self._refused_nodes: set[str] = set()
        self._warned = False
        self._stop = threading.Event()
        self._first = threading.Event()
        self._start_lock = threading.Lock()
        self._start_returned = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(
            target=self._thread_main, name="dockprogress-feed", daemon=True
        )

    def start(self, timeout: float = 10.0) -> RedisFeed:
        """Start feeding; wait up to ``timeout`` s for the first snapshot (not an error if late).

        Raises :class:`~dockprogress.bus.BusError` when Redis refuses the credentials or a
        ``rediss://`` server's certificate is not trusted (one line: the caller prints it).
        """
        self._thread.start()
        self._first.wait(timeout)
        with self._start_lock:
            self._start_returned = True
            error = self.error
        if error is not None:
            from dockprogress.bus import BusError

            self.close()
            raise BusError(error)
        return self

    def close(self) -> None:
        """Stop feeding: the read in flight returns within ``block`` s and the connection is
        closed in order; a feed still waiting after that (Redis away) is cancelled.

        Cancelling a blocked read would drop its connection without waiting: over
        ``rediss://`` the TLS transport would still be closing when the loop ends.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.block + 1.0)
        loop, task = self._loop, self._task
        if self._thread.is_alive() and loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
            self._thread.join(5.0)

    # --------------------------------------------------------------- internals

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._main())
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
        finally:
            loop.close()
            self._first.set()

    async def _main(self) -> None:
        from dockprogress.bus.publisher import _where, fatal_reason

        backoff = 0.1
        need_snapshot = True
        while not self._stop.is_set():
            client = connect(self.url, socket_timeout=self.block + 5.0)
            try:
                if not need_snapshot:
                    # Still there? Then go on from it; else the stream lost it: start over.
                    held = await client.xrange(
                        self.layout.stream, self.last_id, self.last_id, count=1
                    )
                    need_snapshot = not held and self.last_id != b"0-0"
                if need_snapshot:
                    await self._snapshot(client)
                    need_snapshot = False
                self.connected = True
                self._first.set()
                backoff = 0.1
                # XREAD's reply as the parser gives it: redis-py's own callback would rebuild
                # every entry's fields as a dict, a fifth of this loop's time.
                client.set_response_callback("XREAD", _as_is)
                while not self._stop.is_set():
                    reply = await client.xread(
                        {self.layout.stream: self.last_id},
                        count=self.count,
                        block=int(self.block * 1000),
                    )
                    for entries in _stream_entries(reply):
                        for entry_id, fields in entries:
                            self.last_id = entry_id
                            self._apply(fields)
                    self._judge_nodes()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                fatal = fatal_reason(exc, self.url)
                if fatal is not None:
                    with self._start_lock:
                        self.error = fatal
                        started = self._start_returned
                    if started:  # else start() raises it: the caller says it, once
                        self._say(fatal)
                    self._first.set()
                    return
                if not self._warned:
                    self._warned = True
                    self._say(f"warning: Redis at {_where(self.url)} is away ({exc}); retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                # Nobody could speak through a dead Redis: restart every node's clock.
                now = time.monotonic()
                self._seen = dict.fromkeys(self._seen, now)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _snapshot(self, client: Any) -> None:
        layout = self.layout
        async with client.pipeline(transaction=True) as pipe:
            pipe.xrevrange(layout.stream, count=1)
            pipe.hgetall(layout.tasks)
            pipe.hgetall(layout.nodes)
            pipe.time()
            last, tasks, nodes, clock = await pipe.execute()
        self.snapshots += 1
        self.last_id = last[0][0] if last else b"0-0"
        redis_now = float(clock[0]) + float(clock[1]) / 1e6
        mono = time.monotonic()
        for node, seen in nodes.items():
            with contextlib.suppress(ValueError):
                age = max(0.0, redis_now - float(seen))
                self._seen[node.decode("utf-8", "replace")] = mono - age
        # Oldest first, so the hub's first-seen order follows the tasks' own times.
        events = []
        for raw in tasks.values():
            decoded = self._decode(raw)
            if decoded is not None:
                events.append(decoded)
        events.sort(key=lambda pair: pair[0].ts)
        for event, line in events:
            self._publish(event, line)
        self._judge_nodes()

    def _apply(self, fields: list[bytes]) -> None:
        """One stream entry, its fields as the flat list ``[name, value, ...]``."""
        if len(fields) == 2 and fields[0] == b"e":  # an event, as publishers write it
            decoded = self._decode(fields[1])
            if decoded is not None:
                self._publish(*decoded)
            return
        self._apply_fields(dict(zip(fields[::2], fields[1::2], strict=False)))

    def _apply_fields(self, fields: dict[bytes, bytes]) -> None:
        raw = fields.get(b"e")
        if raw is not None:
            decoded = self._decode(raw)
            if decoded is not None:
                self._publish(*decoded)
            return
        node = fields.get(b"h")
        if node is not None:
            name = node.decode("utf-8", "replace")
            self._seen[name] = time.monotonic()
            if name in self._stale:
                self._stale.discard(name)
                self.hub.set_node_stale(name, False)
            return
        self.skipped += 1

    def _decode(self, raw: bytes) -> tuple[TaskEvent, str | None] | None:
        """The event in ``raw``, and ``raw`` itself as text when it can be passed through."""
        try:
            text = raw.decode("utf-8")
            data = _loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("node"), str):
                raise ValueError("not an event with a node")
            return TaskEvent.from_dict(data), text if _wire_form(data) else None
        except (ValueError, KeyError, TypeError):
            self.skipped += 1
            return None

    def _publish(self, event: TaskEvent, line: str | None = None) -> None:
        node = event.node or ""
        self._seen[node] = time.monotonic()
        if node in self._stale:
            self._stale.discard(node)  # the hub clears the flag itself on the event
        self.received += 1
        try:
            self.hub.publish(event, event_json=line)
        except TaskLimitError as exc:
            self.refused += 1
            if node not in self._refused_nodes:
                self._refused_nodes.add(node)
                self._say(f"warning: {exc}")

    def _judge_nodes(self) -> None:
        limit = time.monotonic() - self.node_timeout
        for node, seen in self._seen.items():
            if seen < limit and node not in self._stale:
                self._stale.add(node)
                self.hub.set_node_stale(node, True)

    def _say(self, message: str) -> None:
        stream = self._stderr if self._stderr is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):
            print(f"dockprogress: {message}", file=stream, flush=True)


def _as_is(response: Any, **options: Any) -> Any:
    return response


def _stream_entries(reply: Any) -> Any:
    """The entry lists of an XREAD reply: a map in RESP3, a list of pairs in RESP2."""
    if not reply:
        return ()
    if isinstance(reply, dict):
        return reply.values()
    return (entries for _stream, entries in reply)


_loads = json.JSONDecoder().decode
_WIRE_KEYS = frozenset(TaskEvent.__dataclass_fields__)
_NUMBER = (int, float)
_NUMBER_OR_NULL = (int, float, type(None))
_TEXT_OR_NULL = (str, type(None))


def _wire_form(data: dict[str, Any]) -> bool:
    """Whether ``data`` has exactly the event line's fields, each of its JSON type.

    Such a line can go to browsers as it came (an event a publisher wrote with
    :meth:`~dockprogress.events.TaskEvent.to_json`, which this checks far faster than it could
    be written again); anything else is written again from the parsed event, so that
    browsers only ever see the contract's fields and types.
    """
    if data.keys() != _WIRE_KEYS:
        return False
    get = data.__getitem__
    return (
        type(get("ts")) in _NUMBER
        and type(get("current")) in _NUMBER
        and type(get("total")) in _NUMBER_OR_NULL
        and type(get("percent")) in _NUMBER_OR_NULL
        and type(get("speed")) in _NUMBER_OR_NULL
        and type(get("eta")) in _NUMBER_OR_NULL
        and type(get("priority")) is int
        and type(get("task")) is str
        and type(get("description")) is str
        and type(get("phase")) in _TEXT_OR_NULL
        and type(get("error")) in _TEXT_OR_NULL
        and type(get("detail")) is dict
    )
