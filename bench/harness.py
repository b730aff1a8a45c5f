"""What every benchmark family shares: figures (median, min, max of runs), comparisons against
baselines measured in the same run, targets with PASS/MISS, and small timing helpers.

A family returns a :class:`Family`: its :class:`Comparison` tables (a subject and the
baselines it is judged against, each a :class:`Figure`), its :class:`Target` verdicts and free
notes (where the time goes, what was seen). :mod:`bench.report` turns families into the
printed table and ``BENCHMARKS.md``. Nothing here asserts: benchmarks are not tests.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "Comparison",
    "Family",
    "Figure",
    "Target",
    "families_from_json",
    "families_to_json",
    "percentile",
    "rate_runs",
    "time_runs",
]


@dataclass
class Figure:
    """One measured quantity over several runs. ``higher_is_better`` says how to read it."""

    label: str
    unit: str
    runs: list[float]
    higher_is_better: bool = True
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def min(self) -> float:
        return min(self.runs) if self.runs else float("nan")

    @property
    def max(self) -> float:
        return max(self.runs) if self.runs else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "runs": self.runs,
        }


@dataclass
class Comparison:
    """A subject and its baselines, measured in the same run, on the same input.

    ``ratio(b)`` is how many times better the subject is than baseline ``b`` (``>1`` = better),
    whichever way the unit reads.
    """

    title: str
    subject: Figure
    baselines: list[Figure] = field(default_factory=list)
    input: str = ""
    #: False when the other figures are companions (p50 beside p99), not baselines.
    ratios: bool = True

    def ratio(self, baseline: Figure) -> float:
        s, b = self.subject.median, baseline.median
        if not s or not b:
            return float("nan")
        return s / b if self.subject.higher_is_better else b / s


@dataclass
class Target:
    """A goal from the issue and whether this run reached it."""

    goal: str
    measured: float
    limit: float
    unit: str
    at_least: bool  # True: measured must be >= limit; False: <= limit
    note: str = ""

    @property
    def passed(self) -> bool:
        if math.isnan(self.measured):  # nothing was measured
            return False
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"


@dataclass
class Family:
    name: str
    comparisons: list[Comparison] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None  # why the family could not run (shown, and a MISS)


def families_to_json(families: list[Family]) -> list[dict[str, Any]]:
    """Every figure of a run, for ``--save`` (a report can be rendered again from it)."""
    return [asdict(family) for family in families]


def families_from_json(data: list[dict[str, Any]]) -> list[Family]:
    def figure(raw: dict[str, Any]) -> Figure:
        return Figure(**raw)

    out = []
    for raw in data:
        family = Family(
            raw["name"],
            notes=list(raw["notes"]),
            seconds=float(raw["seconds"]),
            skipped=raw["skipped"],
            targets=[Target(**t) for t in raw["targets"]],
        )
        for c in raw["comparisons"]:
            family.comparisons.append(
                Comparison(
                    c["title"],
                    figure(c["subject"]),
                    [figure(b) for b in c["baselines"]],
                    c["input"],
                    c["ratios"],
                )
            )
        out.append(family)
    return out


def time_runs(work: Callable[[], object], runs: int, *, warmup: int = 1) -> list[float]:
    """Wall seconds of ``work()``, ``runs`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        work()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        out.append(time.perf_counter() - start)
    return out


def rate_runs(
    label: str,
    unit: str,
    amount: float,
    work: Callable[[], object],
    runs: int,
    *,
    warmup: int = 1,
    note: str = "",
) -> Figure:
    """A throughput figure: ``amount`` units done by each call of ``work``, per second."""
    seconds = time_runs(work, runs, warmup=warmup)
    return Figure(label, unit, [amount / s for s in seconds], note=note)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest-rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]
