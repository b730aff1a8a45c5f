"""Event lines (``--progress json``): one JSON object per event, flushed as written."""

from __future__ import annotations

import sys
from typing import TextIO

from dockprogress.events import TaskEvent

__all__ = ["JsonLinesSink"]


class JsonLinesSink:
    """Writes every event as one ``\\n``-terminated JSON line to ``stream`` (stdout)."""

    __slots__ = ("_stream",)

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout

    def send(self, event: TaskEvent) -> None:
        self._stream.write(event.to_json() + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()
