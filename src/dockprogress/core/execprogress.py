"""Sans-IO tracker for a command's TTY output: bytes in, :class:`TaskEvent` out.

:class:`ExecTracker` joins :class:`~dockprogress.core.tty.TtyParser` (screen rows) and
:class:`~dockprogress.core.bars.BarBoard` (one state per bar) to a
:class:`~dockprogress.task.Task` of operation ``exec`` (``docker exec``) or ``run`` (a local
command under a pty). It does no I/O: the adapters in :mod:`dockprogress.docker.exec` and
:mod:`dockprogress.local` move the bytes and report the exit status.

Contract
--------
* The task's ``kind`` never changes once an event is out, and it depends on the first bar
  (``download`` for a tqdm bar counting bytes, else ``count``). So unless ``kind=`` is given,
  ``start()`` returns ``None`` and the ``running`` event comes with the first bar, or from
  ``flush_partial()`` once ``kind_wait`` seconds have passed without one (then ``count``),
  counted from ``start()``: the adapters call it once the command runs, and setting up a
  ``docker exec`` on a busy machine can itself take longer than ``kind_wait``. Once a tool
  has announced its bars (pip's ``Collecting``, wget's ``Length:``, a shipped or ``--bars``
  announcement) the wait is ``announced_wait`` (10 s) instead: pip on a busy machine takes
  more than a second from ``Collecting`` to its first byte bar, which must make the task a
  ``download``.
* ``start()`` gives the ``running`` event (see above); ``feed(data)`` the events the bytes caused,
  identical for any chunking of the same bytes (given the same clock readings: the clock is
  read once per frame); ``feed_eof()`` parses the last, unterminated frame;
  ``flush_partial()`` (called by an adapter when output pauses) reads the frames held back
  and shows the row being written without waiting for its terminator.
* The board reads frames at most once per ``min_interval`` (50 ms) of the clock: frames
  that come sooner are held back, the latest of each row, and a held frame is dropped only
  when the same bar is redrawn on its row (see ``_frames``). ``min_interval=0`` reads every
  frame.
* An event is emitted only when something a person would see changes: the overall percent
  (to 0.1 point; ``current`` when there is no percent), ``total``, the description or the
  followed bar.
* ``percent`` is the board's overall figure (see :mod:`dockprogress.core.bars`), held
  monotonic by :class:`Task`. ``current``/``total`` are the followed bar's own ``n/total``
  (bytes for a ``download`` task), or percent points out of 100 for bars that only show a
  percentage.
* Text never finishes the task. ``exit(code)`` does: ``done`` for status 0, else ``error``
  with the status and the last lines of output (also in ``detail["last_lines"]``);
  :meth:`error_for` builds the matching :class:`~dockprogress.errors.ExecError`.
  ``cancel()`` ends it ``cancelled``.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from operator import itemgetter
from typing import Any, Final

from dockprogress.core.barfiles import Recognisers, load_bars
from dockprogress.core.bars import Bar, BarBoard, BarReading
from dockprogress.core.tty import DEFAULT_MAX_LINE, Frame, TtyParser
from dockprogress.errors import ExecError, UsageError
from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.task import Clock, Task

__all__ = [
    "MIN_INTERVAL",
    "ExecTracker",
    "compile_bar_pattern",
    "default_recognisers",
    "percent_callback",
    "recognisers_for",
]

_DEFAULT: list[Recognisers] = []


def default_recognisers() -> Recognisers:
    """The shipped bar files, compiled once per process."""
    if not _DEFAULT:
        _DEFAULT.append(Recognisers())
    return _DEFAULT[0]


def recognisers_for(paths: list[str] | tuple[str, ...] | None) -> Recognisers:
    """``--bars FILE`` (any number): the user's files first, then the shipped ones.

    An unusable file is a :class:`~dockprogress.core.barfiles.BarFileError` (exit status 2).
    """
    if not paths:
        return default_recognisers()
    return load_bars(*paths)


#: Seconds between two reads of the held-back frames by the board (see ExecTracker._frames):
#: a dashboard shows at most 10 updates a second per task anyway.
MIN_INTERVAL: Final = 0.05
_WALL_CLOCK: Final = time.time
#: How much of the start of a row tells that a new frame redraws the same bar.
_SAME_START: Final = 8
_ROW: Final = itemgetter(0)
_TEXT: Final = itemgetter(1)
_START: Final = itemgetter(slice(0, _SAME_START))
#: What a redraw of the same bar may change in that start: figures, padding, a spinner.
_SKELETON: Final = {ord(c): "#" for c in "0123456789 "} | dict.fromkeys(range(0x2800, 0x2900), "#")

_NOT_FOUND_STATUSES: Final = {126: "could not be started", 127: "was not found"}
_MAX_SHOWN: Final = 128


def compile_bar_pattern(pattern: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """``--bar REGEX`` compiled; an invalid pattern is a :class:`UsageError` (exit status 2)."""
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--bar {pattern!r} is not a valid regular expression: {exc}") from exc


class ExecTracker:
    """One command's task, driven by its raw TTY output."""

    __slots__ = (
        "_board",
        "_clock",
        "_created",
        "_kind_decided",
        "_last_key",
        "_parser",
        "_pending",
        "_read_at",
        "_shown",
        "_tail",
        "announced_wait",
        "command",
        "kind_wait",
        "min_interval",
        "task",
    )

    def __init__(
        self,
        task_id: str,
        *,
        operation: Operation = Operation.EXEC,
        description: str = "",
        bar: str | re.Pattern[str] | None = None,
        clock: Clock = time.time,
        priority: int = 0,
        max_line: int = DEFAULT_MAX_LINE,
        tail_lines: int = 10,
        kind: Kind | None = None,
        kind_wait: float = 1.0,
        announced_wait: float = 10.0,
        bars: Recognisers | None = None,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.command = description
        self.task = Task(
            task_id,
            operation,
            kind or Kind.COUNT,
            description=description,
            priority=priority,
            clock=clock,
        )
        self._kind_decided = kind is not None
        self._clock = clock
        self._created = clock()
        self.kind_wait = kind_wait
        self.announced_wait = announced_wait
        self._parser = TtyParser(max_line=max_line)
        self._board = BarBoard(
            compile_bar_pattern(bar), recognisers=default_recognisers() if bars is None else bars
        )
        self._tail: deque[Frame] = deque(maxlen=tail_lines)  # the last non-blank per row
        # Frames not read yet: the latest of each row, in stream order (see _frames).
        self._pending: dict[int, Frame] = {}
        self.min_interval = min_interval
        self._read_at = -math.inf  # when the board last read frames (the clock's time)
        self._last_key: tuple[Any, ...] | None = None
        # Each bar's entry of detail["bars"], kept while its reading and row stay the same.
        self._shown: dict[str, tuple[BarReading, int, dict[str, Any]]] = {}

    # ----------------------------------------------------------------- input

    def start(self) -> TaskEvent | None:
        """The ``running`` event, or ``None`` while the kind waits for the first bar (for
        ``kind_wait`` seconds from now: the command has just started)."""
        if not self._kind_decided:
            self._created = self._clock()
            return None
        return self.task.start()

    def feed(self, data: bytes) -> list[TaskEvent]:
        return self._frames(self._parser.feed(data))

    def feed_eof(self) -> list[TaskEvent]:
        events = self._frames(self._parser.feed_eof())
        return self._read_pending(events)

    def flush_partial(self) -> list[TaskEvent]:
        events = self._read_pending([])  # output paused: what is held back is the latest
        frame = self._parser.flush_partial()
        if frame is not None and self._board.apply(frame):
            event = self._update()
            if event is not None:
                events.append(event)
        wait = self.announced_wait if self._board.announced else self.kind_wait
        if not self._kind_decided and self._clock() - self._created >= wait:
            self._kind_decided = True  # no bar yet: counting it is
            event = self.task.start()
            if event is not None:
                events.append(event)
        return events

    # ------------------------------------------------------------------- end

    def exit(self, exit_code: int | None) -> TaskEvent | None:
        """End the task from the command's exit status (``None``: unknown, an error)."""
        if exit_code == 0:
            return self.task.finish(detail=self._detail(exit_code=exit_code))
        detail = self._detail(exit_code=exit_code, last_lines=list(self.last_lines))
        return self.task.fail(self.error_for(exit_code).message, detail=detail)

    def cancel(self, reason: str = "cancelled") -> TaskEvent | None:
        """End as ``cancelled``; the detail keeps the last lines of output."""
        return self.task.cancel(reason, detail=self._detail(last_lines=list(self.last_lines)))

    def error_for(self, exit_code: int | None) -> ExecError:
        """The :class:`ExecError` for a failed command: status, and what it last printed."""
        what = f"command {self.command!r}" if self.command else "command"
        if exit_code is None:
            message = f"{what} ended without an exit status"
        elif exit_code in _NOT_FOUND_STATUSES:
            message = f"{what} {_NOT_FOUND_STATUSES[exit_code]} (exit status {exit_code})"
        else:
            message = f"{what} exited with status {exit_code}"
        lines = self.last_lines
        if lines:
            message += f": {lines[-1]}"
        return ExecError(message, exit_code=exit_code, last_lines=lines)

    # --------------------------------------------------------------- reading

    @property
    def last_lines(self) -> tuple[str, ...]:
        """The last rows of output as they stood on screen (bars at their latest state)."""
        return tuple(frame.text.rstrip() for frame in self._tail)

    @property
    def board(self) -> BarBoard:
        return self._board

    # ------------------------------------------------------------- internals

    def _frames(self, frames: list[Frame]) -> list[TaskEvent]:
        """Take ``frames`` in; the board reads them at most once per ``min_interval``.

        A bar redrawn many times a second (tqdm with ``mininterval=0``) gives one frame per
        redraw, and only the latest of each row can be on screen: frames that come less than
        ``min_interval`` (on the injected clock) after the board last read are held back, the
        latest per row in stream order, and read with the first frame that comes later, at
        a blank frame (an erased bar), at EOF and when output pauses (``flush_partial``).
        An injected clock is read once per frame, so with a clock that depends only on the
        frames (a test's), the events stay the same for any chunking of the bytes; the wall
        clock once per read.
        """
        events: list[TaskEvent] = []
        if len(frames) > 1:
            frames = self._same_row(frames, events)
        tail = self._tail
        pending = self._pending
        unproven = self._board.unproven
        clock = self._clock
        interval = self.min_interval
        read_at = self._read_at
        # On the wall clock the frames of one read arrived at one instant: read it once (as
        # _same_row does). An injected clock is read per frame, so that events depend on
        # the frames only, whatever the read boundaries.
        wall = clock is _WALL_CLOCK
        now = clock() if wall else 0.0
        for frame in frames:
            row = frame[0]
            text = frame[1]
            blank = text.isspace()
            if not blank:
                if tail and tail[-1][0] == row:
                    tail[-1] = frame
                else:
                    tail.append(frame)
            held = pending.get(row)
            if held is not None:
                # Superseded when it is the same bar drawn again: the same start of the row
                # (a description, a label; figures, padding and a spinner aside), and not a
                # bar whose every frame may prove what its k/M/G mean. Else the board reads
                # what is held first.
                start = held[1][:_SAME_START]
                if (
                    start != text[:_SAME_START]
                    and start.translate(_SKELETON) != text[:_SAME_START].translate(_SKELETON)
                ) or row in unproven:
                    self._read_pending(events)
                else:
                    del pending[row]  # keep the stream order of the latest frames
            pending[row] = frame
            if not wall:
                now = clock()
            # A blank frame takes a bar off screen (tqdm erasing a finished inner bar): read
            # at once, so no later text on that row can hide the erase.
            if blank or now - read_at >= interval:
                self._read_at = read_at = now
                self._read_pending(events)
        return events

    def _same_row(self, frames: list[Frame], events: list[TaskEvent]) -> list[Frame]:
        """The loop of :meth:`_frames` for a read that redraws one bar on one row (tqdm's
        every read), with the per-frame tests done in C; returns the frames left to it.

        Same result as the loop: every frame supersedes the one before (one row, one start,
        none blank, a bar whose base is known), so only the clock decides, frame by frame,
        when the board reads the latest.
        """
        row = frames[0][0]
        board = self._board
        if row in board.unproven or frames[-1][0] != row:
            return frames
        texts = list(map(_TEXT, frames))
        low, high = min(texts), max(texts)
        if low[:_SAME_START] == high[:_SAME_START]:  # then every text starts so
            starts = {low[:_SAME_START]}
        else:
            starts = set(map(_START, texts))
        held = self._pending.get(row)
        if held is not None:
            starts.add(held[1][:_SAME_START])
        if len(starts) > 1:  # a percent or a spinner in the start: compare without them
            starts = {start.translate(_SKELETON) for start in starts}
        if len(starts) > 1 or set(map(_ROW, frames)) != {row} or any(map(str.isspace, texts)):
            return frames
        tail = self._tail
        if tail and tail[-1][0] == row:
            tail[-1] = frames[-1]
        else:
            tail.append(frames[-1])
        pending = self._pending
        clock = self._clock
        interval = self.min_interval
        last = frames[-1]
        read_at = self._read_at
        if clock is _WALL_CLOCK and interval > 0:
            # The real clock: the frames of one read arrived at one instant, which only the
            # first of them can find due (what the loop below does, one clock read each).
            now = clock()
            if now - read_at >= interval:
                pending.pop(row, None)
                pending[row] = frames[0]
                self._read_at = now
                self._read_pending(events)
                if row in board.unproven:
                    return frames[1:]
            pending.pop(row, None)
            pending[row] = last
            return []
        for index, frame in enumerate(frames):
            now = clock()
            if now - read_at >= interval:
                pending.pop(row, None)
                pending[row] = frame
                self._read_at = read_at = now
                self._read_pending(events)
                if row in board.unproven:  # this bar's base is to be proved: every frame
                    return frames[index + 1 :]
        pending.pop(row, None)
        pending[row] = last
        return []

    def _read_pending(self, events: list[TaskEvent]) -> list[TaskEvent]:
        """Apply the held-back frames to the board; at most one event for all of them."""
        pending = self._pending
        if not pending:
            return events
        apply = self._board.apply
        changed = False
        for frame in pending.values():
            if apply(frame):
                changed = True
        pending.clear()
        if changed:
            event = self._update()
            if event is not None:
                events.append(event)
        return events

    def _update(self) -> TaskEvent | None:
        task = self.task
        board = self._board
        percent, eta = board.overall()
        bar = board.followed()
        current, total = self._amounts(bar, percent)
        shown = bar.reading.description if bar is not None else ""
        description = shown or self.command
        phase = shown or None
        if percent is not None and task.percent is not None:
            percent = max(percent, task.percent)  # what the task will show anyway
        # With a percent known, counts that do not move it by 0.1 point are not news (a
        # tqdm bar with mininterval=0 redraws on every item).
        key = (
            None if percent is None else round(percent, 1),
            current if percent is None else None,
            total,
            description,
            phase,
        )
        if key == self._last_key:
            return None
        self._last_key = key
        return task.update(
            current=current,
            total=total,
            percent=percent,
            description=description,
            phase=phase,
            eta=eta,
            detail=self._detail(_followed=bar),
        )

    def _amounts(self, bar: Bar | None, percent: float | None) -> tuple[float, float | None]:
        task = self.task
        reading = None if bar is None else bar.reading
        if reading is not None and reading.n is not None:
            if not self._kind_decided:
                self._kind_decided = True
                if reading.is_bytes:
                    task.kind = Kind.DOWNLOAD
            if reading.is_bytes == (task.kind is Kind.DOWNLOAD):
                summed = self._board.sequence_amounts(reading.tool) if reading.tool else None
                if summed is not None:
                    return summed
                return reading.n, reading.total
        self._kind_decided = True
        if task.kind is Kind.DOWNLOAD:
            return task.current, task.total
        if percent is None:  # bars of unknown progress: nothing to count yet
            return task.current, task.total
        return percent, 100.0

    def _detail(self, _followed: Bar | bool | None = False, **extra: Any) -> dict[str, Any]:
        """``_followed``: the board's followed bar when the caller has it (else read here)."""
        detail: dict[str, Any] = {"bars": [self._shown_bar(bar) for bar in self._board.bars[:16]]}
        followed = self._board.followed() if _followed is False else _followed
        if isinstance(followed, Bar) and followed.reading.approximate:
            # current/total read from a rounded display (4.2 MB) or in a guessed base
            detail["approximate"] = True
        if extra:
            detail.update({k: v for k, v in extra.items() if v is not None})
        return detail

    def _shown_bar(self, bar: Bar) -> dict[str, Any]:
        """``bar``'s entry of ``detail["bars"]``: the same (never mutated) dict while the bar
        is unchanged, as most events change one bar of several."""
        reading = bar.reading
        shown = self._shown.get(bar.key)
        if shown is not None and shown[0] is reading and shown[1] == bar.row:
            return shown[2]
        entry = {
            "row": bar.row,
            "description": reading.description,
            "style": reading.style.value,
            "percent": reading.percent,
            "n": reading.n,
            "total": reading.total,
            "unit": reading.unit,
        }
        if reading.approximate:
            entry["approximate"] = True
        if len(self._shown) >= _MAX_SHOWN:
            self._shown.clear()
        self._shown[bar.key] = (reading, bar.row, entry)
        return entry


def percent_callback(
    progress_callback: Callable[[float], object],
) -> Callable[[TaskEvent], None]:
    """Wrap the seed's ``progress_callback(percent)`` as an event callback.

    It is called with each new overall percent (never lower than the previous one), and with
    100 when the task is done.
    """
    last: list[float] = []

    def on_event(event: TaskEvent) -> None:
        percent = event.percent
        if percent is None or (last and percent <= last[0]):
            return
        last[:] = [percent]
        progress_callback(percent)

    return on_event
