"""The read loop shared by the exec adapter and the local pty runner.

It moves bytes from a TTY source into an :class:`~dockprogress.core.execprogress.ExecTracker`
and nothing else: optional pass-through of the raw bytes, a partial-frame flush as soon as
the output pauses (so a bar shows its latest state without waiting for the next ``\\r``,
which tqdm writes only with its next update), and a check of the cancel flag between reads.
Sources are a ``read(timeout)`` function returning bytes, ``b""`` at EOF, or ``None`` when
nothing arrived within ``timeout`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import BinaryIO, Final

from dockprogress.core.execprogress import ExecTracker
from dockprogress.events import TaskEvent

__all__ = ["IDLE_FLUSH", "Reader", "pump"]

#: Seconds without output after which the row being written is parsed as it stands.
IDLE_FLUSH: Final = 0.1

Reader = Callable[[float], bytes | None]


def pump(
    read: Reader,
    tracker: ExecTracker,
    *,
    cancel: threading.Event | None = None,
    passthrough: BinaryIO | None = None,
    idle: float = IDLE_FLUSH,
) -> Generator[TaskEvent, None, bool]:
    """Feed ``read()`` into ``tracker`` until EOF, yielding its events.

    Returns ``True`` (as the generator's value) when it stopped because ``cancel`` was set,
    ``False`` at EOF (after the tracker has seen ``feed_eof``).
    """
    timeout = idle
    while True:
        if cancel is not None and cancel.is_set():
            return True
        data = read(timeout)
        if data is None:
            # Output paused (right after a read when ``timeout`` was 0): show the row being
            # written now rather than at its terminator, which tqdm only writes with the next
            # update. The tracker drops repeats, so the idle flushes that follow cost nothing.
            yield from tracker.flush_partial()
            timeout = idle
            continue
        if not data:
            break
        if passthrough is not None:
            passthrough.write(data)
            passthrough.flush()
        yield from tracker.feed(data)
        timeout = 0.0  # poll: more bytes of the same burst may be waiting already
    yield from tracker.feed_eof()
    return False
