"""The mutable task a tracker updates, and the rate window behind speed and ETA.

:class:`Task` is where the event-line promises are enforced, once for every tracker:

1. ``percent`` never decreases, and is 100 only on the ``done`` event;
2. exactly one terminal event (``done``, ``error`` or ``cancelled``), after which every
   update is ignored (the methods return ``None``);
3. ``current`` is clamped to ``total`` when the total is known.

Each mutating method returns the new :class:`~dockprogress.events.TaskEvent` (or ``None``
when the task had already ended). Speed and ETA come from :class:`RateWindow`, sampled in one
place (:meth:`Task._sample`), with an injectable clock for tests.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Mapping
from math import isfinite
from types import MappingProxyType
from typing import Any, Final

from dockprogress.events import EMPTY_DETAIL, Kind, Operation, State, TaskEvent

__all__ = ["MAX_RUNNING_PERCENT", "Clock", "RateWindow", "Task"]

Clock = Callable[[], float]

#: The highest percent a task that has not ended may show: 100 belongs to ``done``.
MAX_RUNNING_PERCENT: Final = 99.9


class _Unset:
    __slots__ = ()


_UNSET: Final = _Unset()
_NUMBERS: Final = (float, int)
_RUNNING: Final = State.RUNNING
_PENDING: Final = State.PENDING

# TaskEvent is a frozen, slotted dataclass: its generated __init__ stores each of its fields
# through object.__setattr__, which is most of the cost of an event. snapshot() fills the
# same slots of a plain twin class instead (an attribute store each) and then makes the
# object a TaskEvent, which Python allows between classes of identical slots: the same
# object as the constructor builds, for a quarter of the work (TaskEvent has no
# __post_init__ to skip). If TaskEvent's fields ever differ from this list, or the class
# switch is refused, it falls back to the constructor (tests/perf/test_equivalence.py
# compares the two, and fails if the fallback is in use).
_EVENT_FIELDS: Final = (
    "ts",
    "task",
    "operation",
    "kind",
    "state",
    "current",
    "total",
    "percent",
    "description",
    "phase",
    "speed",
    "eta",
    "error",
    "detail",
    "priority",
    "node",
)


class _EventSlots:
    """TaskEvent's slots without its frozen ``__setattr__`` (see above)."""

    __slots__ = _EVENT_FIELDS


def _direct_events() -> bool:
    if tuple(f.name for f in dataclasses.fields(TaskEvent)) != _EVENT_FIELDS:
        return False
    if getattr(TaskEvent, "__slots__", None) != _EVENT_FIELDS:
        return False
    if hasattr(TaskEvent, "__post_init__"):
        return False
    probe: Any = _EventSlots()
    try:
        probe.__class__ = TaskEvent
    except TypeError:  # layouts differ after all
        return False
    return True


_DIRECT_EVENTS: Final = _direct_events()


class RateWindow:
    """Units per second over the samples of the last ``window`` seconds.

    A value lower than the previous sample (a counter that restarted) clears the window, so a
    restart never shows as a negative speed.
    """

    __slots__ = ("_samples", "window")

    def __init__(self, window: float = 8.0, max_samples: int = 256) -> None:
        self.window = window
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)

    def add(self, when: float, value: float) -> None:
        samples = self._samples
        if samples and value < samples[-1][1]:
            samples.clear()
        if samples and when == samples[-1][0]:
            samples[-1] = (when, value)
        else:
            samples.append((when, value))
        horizon = when - self.window
        while len(samples) > 2 and samples[1][0] <= horizon:
            samples.popleft()

    def speed(self) -> float | None:
        """Units per second, or ``None`` with fewer than two samples a moment apart."""
        samples = self._samples
        if len(samples) < 2:
            return None
        (t0, v0), (t1, v1) = samples[0], samples[-1]
        elapsed = t1 - t0
        if elapsed <= 0.0:
            return None
        return (v1 - v0) / elapsed

    def clear(self) -> None:
        self._samples.clear()


