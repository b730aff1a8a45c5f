"""Publishing events to a running dashboard (``--dashboard URL``) from another process.

:class:`DashboardPublisher` is a :class:`~dockprogress.sinks.base.Sink`. ``send`` never
blocks the tracker and never raises: it puts the event in a bounded buffer that a background
thread POSTs to ``URL/api/publish`` as JSON lines, in batches (at most every ``interval``
seconds).

Buffer policy: events wait in arrival order. When the buffer holds ``max_buffer`` events
(the server is slow or unreachable) it is compacted to the latest event of each task —
enough for a dashboard, whose events are whole snapshots; a task's terminal event is its
latest, so it is never dropped. Should that still be too many, the oldest unfinished tasks'
states go first. While the server cannot be reached the thread retries with a growing delay
(up to ``max_backoff``), and one warning goes to standard error. A refused token (401/403)
is also reported once, and publishing stops.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Final, TextIO

from dockprogress.events import TaskEvent

__all__ = ["DashboardPublisher"]

#: Seconds one POST may take before it counts as a failure.
POST_TIMEOUT: Final = 5.0

# The dashboard is a direct peer (usually on loopback): never route it through a proxy
# configured for the internet.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DashboardPublisher:
    """A sink that sends every event to ``URL/api/publish`` from a background thread."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        interval: float = 0.1,
        max_buffer: int = 1000,
        max_backoff: float = 5.0,
        close_timeout: float = 3.0,
        stderr: TextIO | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/publish"
        self.token = token
        self.interval = interval
        self.max_buffer = max_buffer
        self.max_backoff = max_backoff
        self.close_timeout = close_timeout
        self._stderr = stderr
        self._buffer: list[TaskEvent] = []
        self._cond = threading.Condition()
        self._closing = False
        self._refused = False
        self._warned = False
        self.sent = 0
        self.dropped = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="dockprogress-publish", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------------- sink

    def send(self, event: TaskEvent) -> None:
        """Queue ``event``; returns at once, whatever the server does."""
        with self._cond:
            if self._closing or self._refused:
                return
            self._buffer.append(event)
            if len(self._buffer) > self.max_buffer:
                self._compact()
            self._cond.notify()

    def close(self) -> None:
        """Send what is buffered (waiting at most ``close_timeout`` s), then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(self.close_timeout)

    # --------------------------------------------------------------- internals

    def _compact(self) -> None:
        """Keep the latest event per task (lock held); then drop the oldest if still too many."""
        before = len(self._buffer)
        latest: dict[str, TaskEvent] = {}
        for event in self._buffer:
            latest.pop(event.task, None)
            latest[event.task] = event
        kept = list(latest.values())
        if len(kept) > self.max_buffer:
            running = [e for e in kept if not e.terminal]
            excess = {e.task for e in running[: len(kept) - self.max_buffer]}
            kept = [e for e in kept if e.task not in excess]
        self._buffer = kept
        self.dropped += before - len(kept)

    def _run(self) -> None:
        backoff = self.interval
        while True:
            with self._cond:
                while not self._buffer and not self._closing:
                    self._cond.wait()
                if not self._buffer:
                    return
                batch, self._buffer = self._buffer, []
                closing = self._closing
            outcome = self._post(batch)
            if outcome == "drop":  # the server will never take these: do not retry them
                self.dropped += len(batch)
                continue
            if outcome == "ok":
                self.sent += len(batch)
                backoff = self.interval
                if closing:
                    continue  # drain anything that arrived meanwhile, then return
                time.sleep(self.interval)  # batching: let events gather between posts
                continue
            if self._refused:
                return
            self.failures += 1
            with self._cond:
                # Put the batch back in front of newer events, bounded like everything else.
                self._buffer = batch + self._buffer
                if len(self._buffer) > self.max_buffer:
                    self._compact()
                if self._closing:
                    return  # the server is not answering: do not hold the tracker's exit
                self._cond.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _post(self, batch: list[TaskEvent]) -> str:
        """POST one batch: ``"ok"``, ``"retry"`` (try again later) or ``"drop"``."""
        body = "".join(event.to_json() + "\n" for event in batch).encode("utf-8")
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-ndjson"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with _OPENER.open(request, timeout=POST_TIMEOUT) as response:
                response.read()
            return "ok"
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                self._refused = True
                self._warn(f"the dashboard at {self.endpoint} refused the token ({exc.code})")
                return "drop"
            self._warn(f"the dashboard at {self.endpoint} answered {exc.code}: {exc.reason}")
            return "drop" if 400 <= exc.code < 500 and exc.code not in (408, 429) else "retry"
        except (OSError, ValueError) as exc:
            self._warn(f"cannot publish to the dashboard at {self.endpoint}: {exc}")
            return "retry"

    def _warn(self, message: str) -> None:
        if self._warned:
            return
        self._warned = True
        stream = self._stderr if self._stderr is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):  # a closed stderr is no reason to fail
            print(f"dockprogress: warning: {message} (progress still shows here)", file=stream)
