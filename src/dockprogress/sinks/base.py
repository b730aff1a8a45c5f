"""What a display is: something that receives task events.

Trackers hand every :class:`~dockprogress.events.TaskEvent` to a :class:`Sink`; a sink renders
on its own clock (the terminal redraws at most 10 times a second, the JSON-lines sink writes
every event). :class:`Fanout` sends one stream of events to several sinks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from dockprogress.events import TaskEvent

__all__ = ["EventCallback", "Fanout", "Sink"]

EventCallback = Callable[[TaskEvent], None]


@runtime_checkable
class Sink(Protocol):
    """Receives events; ``close`` flushes and releases what the sink holds."""

    def send(self, event: TaskEvent) -> None: ...

    def close(self) -> None: ...


class Fanout:
    """One sink that forwards every event to each of ``sinks`` in order.

    ``send`` may be called from several threads at once (the CLI runs one tracker per thread
    when it pulls several images or runs the demo): a lock keeps each event whole across all
    sinks, so the sinks themselves need not be thread-safe.
    """

    __slots__ = ("_lock", "sinks")

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self.sinks: list[Sink] = list(sinks)
        self._lock = threading.Lock()

    def add(self, sink: Sink) -> None:
        with self._lock:
            self.sinks.append(sink)

    def send(self, event: TaskEvent) -> None:
        with self._lock:
            for sink in self.sinks:
                sink.send(event)

    def close(self) -> None:
        with self._lock:
            for sink in self.sinks:
                sink.close()