class Task:
    """One tracked operation. Trackers own it; displays only ever see its events."""

    __slots__ = (
        "_clock",
        "_eta",
        "_rate",
        "_speed",
        "current",
        "description",
        "detail",
        "error",
        "kind",
        "operation",
        "percent",
        "phase",
        "priority",
        "started_at",
        "state",
        "task_id",
        "total",
    )

    def __init__(
        self,
        task_id: str,
        operation: Operation,
        kind: Kind,
        *,
        description: str = "",
        total: float | None = None,
        priority: int = 0,
        clock: Clock = time.time,
        window: float = 8.0,
    ) -> None:
        self.task_id = task_id
        self.operation = operation
        self.kind = kind
        self.description = description
        self.total = total
        self.priority = priority
        self.state = State.PENDING
        self.current: float = 0.0
        self.percent: float | None = None
        self.phase: str | None = None
        self.error: str | None = None
        self.detail: Mapping[str, Any] = EMPTY_DETAIL
        self.started_at: float | None = None
        self._clock = clock
        self._rate = RateWindow(window)
        self._speed: float | None = None
        self._eta: float | None = None

    # ------------------------------------------------------------------ reading

    @property
    def ended(self) -> bool:
        state = self.state
        # (State.terminal hashes the enum member in Python: skip it for the running case)
        return state is not _RUNNING and state.terminal

    @property
    def speed(self) -> float | None:
        return self._speed

    @property
    def eta(self) -> float | None:
        return self._eta

    def snapshot(self) -> TaskEvent:
        """The task as it is now."""
        if _DIRECT_EVENTS:
            running = self.state is _RUNNING
            event: Any = _EventSlots()
            event.ts = self._clock()
            event.task = self.task_id
            event.operation = self.operation
            event.kind = self.kind
            event.state = self.state
            event.current = self.current
            event.total = self.total
            event.percent = self.percent
            event.description = self.description
            event.phase = self.phase
            event.speed = self._speed if running else None
            event.eta = self._eta if running else None
            event.error = self.error
            event.detail = self.detail
            event.priority = self.priority
            event.node = None
            event.__class__ = TaskEvent
            return event  # type: ignore[no-any-return]
        return TaskEvent(
            ts=self._clock(),
            task=self.task_id,
            operation=self.operation,
            kind=self.kind,
            state=self.state,
            current=self.current,
            total=self.total,
            percent=self.percent,
            description=self.description,
            phase=self.phase,
            speed=self._speed if self.state is State.RUNNING else None,
            eta=self._eta if self.state is State.RUNNING else None,
            error=self.error,
            detail=self.detail,
            priority=self.priority,
        )

    # ----------------------------------------------------------------- updating

    def start(self, **changes: Any) -> TaskEvent | None:
        """Move from ``pending`` to ``running`` (idempotent), applying ``changes`` as update."""
        return self.update(**changes)

    def update(
        self,
        *,
        current: float | None = None,
        total: float | _Unset | None = _UNSET,
        percent: float | None = None,
        description: str | None = None,
        phase: str | _Unset | None = _UNSET,
        detail: Mapping[str, Any] | None = None,
        eta: float | _Unset | None = _UNSET,
    ) -> TaskEvent | None:
        """Apply a change and return the new snapshot; ``None`` once the task has ended.

        ``percent``, when given, is the tracker's own overall figure (e.g. a pull weighing
        download and extraction); otherwise it is ``current / total``. Either way it is held
        monotonic and below 100. ``eta``, when given, replaces the rate-based estimate.
        Values that are not finite numbers (NaN, infinity, or a negative amount) are ignored
        as if not given: a parser's garbage must never reach an event line.
        """
        state = self.state
        if state is not _RUNNING and state.terminal:
            return None
        # Not a usable amount (not finite, or negative): as if not given.
        if current is not None and (not isfinite(current) or current < 0):
            current = None
        if percent is not None and not isfinite(percent):
            percent = None
        if isinstance(total, _NUMBERS) and (not isfinite(total) or total < 0):
            total = _UNSET
        explicit = not isinstance(eta, _Unset)
        if explicit and isinstance(eta, _NUMBERS) and not isfinite(eta):
            eta = None
        if state is _PENDING:
            self.state = _RUNNING
            self.started_at = self._clock()
        if not isinstance(total, _Unset):
            self.total = total
        if current is not None:
            self.current = current
        if self.total is not None and self.current > self.total:
            self.current = self.total
        if description is not None:
            self.description = description
        if not isinstance(phase, _Unset):
            self.phase = phase
        if detail is not None:
            self.detail = MappingProxyType(dict(detail))
        # The tracker's percent, else current/total: held monotonic and below 100.
        if percent is None and self.total:
            percent = 100.0 * self.current / self.total
        if percent is not None:
            percent = min(max(percent, 0.0), MAX_RUNNING_PERCENT)
            if self.percent is None or percent > self.percent:
                self.percent = percent
        self._sample(None if isinstance(eta, _Unset) else eta, explicit=explicit)
        return self.snapshot()

    def advance(self, amount: float, **changes: Any) -> TaskEvent | None:
        """Add ``amount`` to ``current``."""
        return self.update(current=self.current + amount, **changes)

    def finish(
        self, *, description: str | None = None, detail: Mapping[str, Any] | None = None
    ) -> TaskEvent | None:
        """End as ``done``: percent 100, and ``current == total`` when the total is known."""
        if self.state.terminal:
            return None
        if self.started_at is None:
            self.started_at = self._clock()
        self.state = State.DONE
        if self.total is None:
            # A task that ends without ever knowing its total did all the work it saw.
            self.total = self.current
        else:
            self.current = self.total
        if description is not None:
            self.description = description
        if detail is not None:
            self.detail = MappingProxyType(dict(detail))
        self.percent = 100.0
        self._eta = None
        return self.snapshot()

    def fail(self, message: str, *, detail: Mapping[str, Any] | None = None) -> TaskEvent | None:
        """End as ``error`` with a message a person can act on."""
        return self._end(State.ERROR, message, detail)

    def cancel(
        self, reason: str | None = None, *, detail: Mapping[str, Any] | None = None
    ) -> TaskEvent | None:
        """End as ``cancelled``."""
        return self._end(State.CANCELLED, reason, detail)

    # ---------------------------------------------------------------- internals

    def _end(
        self, state: State, message: str | None, detail: Mapping[str, Any] | None
    ) -> TaskEvent | None:
        if self.state.terminal:
            return None
        if self.started_at is None:
            self.started_at = self._clock()
        self.state = state
        self.error = message
        if detail is not None:
            self.detail = MappingProxyType(dict(detail))
        self._eta = None
        return self.snapshot()

    def _sample(self, eta: float | None, *, explicit: bool) -> None:
        """The one place speed and ETA are computed."""
        now = self._clock()
        rate = self._rate
        rate.add(now, self.current)
        # The window only changes here: snapshot() reads the speed kept from this sample.
        speed = rate.speed()
        if speed is not None and not isfinite(speed):
            speed = None  # a huge step over a tiny time: too fast to tell, not infinite
        self._speed = speed
        if explicit:
            self._eta = None if eta is None else max(eta, 0.0)
            return
        if self.total is not None and speed is not None and speed > 0:
            eta = max(self.total - self.current, 0.0) / speed
            # (a denormal speed overflows the division: no estimate, rather than infinity)
            self._eta = eta if isfinite(eta) else None
        else:
            self._eta = None
