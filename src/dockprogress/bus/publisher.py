"""The publishing half of the Redis bus: a sink that never blocks the tracker.

:class:`RedisPublisher` is a :class:`~dockprogress.sinks.base.Sink`. ``send`` stamps the
event with the publisher's node and puts it in a bounded, coalescing queue (the latest
pending event per task, see :mod:`dockprogress.bus.redisstreams` for the policy); a thread
running its own asyncio loop with redis-py's asyncio client writes the queue in batches of
up to :data:`BATCH` events, each batch one call of the publish script (one round trip, one
command for redis-py to pack), appends a heartbeat every ``heartbeat`` seconds, and
reconnects with a growing delay while Redis is away. ``close`` waits up to ``close_timeout``
seconds for what is queued to be written.

``send`` costs a dict update under a lock: it wakes the writer thread (a system call) only
when that thread sleeps on an empty queue; while a batch is in flight, events simply
accumulate (and coalesce per task) for the next one.

Credentials Redis refuses (``WRONGPASS``, ``NOAUTH``, ``NOPERM``) and a ``rediss://`` server
whose certificate is not trusted stop the publisher with one clear line on standard error
(:func:`fatal_reason`): retrying a wrong password or a wrong CA helps nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from typing import Any, Final, TextIO

from dockprogress.bus.redisstreams import (
    HEARTBEAT_SCRIPT,
    PUBLISH_SCRIPT,
    Layout,
    connect,
    task_field,
)
from dockprogress.events import TaskEvent

__all__ = ["RedisPublisher"]

#: Events written per call of the publish script (one round trip), at most.
BATCH: Final = 1000


class RedisPublisher:
    """A sink publishing to the Redis bus at ``url`` as ``node``."""

    def __init__(
        self,
        url: str,
        node: str,
        layout: Layout | None = None,
        *,
        max_queue: int = 10_000,
        heartbeat: float = 5.0,
        max_backoff: float = 2.0,
        close_timeout: float = 30.0,
        stderr: TextIO | None = None,
    ) -> None:
        self.url = url
        self.node = node
        self.layout = layout if layout is not None else Layout()
        self.max_queue = max_queue
        self.heartbeat = heartbeat
        self.max_backoff = max_backoff
        self.close_timeout = close_timeout
        self._stderr = stderr
        self._lock = threading.Lock()
        self._queue: dict[str, TaskEvent] = {}  # task -> latest unwritten event, oldest first
        self._in_flight = 0
        self._in_flight_batch: list[TaskEvent] = []
        self._closing = False
        self._fatal: str | None = None
        self._warned: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._sleeping = False  # the writer waits for a poke (guarded by the lock)
        self.sent = 0
        self.coalesced = 0
        self.dropped = 0
        self.failures = 0
        self.connected = False
        self._ever_connected = False
        self._thread = threading.Thread(
            target=self._thread_main, name="dockprogress-bus", daemon=True
        )
        self._thread.start()
        self._ready.wait(5.0)

    # -------------------------------------------------------------------- sink

    def send(self, event: TaskEvent) -> None:
        """Queue ``event`` (written with this node); returns at once, whatever Redis does."""
        with self._lock:
            if self._fatal is not None or self._closing:
                return
            queue = self._queue
            if queue.pop(event.task, None) is not None:
                self.coalesced += 1
            queue[event.task] = event
            if len(queue) > self.max_queue:
                self._shed()
            if not self._sleeping:
                return
            self._sleeping = False
        self._poke()

    def close(self) -> None:
        """Write what is queued (waiting at most ``close_timeout`` s), then stop.

        A publisher that never reached Redis waits at most 5 s: a mistyped ``--bus`` should
        not hold every command's exit for half a minute.
        """
        wait = self.close_timeout if self._ever_connected else min(self.close_timeout, 5.0)
        deadline = time.monotonic() + wait
        with self._idle:
            self._closing = True
        self._poke()
        with self._idle:
            while (self._queue or self._in_flight) and self._fatal is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._idle.wait(min(left, 0.1))
            unsent = len(self._queue) + self._in_flight
        if unsent and self._fatal is None:
            self._warn(
                "unsent",
                f"Redis at {_where(self.url)} did not take {unsent} task state(s) within "
                f"{wait:g} s; they are lost",
            )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        self._thread.join(5.0)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self._in_flight

    # --------------------------------------------------------------- internals

    def _shed(self) -> None:
        """Drop the oldest running tasks' pending states until the queue fits (lock held)."""
        excess = len(self._queue) - self.max_queue
        for task, event in list(self._queue.items()):
            if excess <= 0:
                break
            if not event.terminal:
                del self._queue[task]
                self.dropped += 1
                excess -= 1

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has stopped
                loop.call_soon_threadsafe(wake.set)

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            task = loop.create_task(self._main())
            self._ready.set()
            loop.run_forever()
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        backoff = 0.1
        next_beat = 0.0
        while self._fatal is None:
            client = connect(self.url)
            try:
                publish = client.register_script(PUBLISH_SCRIPT)
                beat = client.register_script(HEARTBEAT_SCRIPT)
                while True:
                    now = time.monotonic()
                    if now >= next_beat:
                        await beat(
                            keys=[self.layout.stream, self.layout.nodes],
                            args=[self.node, self.layout.stream_maxlen, self.layout.stream_age],
                        )
                        next_beat = now + self.heartbeat
                        self.connected = self._ever_connected = True
                    batch = self._take()
                    if batch:
                        await self._write(publish, batch)
                        backoff = 0.1
                        continue
                    self._wake.clear()
                    with self._lock:
                        if self._queue:
                            continue
                        self._sleeping = True
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), max(0.0, next_beat - time.monotonic())
                        )
                    with self._lock:
                        self._sleeping = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                self._put_back()
                fatal = fatal_reason(exc, self.url)
                if fatal is not None:
                    self._fatal = fatal
                    self._warn("fatal", fatal)
                    with self._idle:
                        self._idle.notify_all()
                    return
                self.failures += 1
                self._warn("down", f"cannot publish to Redis at {_where(self.url)}: {exc}")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _take(self) -> list[TaskEvent]:
        with self._lock:
            if not self._queue:
                return []
            tasks = list(self._queue)[:BATCH]
            batch = [self._queue.pop(task) for task in tasks]
            self._in_flight_batch = batch
            self._in_flight = len(batch)
            return batch

    def _put_back(self) -> None:
        """A failed batch goes back in front, unless a newer state of its task came since."""
        with self._lock:
            batch = self._in_flight_batch
            self._in_flight_batch = []
            self._in_flight = 0
            if not batch:
                return
            merged = {e.task: e for e in batch if e.task not in self._queue}
            merged.update(self._queue)
            self._queue = merged
            if len(self._queue) > self.max_queue:
                self._shed()

    async def _write(self, publish: Any, batch: list[TaskEvent]) -> None:
        layout, node = self.layout, self.node
        args: list[Any] = [node, layout.stream_maxlen, layout.history_max, layout.history_age]
        prefix = task_field(node, "")
        for event in batch:
            args += (
                prefix + event.task,
                event.to_json(node=node),
                "1" if event.terminal else "0",
            )
        await publish(keys=[layout.stream, layout.tasks, layout.ended, layout.nodes], args=args)
        with self._idle:
            self.sent += len(batch)
            self._in_flight_batch = []
            self._in_flight = 0
            self._idle.notify_all()
        if "down" in self._warned:
            self._warned.discard("down")
            self._say(f"Redis at {_where(self.url)} answers again; resent what was queued")

    def _warn(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        self._say(f"warning: {message} (progress still shows here)")

    def _say(self, message: str) -> None:
        stream = self._stderr if self._stderr is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):
            print(f"dockprogress: {message}", file=stream, flush=True)


