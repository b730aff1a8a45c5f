"""The shipped prior of the PostgreSQL example: a first run's largest step, at three sizes.

Recordings (``tests/fixtures/logs/README.md``): real PostgreSQL 15 loads at pgbench scales
1, 20 and 80; the prior was learned from *other* runs at the same scales (the ``-ref-``
recordings), by ``tests/fixtures/logs/learn_prior.py``. Each recording is replayed in its own
time order with a tick every 0.5 s (the follower's ``tick_interval``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dockprogress.core.calibration import Profile, RunRecord, prior_from_runs
from dockprogress.core.lines import LogDecoder
from dockprogress.core.logprogress import LogProgress
from dockprogress.core.milestones import load_milestones
from dockprogress.events import State, TaskEvent
from dockprogress.examples import example_path
from tests.fixtures.logs import learn_prior

FIXTURES = Path(__file__).parent.parent / "fixtures" / "logs"
EXAMPLE = load_milestones(example_path("postgres-load.toml"))
#: Issue 18's promise for a first run with the prior.
MAX_STEP = 25.0


def replay(scale: int, profile: Profile | None) -> list[TaskEvent]:
    decoder = LogDecoder(tty=False)
    data = (FIXTURES / f"postgres-load-s{scale}.frames").read_bytes()
    lines = decoder.feed(data) + decoder.feed_eof()
    start = lines[0].ts or 0.0
    now = start
    tracker = LogProgress(EXAMPLE, profile=profile, started_at=start, clock=lambda: now)
    events = tracker.start(start)
    for line in lines:
        assert line.ts is not None
        while now + 0.5 < line.ts:
            now += 0.5
            events += tracker.tick(now)
        now = line.ts
        events += tracker.feed_line(line)
        if tracker.ended:
            break
    return events


def largest_step(events: list[TaskEvent]) -> float:
    percents = [e.percent or 0.0 for e in events]
    return max(b - a for a, b in itertools.pairwise(percents))


@pytest.mark.parametrize("scale", [1, 20, 80])
def test_a_first_run_with_the_shipped_prior_moves_at_most_25_points_at_once(scale: int) -> None:
    assert EXAMPLE.prior is not None
    events = replay(scale, EXAMPLE.prior)
    assert events[-1].state is State.DONE
    assert events[-1].percent == 100
    percents = [e.percent for e in events]
    assert percents == sorted(percents)
    assert all(e.eta is not None for e in events if e.state is State.RUNNING)
    assert largest_step(events) <= MAX_STEP


def test_without_the_prior_the_small_run_jumps() -> None:
    """What the prior is for: uncalibrated, scale 1 goes from 8 % to 80 % in one step."""
    assert largest_step(replay(1, None)) > 60


def test_the_shipped_prior_is_what_the_reference_recordings_teach() -> None:
    shipped = example_path("postgres-load.prior.json").read_text(encoding="utf-8")
    assert learn_prior.prior_text(learn_prior.learned_prior()) == shipped


def test_prior_keeps_the_order_and_caps_every_gap() -> None:
    runs = [
        RunRecord(2.0, {"a": 0.7, "b": 0.8, "c": 0.9, "x#1": 0.75}),
        RunRecord(20.0, {"a": 0.1, "b": 0.15, "c": 0.9}, {"x": 10.0}),
    ]
    (run,) = prior_from_runs("p", runs, max_gap=0.3).runs
    assert list(run.marks) == ["a", "b", "c"]  # per-match marks of one size are left out
    points = [0.0, *run.marks.values(), 1.0]
    assert all(0 <= b - a <= 0.3 + 1e-9 for a, b in itertools.pairwise(points))
    assert run.totals == {"x": 10.0}
    assert run.duration == 11.0
