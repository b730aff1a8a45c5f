"""Calibration from earlier runs: when each milestone came, as a fraction of the whole run.

The idea is Plymouth's boot splash: a run of the same service tends to spend its time the
same way each time, so the *time* at which each milestone was reached, as a fraction of the
run, is a better progress figure than a hand-written percentage. (Jenkins' estimate from the
last successful builds is the same idea for a duration.) Everything here is pure: no clock,
no files (the store is :mod:`dockprogress.profiles`).

* A **mark** is a key and the elapsed seconds since the run started: a fixed milestone's key
  is its name, the n-th match of a dynamic one is ``"<name>#<n>"`` (n from 1).
* :class:`RunRecorder` collects marks and the sums of captured values of one run and turns
  them into a :class:`RunRecord` (fractions of the run's duration) when the run is done.
* :class:`Profile` keeps the last ``keep`` successful runs (default 5) and averages them:
  the duration, each key's fraction (over the runs that have the key), each total.
* :class:`CalibratedCourse` follows a new run against a profile: a reached mark puts the run
  at its learned fraction; between marks the fraction grows with elapsed time at the pace
  measured so far, but never past 99 % of the way to the next expected mark and never
  backwards; the ETA is the remaining learned fraction times the duration, adjusted by pace.
* :func:`prior_from_runs` makes a **prior** from reference runs of a service at several sizes
  (a shipped example's, used before the first local run): one run whose fixed marks keep the
  order and the average spacing of the references, with no gap between two consecutive marks
  wider than ``max_gap``. Averaging alone does not do: a small run reaches in a fraction of a
  second the marks a large one spreads over minutes (a PostgreSQL load at scale 1 goes from
  ``generating`` to ``vacuuming`` in 0.2 s, at scale 80 in 12 s), so whatever the prior puts
  between two marks is one jump on some size. The per-match marks of dynamic milestones
  differ by size and are left out; their value totals are averaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "DEFAULT_KEEP",
    "CalibratedCourse",
    "Profile",
    "RunRecord",
    "RunRecorder",
    "dynamic_key",
    "prior_from_runs",
]

DEFAULT_KEEP: Final = 5
PROFILE_VERSION: Final = 1

#: Share of the way to the next expected mark that smooth progress may cover on its own.
_APPROACH_CAP: Final = 0.99
#: Pace is clamped to this range: one odd mark should not make the estimate absurd.
_PACE_RANGE: Final = (0.2, 5.0)
#: A mark earlier than this share of the run (or than _MIN_PACE_SECONDS) says little of pace.
_MIN_PACE_FRACTION: Final = 0.05
_MIN_PACE_SECONDS: Final = 1.0


def dynamic_key(name: str, count: int) -> str:
    """The mark key of the ``count``-th match (from 1) of dynamic milestone ``name``."""
    return f"{name}#{count}"


def _is_fixed(key: str) -> bool:
    return "#" not in key


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One successful run: its duration (s), each mark's fraction of it, value totals."""

    duration: float
    marks: Mapping[str, float]
    totals: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    finished_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": round(self.duration, 6),
            "marks": {k: round(v, 6) for k, v in self.marks.items()},
            "totals": dict(self.totals),
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Raises ``ValueError``/``TypeError``/``KeyError`` on data that is not a run."""
        duration = float(data["duration"])
        if not duration > 0:
            raise ValueError("a run's duration must be positive")
        marks = {str(k): min(max(float(v), 0.0), 1.0) for k, v in dict(data["marks"]).items()}
        totals = {str(k): float(v) for k, v in dict(data.get("totals") or {}).items()}
        return cls(
            duration,
            MappingProxyType(marks),
            MappingProxyType(totals),
            float(data.get("finished_at") or 0.0),
        )


class RunRecorder:
    """Collects one run's marks (first time each key is seen) and value totals."""

    __slots__ = ("marks", "start", "totals")

    def __init__(self, start: float) -> None:
        self.start = start
        self.marks: dict[str, float] = {}
        self.totals: dict[str, float] = {}

    def mark(self, key: str, at: float) -> None:
        if key not in self.marks:
            self.marks[key] = max(at - self.start, 0.0)

    def add_value(self, name: str, value: float) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + value

    def finish(self, at: float, final_key: str | None) -> RunRecord | None:
        """The record of a run that ended well at ``at``; ``None`` if it took no time."""
        duration = at - self.start
        if duration <= 0:
            return None
        if final_key is not None:
            self.mark(final_key, at)
        marks = {k: min(v / duration, 1.0) for k, v in self.marks.items()}
        return RunRecord(duration, MappingProxyType(marks), MappingProxyType(dict(self.totals)), at)