def fatal_reason(exc: BaseException, url: str) -> str | None:
    """One line saying why retrying cannot help, or ``None`` when Redis may just be away.

    Fatal: credentials Redis refuses (``WRONGPASS``, ``NOAUTH``, ``NOPERM``), a ``rediss://``
    server whose certificate the client does not trust (or whose name does not match it), and
    a CA file named in the URL that cannot be read.
    """
    import ssl

    from redis.exceptions import AuthenticationError, NoPermissionError

    where = _where(url)
    text = str(exc)
    if isinstance(exc, AuthenticationError | NoPermissionError) or any(
        word in text for word in ("WRONGPASS", "NOAUTH", "NOPERM", "invalid username-password")
    ):
        return f"Redis at {where} refused the credentials: {exc}"
    cause: BaseException | None = exc
    for _ in range(8):  # redis-py raises its ConnectionError while handling the OSError
        if cause is None:
            break
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason or "not trusted"
            return (
                f"Redis at {where}: its TLS certificate is not trusted ({why}); name the CA "
                "that signed it in the URL: ?ssl_ca_certs=/path/to/ca.pem"
            )
        if isinstance(cause, FileNotFoundError | PermissionError):
            return f"Redis at {where}: cannot read a file the URL names ({cause.strerror})"
        cause = cause.__cause__ or cause.__context__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"Redis at {where}: its TLS certificate is not trusted ({text})"
    return None


def _where(url: str) -> str:
    from dockprogress.bus import _redact

    return _redact(url)
