"""Live progress bars on a terminal (``--progress tty``), drawn with rich.

One row per task, ordered by priority (lower number = more important = first), then by the
time the task was first seen. A row shows a state mark, the task id, its description, a bar
of the overall ``percent``, and the figures of its kind:

* ``download`` tasks: ``"1.2 GB / 3.1 GB"``, speed (``"5.0 MB/s"``) and ETA;
* ``count`` tasks: ``"45/100"``, and ETA when known;
* unknown totals: a pulsing bar and the elapsed time;
* ``error`` / ``cancelled``: the message in place of the description (red / yellow).

The model is kept apart from the drawing: :meth:`TerminalSink.send` only stores the task's
latest event under a lock; rich's refresh thread draws at most ``refresh_per_second`` times a
second (10 by default) however fast events arrive. :meth:`TerminalSink.renderable` builds a
frame from the stored state at a given time, which is what the tests draw with a fake clock.

Colours follow ``NO_COLOR`` (https://no-color.org). Text that came from containers (log
lines, tool output, engine messages) goes through :func:`dockprogress.humanize.printable` and
into rich ``Text`` objects, never markup, so it cannot inject escape sequences or styles.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from dockprogress import humanize
from dockprogress.events import Kind, State, TaskEvent

__all__ = ["TerminalSink"]

_MARKS: dict[State, tuple[str, str]] = {
    State.PENDING: ("·", "dim"),
    State.RUNNING: ("›", "cyan"),
    State.DONE: ("✓", "green"),
    State.ERROR: ("✗", "bold red"),
    State.CANCELLED: ("⊘", "yellow"),
}

_BAR_WIDTH = 24
_PULSE_LENGTH = 6
# Cell positions in a row: mark, task id, note, bar, percent, figures, speed, time.
_NAME, _NOTE, _BAR = 1, 2, 3
_RIGHT = frozenset({4, 5, 6, 7})
_NAME_MAX, _NOTE_MAX = 48, 56
_PULSE_SPEED = 12.0  # cells per second


@dataclass(slots=True)
class _Row:
    event: TaskEvent
    first_seen: float
    order: int


class TerminalSink:
    """A :class:`~dockprogress.sinks.base.Sink` drawing live bars on ``stream`` (stderr).

    ``console`` replaces the rich console built on ``stream`` (tests pass a recording one);
    ``clock`` gives the time for the pulse animation and elapsed times;
    ``live=False`` keeps state without starting rich's refresh thread (for tests that only
    call :meth:`renderable`).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        console: Console | None = None,
        clock: Callable[[], float] = time.time,
        refresh_per_second: float = 10.0,
        live: bool = True,
    ) -> None:
        if console is None:
            console = Console(
                file=stream if stream is not None else sys.stderr,
                force_terminal=True,
                no_color=os.environ.get("NO_COLOR", "") != "",
                highlight=False,
                emoji=False,
            )
        self.console = console
        self._clock = clock
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()
        self._use_live = live
        self._live: Live | None = None
        self._refresh_per_second = refresh_per_second
        self.frames = 0  # how many frames were built: the redraw throttle is tested on it

    # -------------------------------------------------------------------- sink

    def send(self, event: TaskEvent) -> None:
        """Store ``event`` as its task's latest state; drawing happens on rich's clock."""
        with self._lock:
            row = self._rows.get(event.task)
            if row is None:
                self._rows[event.task] = _Row(event, event.ts, len(self._rows))
            elif not row.event.terminal:
                row.event = event
        if self._use_live and self._live is None:
            self._live = Live(
                get_renderable=self._frame,
                console=self.console,
                auto_refresh=True,
                refresh_per_second=self._refresh_per_second,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    def close(self) -> None:
        """Stop the refresh thread, leaving the final frame on screen."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()
        self._use_live = False

    # ---------------------------------------------------------------- drawing

    def renderable(self, now: float | None = None) -> RenderableType:
        """The frame for the current state at time ``now`` (default: the sink's clock)."""
        if now is None:
            now = self._clock()
        with self._lock:
            rows = sorted(
                self._rows.values(), key=lambda r: (r.event.priority, r.first_seen, r.order)
            )
            events = [(row.event, row.first_seen) for row in rows]
        return _Frame(events, now)

    def _frame(self) -> RenderableType:
        self.frames += 1
        return self.renderable()


class _Frame:
    """One frame of rows, laid out for the width it is drawn at.

    The bar, percent, figures, speed and time always fit; the task id and description share
    what is left and are cut with an ellipsis (an error message wraps instead). Columns that
    are empty in every row take no space.
    """

    def __init__(self, events: list[tuple[TaskEvent, float]], now: float) -> None:
        self.events = events
        self.now = now

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        bar_width = _BAR_WIDTH if width >= 120 else 16 if width >= 90 else 10
        rows = [_cells(event, first, self.now, bar_width) for event, first in self.events]
        if not rows:
            return
        need = [
            max(cell.cell_len if isinstance(cell, Text) else bar_width for cell in column)
            for column in zip(*rows, strict=True)
        ]
        need[_BAR] = bar_width
        # Long ids and log lines would push every bar far right: cap them, cut with "…".
        need[_NAME] = min(need[_NAME], _NAME_MAX)
        need[_NOTE] = min(need[_NOTE], _NOTE_MAX)
        shown = [i for i, cells in enumerate(need) if cells > 0 or i == _BAR]
        fixed = sum(need[i] for i in shown if i not in (_NAME, _NOTE)) + len(shown) - 1
        rest = max(width - fixed, 8)
        if need[_NAME] + need[_NOTE] > rest:
            need[_NAME] = min(need[_NAME], max(rest // 2, min(rest, 12)))
            need[_NOTE] = max(rest - need[_NAME], 0)
        table = Table.grid(padding=(0, 1), expand=False)
        for i in shown:
            table.add_column(
                width=need[i],
                no_wrap=True,
                overflow="ellipsis",
                justify="right" if i in _RIGHT else "left",
            )
        for row in rows:
            table.add_row(*(row[i] for i in shown))
        yield table


def _cells(event: TaskEvent, first_seen: float, now: float, bar_width: int) -> list[RenderableType]:
    mark, mark_style = _MARKS[event.state]
    is_download = event.kind is Kind.DOWNLOAD
    if event.state is State.ERROR:
        # The message is what the user acts on: wrapped in full, never cut to an ellipsis.
        note = Text(
            f"error: {humanize.printable(event.error or 'failed')}",
            style="red",
            no_wrap=False,
            overflow="fold",
        )
    elif event.state is State.CANCELLED:
        reason = humanize.printable(event.error or "")
        note = Text(f"cancelled: {reason}" if reason else "cancelled", style="yellow")
    else:
        note = Text(humanize.printable(event.description))
    if is_download:
        figures = humanize.size_pair(event.current, event.total)
    else:
        figures = humanize.count(event.current, event.total)
    percent = "" if event.percent is None else f"{math.floor(event.percent)}%"
    speed = humanize.rate(event.speed, bytes_=is_download) if is_download else ""
    if event.state is State.RUNNING and event.eta is not None:
        timing = f"eta {humanize.duration(event.eta)}"
    else:
        timing = humanize.duration(max(event.ts, now) - first_seen)
        if event.terminal:
            timing = f"in {humanize.duration(event.ts - first_seen)}"
    return [
        Text(mark, style=mark_style),
        Text(humanize.printable(event.task), style="bold"),
        note,
        _bar(event, now, bar_width),
        Text(percent),
        Text(figures),
        Text(speed, style="green"),
        Text(timing, style="cyan"),
    ]


def _bar(event: TaskEvent, now: float, width: int) -> RenderableType:
    if event.percent is None and event.state in (State.RUNNING, State.PENDING):
        return _pulse(now, width)
    bar_style = {State.ERROR: "red", State.CANCELLED: "yellow"}.get(event.state, "bar.complete")
    return ProgressBar(
        total=100.0,
        completed=event.percent or 0.0,
        width=width,
        complete_style=bar_style,
        finished_style="bar.finished",
    )


def _pulse(now: float, width: int) -> Text:
    """An indeterminate bar: a segment sweeping across, readable without colours too.

    Its position is a function of ``now`` only, so a frame drawn at a given time is fixed.
    """
    span = width + _PULSE_LENGTH
    head = int(now * _PULSE_SPEED) % span  # the segment's right end, entering from the left
    start, end = max(head - _PULSE_LENGTH, 0), min(head, width)
    text = Text("─" * start, style="bar.back")
    text.append("━" * max(end - start, 0), style="bar.pulse")
    text.append("─" * (width - max(end, start)), style="bar.back")
    return text
