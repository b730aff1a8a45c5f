"""Calibration profiles: averaging, smooth course, and the atomic JSON store."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockprogress.core.calibration import CalibratedCourse, Profile, RunRecord, RunRecorder
from dockprogress.profiles import load_profile, profile_dir, profile_path, record_run


def record(duration: float, **marks: float) -> RunRecord:
    return RunRecord(duration, MappingProxyType(marks), MappingProxyType({"load": duration}))


def test_profile_keeps_the_last_runs_and_averages() -> None:
    profile = Profile("p", keep=3)
    for duration in (10.0, 20.0, 30.0, 40.0):
        profile = profile.with_run(record(duration, a=duration / 100, end=1.0))
    assert [r.duration for r in profile.runs] == [20.0, 30.0, 40.0]
    assert profile.duration() == 30.0
    assert profile.fraction("a") == pytest.approx(0.3)
    assert profile.total("load") == 30.0
    assert profile.fraction("missing") is None


def test_recorder_fractions() -> None:
    recorder = RunRecorder(start=100.0)
    recorder.mark("a", 105.0)
    recorder.mark("a", 107.0)  # first time counts
    recorder.add_value("load", 3)
    recorder.add_value("load", 4)
    run = recorder.finish(120.0, "end")
    assert run is not None
    assert dict(run.marks) == {"a": 0.25, "end": 1.0}
    assert dict(run.totals) == {"load": 7.0}


def test_course_moves_with_time_but_never_past_the_next_mark() -> None:
    course = CalibratedCourse(Profile("p").with_run(record(100.0, a=0.2, b=0.6, end=1.0)))
    assert course.fraction_at(10.0) == pytest.approx(0.1)
    assert course.fraction_at(1000.0) < 0.2
    course.reach(0.2, 40.0)  # twice as slow as learned
    assert course.pace == 2.0
    assert course.fraction_at(40.0) == 0.2
    assert course.fraction_at(80.0) == pytest.approx(0.4)
    assert course.eta(80.0) == pytest.approx(0.6 * 100 * 2)
    assert course.fraction_at(10_000.0) < 0.6


@given(st.lists(st.floats(min_value=0, max_value=500), max_size=30))
def test_course_never_goes_backwards(times: list[float]) -> None:
    course = CalibratedCourse(Profile("p").with_run(record(100.0, a=0.2, b=0.6, end=1.0)))
    last = 0.0
    for i, at in enumerate(sorted(times)):
        if i % 5 == 4:
            course.reach(course.next_mark(), at)
        now = course.fraction_at(at)
        assert now >= last
        assert now <= 1.0
        last = now


def test_store_round_trip_and_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert profile_dir() == tmp_path / "cache" / "dockprogress" / "profiles"
    assert profile_path("pg load") == profile_dir() / "pg_load.json"
    assert load_profile("pg load").runs == ()
    for duration in (10.0, 20.0):
        record_run("pg load", record(duration, a=0.5))
    stored = load_profile("pg load")
    assert [r.duration for r in stored.runs] == [10.0, 20.0]
    assert [p.name for p in profile_dir().iterdir()] == ["pg_load.json"]  # no temp file left
    explicit = tmp_path / "mine.json"
    record_run(explicit, record(5.0, a=0.1))
    assert json.loads(explicit.read_text())["runs"][0]["duration"] == 5.0


def test_damaged_profile_is_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    assert load_profile(path).runs == ()
    path.write_text(json.dumps({"version": 99, "name": "x"}))
    assert load_profile(path).runs == ()
