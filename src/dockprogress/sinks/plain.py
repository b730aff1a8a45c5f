"""One line per state change (``--progress plain``): for logs, CI and pipes.

A task gets a line when it is first seen, when its state, phase or description changes, when
its percent enters a new 10 % step, at most every ``heartbeat`` seconds (of the events' own
time) while work moves without a known percent, and always on its terminal event::

    pull:127.0.0.1:5000/dp/layers:1  running  30%  35 MB / 117 MB  5.0 MB/s  eta 0:17  Downloading
    pull:127.0.0.1:5000/dp/layers:1  done  100%  117 MB / 117 MB  in 0:24  Pull complete
    exec:db/psql  error  45/100  exit code 2: relation "x" does not exist

The state word says it once: an error's or a cancellation's reason follows it unprefixed.

No escape codes, ever: text from containers is made printable
(:func:`dockprogress.humanize.printable`). Each line is flushed as written.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TextIO

from dockprogress import humanize
from dockprogress.events import Kind, State, TaskEvent

__all__ = ["PlainSink"]


@dataclass(slots=True)
class _Seen:
    state: State
    phase: str | None
    description: str
    step: int
    current: float
    line_ts: float
    first_ts: float


class PlainSink:
    """A :class:`~dockprogress.sinks.base.Sink` writing one line per change to ``stream``."""

    __slots__ = ("_seen", "_stream", "heartbeat")

    def __init__(self, stream: TextIO | None = None, *, heartbeat: float = 10.0) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._seen: dict[str, _Seen] = {}
        self.heartbeat = heartbeat

    def send(self, event: TaskEvent) -> None:
        seen = self._seen.get(event.task)
        if seen is not None and seen.state.terminal:
            return
        step = -1 if event.percent is None else math.floor(event.percent / 10)
        if seen is not None and not self._changed(seen, event, step):
            return
        first_ts = event.ts if seen is None else seen.first_ts
        self._seen[event.task] = _Seen(
            event.state, event.phase, event.description, step, event.current, event.ts, first_ts
        )
        self._stream.write(format_line(event, first_ts) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()

    def _changed(self, seen: _Seen, event: TaskEvent, step: int) -> bool:
        return (
            event.state is not seen.state
            or event.phase != seen.phase
            or event.description != seen.description
            or step > seen.step
            or (
                step < 0
                and event.current != seen.current
                and event.ts - seen.line_ts >= self.heartbeat
            )
        )


def format_line(event: TaskEvent, first_ts: float | None = None) -> str:
    """The plain line for ``event``: fields separated by two spaces, empty ones left out."""
    is_download = event.kind is Kind.DOWNLOAD
    percent = "" if event.percent is None else f"{math.floor(event.percent)}%"
    if is_download:
        figures = humanize.size_pair(event.current, event.total)
    else:
        figures = humanize.count(event.current, event.total)
    parts = [humanize.printable(event.task), event.state.value, percent, figures]
    if event.state is State.RUNNING:
        if is_download:
            parts.append(humanize.rate(event.speed))
        if event.eta is not None:
            parts.append(f"eta {humanize.duration(event.eta)}")
    elif event.terminal and first_ts is not None:
        parts.append(f"in {humanize.duration(event.ts - first_ts)}")
    if event.state is State.ERROR:
        parts.append(humanize.printable(event.error or "failed"))
    elif event.state is State.CANCELLED:
        parts.append(humanize.printable(event.error or ""))
    if event.state is not State.ERROR:
        parts.append(humanize.printable(event.description))
    return "  ".join(part for part in parts if part)
