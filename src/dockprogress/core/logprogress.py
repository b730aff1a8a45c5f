"""Sans-IO tracker of a service's progress from its log lines: lines in, task events out.

Progress model (kind ``count``): ``current`` is percent points and ``total`` is 100, so
``current == percent``; ``phase`` is the name of the last milestone matched and
``description`` its description, except that a dynamic milestone matching after a fixed
milestone declared below it keeps that later phase's name (it is background activity of the
later phase, such as a checkpoint during index building). The task is ``done`` exactly when
a ``progress = 100`` milestone matches (percent 100 only then); without such a milestone,
when the container exits with status 0 (:meth:`LogProgress.container_exited`). Exiting
before that is ``error`` with the exit code and the last lines
(:class:`~dockprogress.errors.LogFollowError` in :attr:`LogProgress.error`).

Uncalibrated (no profile, or one without runs):

* a fixed milestone sets progress to its value (never backwards: the task holds it);
* a dynamic milestone moves inside the *band* from the last fixed value reached (0 before
  any) to the next higher fixed value in the set (100 if none), never reaching its top:
  with a captured ``value`` and an expected sum (the milestone's ``expected``, else the
  profile's learned total) the position is ``min(sum / expected, 0.99)`` of the band, the sum
  running over the whole run; otherwise each match covers :data:`ASYMPTOTIC_STEP` of what is
  left of the band (the n-th match since the band opened is at ``1 - (1 - step)**n``).

Calibrated (a profile with runs, see :mod:`dockprogress.core.calibration`): a mark puts the
run at its learned time fraction. The n-th match of a dynamic milestone is put there only
while that fraction lies in the learned band of the fixed milestones the run is between (a
larger load has more checkpoints before its vacuum than the run it learned from); otherwise,
with a value, at its share of the learned total mapped onto that band; between marks
:meth:`LogProgress.tick` moves progress with elapsed time, never past the next expected mark,
and every event carries an ETA. Times are the engine's line timestamps when given, else the
injected clock; ``tick(now)`` uses the same (Unix seconds) scale.

``progress_handler(progress, description, log_message)`` — the seed's callback — is called on
every match with the task's overall percent after the match (a real number, never -1).
A stall warning is put in ``detail["warning"]`` when no line matched for ``stall_after``
seconds, and removed by the next match.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from dockprogress.core.calibration import (
    CalibratedCourse,
    Profile,
    RunRecord,
    RunRecorder,
    dynamic_key,
)
from dockprogress.core.lines import LogLine
from dockprogress.core.milestones import DYNAMIC, MilestoneMatch, MilestoneSet
from dockprogress.errors import LogFollowError
from dockprogress.events import Kind, Operation, State, TaskEvent
from dockprogress.task import Clock, Task

__all__ = ["ASYMPTOTIC_STEP", "LogProgress", "ProgressHandler"]

ProgressHandler = Callable[[float, str, str], object]

#: Without an expected total, each dynamic match covers this share of the rest of its band.
ASYMPTOTIC_STEP: Final = 0.2
#: Share of a band a value-driven dynamic milestone may reach before the band's top matches.
_VALUE_CAP: Final = 0.99
#: A tick emits an event when percent moved this much (points) or the ETA this many seconds.
_TICK_PERCENT: Final = 0.1
_TICK_ETA: Final = 1.0
_LINE_IN_DETAIL: Final = 300
_RUNNING: Final = State.RUNNING


class LogProgress:
    """One followed service. Feed it lines (:meth:`feed`) and timer ticks (:meth:`tick`)."""

    def __init__(
        self,
        milestones: MilestoneSet,
        *,
        task_id: str = "logs",
        description: str = "",
        profile: Profile | None = None,
        progress_handler: ProgressHandler | None = None,
        stall_after: float | None = None,
        started_at: float | None = None,
        history: int = 20,
        detail: Mapping[str, Any] | None = None,
        priority: int = 0,
        clock: Clock = time.time,
    ) -> None:
        self.milestones = milestones
        self._match = milestones.match
        self._screen = milestones.screen
        self.profile = profile
        self.progress_handler = progress_handler
        self.stall_after = stall_after
        self.started_at = started_at
        self.task = Task(
            task_id,
            Operation.LOGS,
            Kind.COUNT,
            description=description,
            total=100.0,
            priority=priority,
            clock=clock,
        )
        self.last_lines: deque[str] = deque(maxlen=history)
        self.matches = 0
        self.error: LogFollowError | None = None
        self.run_record: RunRecord | None = None
        self._clock = clock
        self._base_detail = dict(detail or {})
        self._levels = milestones.fixed_levels()
        self._level = 0.0
        self._level_key: str | None = None
        self._level_index = -1  # declared index of the fixed milestone that set the level
        self._band_matches = 0
        self._dynamic_counts: dict[str, int] = {}
        self._sums: dict[str, float] = {}
        self._last_match_at: float | None = None
        self._last_line = ""
        self._warning: str | None = None
        self._recorder: RunRecorder | None = None
        self._course = (
            CalibratedCourse(profile) if profile is not None and profile.calibrated else None
        )
        self._emitted_percent = -1.0
        self._emitted_eta: float | None = None

    # ------------------------------------------------------------------ reading

    @property
    def ended(self) -> bool:
        return self.task.ended

    @property
    def calibrated(self) -> bool:
        return self._course is not None

    # ----------------------------------------------------------------- feeding

    def start(self, at: float | None = None) -> list[TaskEvent]:
        """Open the task (``running``, 0 %). ``at`` is the run's start if not given before."""
        if self.task.ended or self.task.percent is not None:
            return []
        at = at if at is not None else self._clock()
        self._begin(at)
        return self._update(*self._smooth(at))

    def feed(self, lines: Iterable[LogLine]) -> list[TaskEvent]:
        events: list[TaskEvent] = []
        for line in lines:
            events.extend(self.feed_line(line))
        return events

    def feed_line(self, line: LogLine | str, ts: float | None = None) -> list[TaskEvent]:
        """One log line (with its engine time ``ts`` in Unix seconds, if known)."""
        task = self.task
        if task.state is _RUNNING and task.percent is not None and type(line) is str:
            # The hot path (a running task, a line of text): what the general path below
            # does, with the clock read only for a line that matches.
            self.last_lines.append(line)
            screen = self._screen
            if screen is None:
                match = self._match(line)
            else:
                hit = screen(line)
                if hit is None:
                    return []  # (most lines: no milestone's guard in them)
                match = self.milestones.match_screened(line, hit)
            if match is None:
                return []
            return self._on_match(match, ts if ts is not None else self._clock())
        if task.ended:
            return []
        if isinstance(line, LogLine):
            if line.daemon_error:
                return self.fail(f"the engine could not send the logs: {line.text}")
            text = line.text
            if ts is None:
                ts = line.ts
        else:
            text = line
        at = ts if ts is not None else self._clock()
        events = self.start(at) if self.task.percent is None else []
        self.last_lines.append(text)
        match = self.milestones.match(text)
        if match is None:
            return events
        events.extend(self._on_match(match, at))
        return events

    def tick(self, now: float | None = None) -> list[TaskEvent]:
        """Time passed without a line: smooth calibrated progress, stall warning."""
        if self.task.ended or self.task.percent is None:
            return []
        now = now if now is not None else self._clock()
        warning_changed = self._check_stall(now)
        percent, eta = self._smooth(now)
        moved = percent - self._emitted_percent >= _TICK_PERCENT
        eta_moved = eta is not None and (
            self._emitted_eta is None or abs(eta - self._emitted_eta) >= _TICK_ETA
        )
        if not (moved or eta_moved or warning_changed):
            return []
        return self._update(percent, eta)

    def container_exited(self, exit_code: int, at: float | None = None) -> list[TaskEvent]:
        """The container stopped: ``done`` if that is the end (no final milestone, status 0)."""
        if self.task.ended:
            return []
        if self.task.percent is None:
            self._begin(at if at is not None else self._clock())
        final = self.milestones.final_index
        if final is None and exit_code == 0:
            self._record(at if at is not None else self._clock(), None)
            event = self.task.finish(detail=self._detail(exit_code=exit_code))
            return [event] if event is not None else []
        if final is None:
            reason = f"container exited with status {exit_code}"
        else:
            wanted = self.milestones.milestones[final].description or self.milestones.names[final]
            reason = f"container exited with status {exit_code} before its final milestone"
            reason += f" ({wanted!r})"
        tail = tuple(self.last_lines)
        if tail:
            reason += "; last line: " + tail[-1][:_LINE_IN_DETAIL]
        self.error = LogFollowError(reason, exit_code=exit_code, last_lines=tail)
        event = self.task.fail(
            reason, detail=self._detail(exit_code=exit_code, last_lines=list(tail))
        )
        return [event] if event is not None else []

    def fail(self, message: str) -> list[TaskEvent]:
        """End as ``error`` for a reason outside the container (stream, engine)."""
        if self.task.ended:
            return []
        tail = tuple(self.last_lines)
        self.error = LogFollowError(message, last_lines=tail)
        event = self.task.fail(message, detail=self._detail(last_lines=list(tail)))
        return [event] if event is not None else []

    def cancel(self, reason: str | None = "cancelled") -> list[TaskEvent]:
        event = self.task.cancel(reason, detail=self._detail())
        return [event] if event is not None else []

    # ---------------------------------------------------------------- internals

    def _begin(self, at: float) -> None:
        if self.started_at is None:
            self.started_at = at
        self._last_match_at = at
        self._recorder = RunRecorder(self.started_at)

    def _elapsed(self, at: float) -> float:
        return max(at - (self.started_at or at), 0.0)

    def _on_match(self, match: MilestoneMatch, at: float) -> list[TaskEvent]:
        self.matches += 1
        self._last_match_at = at
        self._last_line = match.line
        self._warning = None
        milestone = match.milestone
        dynamic = milestone.progress == DYNAMIC
        recorder = self._recorder
        key = match.name
        if dynamic:
            count = self._dynamic_counts.get(match.name, 0) + 1
            self._dynamic_counts[match.name] = count
            key = dynamic_key(match.name, count)
            self._band_matches += 1
            if match.value is not None:
                self._sums[match.name] = self._sums.get(match.name, 0.0) + match.value
                if recorder is not None:
                    recorder.add_value(match.name, match.value)
        if milestone.progress == 100:  # (final)
            return self._finish(match, at)
        if recorder is not None:
            recorder.mark(key, at)
        course = self._course
        if dynamic:
            planned = self._dynamic_percent(match)
        else:
            planned = milestone.progress
            if milestone.progress >= self._level:
                if milestone.progress > self._level:
                    self._band_matches = 0
                self._level = milestone.progress
                self._level_key = match.name
                self._level_index = match.index
        eta: float | None = None
        if course is not None:
            fraction = self._calibrated_fraction(course, match, key)
            if fraction is not None:
                course.reach(fraction, self._elapsed(at))
            planned, eta = self._smooth(at)
        if dynamic and match.index < self._level_index:
            # A dynamic milestone declared before the phase the run has reached (a checkpoint
            # while PostgreSQL builds its indexes) moves progress but does not rename the
            # phase back to its own.
            description, phase = self.task.description, self.task.phase
        else:
            description, phase = milestone.description or match.name, match.name
        events = self._update(planned, eta, description=description, phase=phase)
        self._notify(match)
        return events

    def _dynamic_percent(self, match: MilestoneMatch) -> float:
        low = self._level
        levels = self._levels
        above = bisect_right(levels, low)  # the first fixed level above this band's floor
        high = levels[above] if above < len(levels) else 100.0
        expected = match.milestone.expected
        if expected is None and self.profile is not None:
            expected = self.profile.total(match.name)
        total = self._sums.get(match.name)
        if expected and total is not None:
            share = min(total / expected, _VALUE_CAP)
        else:
            share = 1.0 - (1.0 - ASYMPTOTIC_STEP) ** self._band_matches
        return low + (high - low) * share

    def _calibrated_fraction(
        self, course: CalibratedCourse, match: MilestoneMatch, key: str
    ) -> float | None:
        learned = course.learned(key)
        if not match.milestone.dynamic:
            return learned
        # The n-th match's learned time is the best guess while it falls in the band of the
        # fixed milestones the run is between: a run with more matches in this band than
        # the earlier runs had (more checkpoints during a slower load) would otherwise take
        # a later band's n-th match and jump ahead, and one with fewer would stand still.
        # Values fill in for the others (the captured sum need not grow linearly with
        # time: a checkpoint's distance is reported when it completes).
        low, high = course.fixed_band(self._level_key)
        if learned is not None and low <= learned < high:
            return learned
        expected = match.milestone.expected or course.profile.total(match.name)
        total = self._sums.get(match.name)
        if expected and total is not None:
            return low + (high - low) * min(total / expected, _VALUE_CAP)
        return None

    def _smooth(self, now: float) -> tuple[float, float | None]:
        course = self._course
        current = self.task.percent or 0.0
        if course is None:
            return current, None
        elapsed = self._elapsed(now)
        return max(100.0 * course.fraction_at(elapsed), current), course.eta(elapsed)

    def _finish(self, match: MilestoneMatch, at: float) -> list[TaskEvent]:
        self._record(at, match.name)
        self.task.phase = match.name
        event = self.task.finish(
            description=match.milestone.description or match.name, detail=self._detail()
        )
        self._notify(match)
        return [event] if event is not None else []

    def _record(self, at: float, final_key: str | None) -> None:
        if self._recorder is not None:
            self.run_record = self._recorder.finish(at, final_key)

    def _check_stall(self, now: float) -> bool:
        """Set the stall warning once when the quiet time passes ``stall_after``."""
        if self.stall_after is None or self._last_match_at is None or self._warning is not None:
            return False
        if now - self._last_match_at < self.stall_after:
            return False
        self._warning = f"no milestone matched for {self.stall_after:g} s"
        return True

    def _detail(self, **extra: Any) -> dict[str, Any]:
        detail = dict(self._base_detail)
        detail["matches"] = self.matches
        detail["calibrated"] = self.calibrated
        if self._last_line:
            detail["line"] = self._last_line[:_LINE_IN_DETAIL]
        if self._warning is not None:
            detail["warning"] = self._warning
        detail.update(extra)
        return detail

    def _update(self, percent: float, eta: float | None, **changes: Any) -> list[TaskEvent]:
        # current mirrors the held (monotonic) percent, so current == percent always.
        held = max(percent, self.task.percent or 0.0)
        event = self.task.update(
            current=held, percent=held, eta=eta, detail=self._detail(), **changes
        )
        if event is None:
            return []
        self._emitted_percent = event.percent if event.percent is not None else held
        self._emitted_eta = event.eta
        return [event]

    def _notify(self, match: MilestoneMatch) -> None:
        if self.progress_handler is not None:
            percent = self.task.percent if self.task.percent is not None else 0.0
            description = match.milestone.description or match.name
            self.progress_handler(percent, description, match.line)
