"""What a display is: something that receives task events.

Trackers hand every :class:`~dockprogress.events.TaskEvent` to a :class:`Sink`; a sink renders
on its own clock (the terminal redraws at most 10 times a second, the JSON-lines sink writes
every event). :class:`Fanout` sends one stream of events to several sinks.
"""

from __future__ import annotations

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
    """One sink that forwards every event to each of ``sinks`` in order."""

    __slots__ = ("sinks",)

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self.sinks: list[Sink] = list(sinks)

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def send(self, event: TaskEvent) -> None:
        for sink in self.sinks:
            sink.send(event)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()
