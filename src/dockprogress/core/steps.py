"""A build's steps as one bar: the progress model both build trackers share.

Sans-IO and clock-injected. A :class:`BuildCourse` knows the planned steps (from the
Dockerfile, :mod:`dockprogress.core.dockerfile`), hears which step starts, finishes, is
cached or moves bytes, and gives the task's overall fraction and ETA:

* **Steps**: ``done`` steps (cached ones count at once) plus the running steps' byte
  fractions (a base-image pull inside ``FROM``, a ``COPY`` of the context), over the number
  of planned steps; the context upload before the first step is its own share
  (``upload_share``, 5 %, only when there is an upload to show).
* **Calibration**: with a :class:`~dockprogress.core.calibration.Profile` of earlier
  successful builds of the same Dockerfile and target, each step's start is a mark
  (``step:N``) whose learned fraction of the whole build is where the bar stands when the
  step starts; between marks the fraction grows with time, short of the next mark
  (:class:`~dockprogress.core.calibration.CalibratedCourse`), and the ETA is the learned
  remainder at the pace measured so far. The bar shows the larger of the two figures, so a
  build whose steps come from the cache this time runs ahead of its calibration.

The :class:`~dockprogress.task.Task` keeps percent monotonic and below 100 until ``done``.
:meth:`BuildCourse.record` gives the :class:`RunRecord` to store after a successful build.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from typing import Any, Final

from dockprogress.core.calibration import CalibratedCourse, Profile, RunRecord, RunRecorder

__all__ = ["UPLOAD_SHARE", "BuildCourse", "StepState", "profile_name"]

UPLOAD_SHARE: Final = 0.05
LAST_LINES: Final = 10


class StepState:
    PENDING: Final = "pending"
    RUNNING: Final = "running"
    CACHED: Final = "cached"
    DONE: Final = "done"
    ERROR: Final = "error"


_FINISHED: Final = (StepState.CACHED, StepState.DONE)


def profile_name(dockerfile: str | os.PathLike[str], target: str | None, builder: str) -> str:
    """The calibration profile of builds of this Dockerfile (absolute path), target, builder."""
    key = f"{os.path.abspath(os.fspath(dockerfile))}\0{target or ''}\0{builder}"
    return "build-" + hashlib.sha256(key.encode()).hexdigest()[:16]


class _Step:
    __slots__ = ("cached", "current", "finished_at", "started_at", "state", "text", "total")

    def __init__(self, text: str) -> None:
        self.text = text
        self.state = StepState.PENDING
        self.cached = False
        self.current = 0.0  # bytes moved inside the step (pull, copy), of ``total``
        self.total = 0.0
        self.started_at: float | None = None
        self.finished_at: float | None = None


class BuildCourse:
    """Planned steps, their states, and the overall fraction (see the module doc)."""

    def __init__(
        self,
        steps: list[str],
        *,
        start: float,
        profile: Profile | None = None,
        upload_share: float = UPLOAD_SHARE,
    ) -> None:
        self.steps = [_Step(text) for text in steps]
        self.start = start
        self.upload_share = upload_share
        self.upload_current = 0.0
        self.upload_total = 0.0
        self.uploading = False
        self.last_lines: deque[str] = deque(maxlen=LAST_LINES)
        self.current_step: int | None = None  # 1-based
        self._recorder = RunRecorder(start)
        self._course = CalibratedCourse(profile) if profile and profile.calibrated else None

    # -------------------------------------------------------------- changes

    @property
    def calibrated(self) -> bool:
        return self._course is not None

    def ensure(self, count: int) -> None:
        """The stream counts more steps than planned (a plan that missed some): grow."""
        while len(self.steps) < count:
            self.steps.append(_Step(""))

    def step(self, number: int) -> _Step:
        self.ensure(number)
        return self.steps[number - 1]

    def upload(self, sent: float, total: float) -> None:
        self.uploading = sent < total
        self.upload_total = max(total, 0.0)
        self.upload_current = min(max(sent, self.upload_current), self.upload_total)

    def begin(self, number: int, at: float, text: str | None = None) -> None:
        """Step ``number`` (1-based) started; steps before it in the plan are not touched."""
        self.uploading = False
        step = self.step(number)
        if text and not step.text:
            step.text = text
        if step.state != StepState.PENDING:
            return  # told again (BuildKit repeats a vertex with each change)
        step.state = StepState.RUNNING
        step.started_at = at
        self.current_step = number
        self.last_lines.clear()
        key = f"step:{number}"
        self._recorder.mark(key, at)
        if self._course is not None:
            learned = self._course.learned(key)
            if learned is not None:
                self._course.reach(learned, at - self.start)

    def finish(self, number: int, at: float, *, cached: bool = False) -> None:
        step = self.step(number)
        if step.state in _FINISHED:
            return
        if step.started_at is None:
            self.begin(number, at)
        step.state = StepState.CACHED if cached else StepState.DONE
        step.cached = cached
        step.finished_at = at
        if step.total:
            step.current = step.total

    def finish_through(self, number: int, at: float) -> None:
        """Every running step up to ``number`` finished (a sequential builder moved on)."""
        for index in range(min(number, len(self.steps))):
            if self.steps[index].state == StepState.RUNNING:
                self.finish(index + 1, at)

    def fail(self, number: int | None) -> None:
        if number is not None:
            self.step(number).state = StepState.ERROR

    def bytes(self, number: int, current: float, total: float) -> None:
        step = self.step(number)
        step.total = max(total, 0.0)
        step.current = min(max(current, 0.0), step.total)

    def line(self, text: str) -> None:
        self.last_lines.append(text)

    # -------------------------------------------------------------- reading

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.state in _FINISHED)

    @property
    def cached(self) -> int:
        return sum(1 for s in self.steps if s.state == StepState.CACHED)

    def fraction(self, at: float) -> float:
        """0..1: the larger of the step count and the calibrated course (module doc)."""
        steps = self.steps
        count = len(steps)
        work = 0.0
        for step in steps:
            if step.state in _FINISHED:
                work += 1.0
            elif step.state == StepState.RUNNING and step.total > 0:
                work += 0.99 * step.current / step.total
        share = self.upload_share if self.upload_total > 0 else 0.0
        upload = self.upload_current / self.upload_total if self.upload_total > 0 else 0.0
        if self.current_step is not None:
            upload = 1.0
        by_steps = share * upload + (1.0 - share) * (work / count if count else 0.0)
        if self._course is None:
            return by_steps
        return max(by_steps, self._course.fraction_at(at - self.start))

    def eta(self, at: float) -> float | None:
        return None if self._course is None else self._course.eta(at - self.start)

    def record(self, at: float) -> RunRecord | None:
        """The run's record for calibration (call once, after a successful build)."""
        return self._recorder.finish(at, None)

    def detail(self) -> dict[str, Any]:
        return {
            "steps": [
                {
                    "n": index + 1,
                    "text": step.text,
                    "state": step.state,
                    **({"current": step.current, "total": step.total} if step.total else {}),
                    **(
                        {"seconds": round(step.finished_at - step.started_at, 3)}
                        if step.finished_at is not None and step.started_at is not None
                        else {}
                    ),
                }
                for index, step in enumerate(self.steps)
            ],
            "step": self.current_step,
            "done_steps": self.done,
            "cached_steps": self.cached,
            "calibrated": self.calibrated,
            "last_lines": list(self.last_lines),
            **(
                {"upload": {"current": self.upload_current, "total": self.upload_total}}
                if self.upload_total
                else {}
            ),
        }