@dataclass(frozen=True, slots=True)
class Profile:
    """The last ``keep`` successful runs of one named service, oldest first."""

    name: str
    runs: tuple[RunRecord, ...] = ()
    keep: int = DEFAULT_KEEP

    @property
    def calibrated(self) -> bool:
        return bool(self.runs)

    def with_run(self, run: RunRecord) -> Profile:
        return Profile(self.name, (*self.runs, run)[-self.keep :], self.keep)

    def duration(self) -> float | None:
        if not self.runs:
            return None
        return sum(r.duration for r in self.runs) / len(self.runs)

    def fraction(self, key: str) -> float | None:
        values = [r.marks[key] for r in self.runs if key in r.marks]
        return sum(values) / len(values) if values else None

    def total(self, name: str) -> float | None:
        values = [r.totals[name] for r in self.runs if name in r.totals]
        return sum(values) / len(values) if values else None

    def marks(self) -> list[tuple[str, float]]:
        """Every key's averaged fraction, in order of fraction."""
        keys = {k for r in self.runs for k in r.marks}
        averaged = [(k, f) for k in keys if (f := self.fraction(k)) is not None]
        return sorted(averaged, key=lambda item: (item[1], item[0]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "name": self.name,
            "keep": self.keep,
            "runs": [r.to_dict() for r in self.runs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Raises ``ValueError`` (or ``TypeError``/``KeyError``) on data that is not a profile."""
        if data.get("version") != PROFILE_VERSION:
            raise ValueError(f"unsupported profile version {data.get('version')!r}")
        keep = int(data.get("keep") or DEFAULT_KEEP)
        runs = tuple(RunRecord.from_dict(r) for r in data.get("runs") or ())
        return cls(str(data["name"]), runs[-keep:], keep)


class CalibratedCourse:
    """A run followed against a calibrated profile (times are seconds since the run start).

    :meth:`reach` moves the base to a learned fraction when a mark is reached;
    :meth:`fraction_at` is the smooth fraction at any later time; :meth:`eta` the seconds
    left. Fractions never decrease.
    """

    __slots__ = ("_marks", "base", "base_at", "duration", "pace", "profile")

    def __init__(self, profile: Profile) -> None:
        duration = profile.duration()
        if duration is None:
            raise ValueError("a calibrated course needs a profile with at least one run")
        self.profile = profile
        self.duration = duration
        self._marks = profile.marks()
        self.base = 0.0
        self.base_at = 0.0
        self.pace = 1.0

    def learned(self, key: str) -> float | None:
        return self.profile.fraction(key)

    def next_mark(self, *, fixed_only: bool = False) -> float:
        """The learned fraction of the next expected mark after the base (1.0 at the end)."""
        for key, fraction in self._marks:
            if fraction > self.base and (not fixed_only or _is_fixed(key)):
                return fraction
        return 1.0

    def fixed_band(self, lo_key: str | None) -> tuple[float, float]:
        """``(lo, hi)``: the learned fractions of fixed mark ``lo_key`` and the next fixed one."""
        lo = (self.learned(lo_key) if lo_key else 0.0) or 0.0
        hi = 1.0
        for key, fraction in self._marks:
            if _is_fixed(key) and fraction > lo:
                hi = fraction
                break
        return lo, hi

    def reach(self, fraction: float, at: float) -> None:
        """A mark at learned ``fraction`` was reached ``at`` seconds into the run."""
        if fraction <= self.base:
            return
        expected_at = fraction * self.duration
        if fraction >= _MIN_PACE_FRACTION and expected_at >= _MIN_PACE_SECONDS and at > 0:
            low, high = _PACE_RANGE
            self.pace = min(max(at / expected_at, low), high)
        self.base = fraction
        self.base_at = at

    def fraction_at(self, at: float) -> float:
        """Smooth fraction ``at`` seconds into the run: base plus time, short of the next mark."""
        target = self.next_mark()
        gap = target - self.base
        if gap <= 0:
            return self.base
        seconds = gap * self.duration * self.pace
        share = (at - self.base_at) / seconds if seconds > 0 else 1.0
        return self.base + gap * min(max(share, 0.0), _APPROACH_CAP)

    def eta(self, at: float) -> float:
        """Seconds left: the learned remainder of the run at the pace measured so far."""
        return max(1.0 - self.fraction_at(at), 0.0) * self.duration * self.pace


def prior_from_runs(
    name: str, runs: tuple[RunRecord, ...] | list[RunRecord], *, max_gap: float = 0.22
) -> Profile:
    """A one-run profile from reference runs at several sizes (see the module docstring).

    Fixed keys (those of every run) are ordered by their average fraction; the gaps between
    consecutive ones (and from the last to 1.0) are the averages, then capped at ``max_gap``
    and the rest handed to the uncapped gaps in proportion, until all fit.
    """
    if not runs:
        raise ValueError("a prior needs at least one reference run")
    keys = set.intersection(*({k for k in r.marks if _is_fixed(k)} for r in runs))
    mean = {k: sum(r.marks[k] for r in runs) / len(runs) for k in keys}
    order = sorted(keys, key=lambda k: (mean[k], k))
    points = [mean[k] for k in order]
    gaps = [b - a for a, b in zip([0.0, *points], [*points, 1.0], strict=True)]
    growing = sum(1 for g in gaps if g > 0) or 1  # (a zero gap stays zero: two marks at once)
    gaps = _cap_gaps(gaps, max(max_gap, 1.0 / growing))
    marks: dict[str, float] = {}
    position = 0.0
    for key, gap in zip(order, gaps, strict=False):
        position += gap
        marks[key] = min(position, 1.0)
    totals: dict[str, float] = {}
    for total_name in {n for r in runs for n in r.totals}:
        values = [r.totals[total_name] for r in runs if total_name in r.totals]
        totals[total_name] = sum(values) / len(values)
    duration = sum(r.duration for r in runs) / len(runs)
    run = RunRecord(duration, MappingProxyType(marks), MappingProxyType(totals))
    return Profile(name, (run,), keep=DEFAULT_KEEP)


def _cap_gaps(gaps: list[float], cap: float) -> list[float]:
    """``gaps`` (summing to 1) with none over ``cap``, the excess spread over the others."""
    gaps = [max(g, 0.0) for g in gaps]
    for _ in range(len(gaps) + 1):
        capped = [g >= cap for g in gaps]
        excess = sum(g - cap for g in gaps if g > cap)
        free = sum(g for g, c in zip(gaps, capped, strict=True) if not c)
        if excess <= 1e-12 or free <= 0:
            break
        gaps = [cap if c else g * (1 + excess / free) for g, c in zip(gaps, capped, strict=True)]
    return gaps
