"""Milestone sets: validation at build time, TOML loading, one pass per line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dockprogress.core.milestones import (
    DYNAMIC,
    Milestone,
    MilestoneSet,
    ProgressMilestone,
    load_milestones,
    parse_milestones,
)
from dockprogress.errors import MilestoneConfigError, UsageError
from dockprogress.examples import example_path


def test_seed_shape_and_alias() -> None:
    assert ProgressMilestone is Milestone
    milestones = MilestoneSet(
        [
            ProgressMilestone("checkpoint starting", 5, "Starting"),
            ("checkpoint complete.*wrote \\d+ buffers", -1, "Writing"),
            {"pattern": "ready", "progress": 100, "description": "Ready"},
        ]
    )
    assert milestones.milestones[1].progress == DYNAMIC
    assert milestones.milestones[1].dynamic
    assert milestones.final_index == 2
    assert milestones.fixed_levels() == (5.0, 100.0)


def test_first_match_in_declared_order_wins() -> None:
    milestones = MilestoneSet([("complete", 50, "A"), ("checkpoint complete", 60, "B")])
    match = milestones.match("LOG: checkpoint complete: wrote 3 buffers")
    assert match is not None
    assert (match.index, match.name) == (0, "a")
    assert milestones.match("nothing here") is None


def test_value_is_captured() -> None:
    milestones = parse_milestones(example_path("postgres-load.toml").read_text())
    line = (
        "2026-11-28 13:18:53.826 UTC [30] LOG:  checkpoint complete: wrote 0 buffers (0.0%); "
        "0 WAL file(s) added, 0 removed, 1 recycled; write=0.001 s, sync=0.001 s, "
        "total=0.002 s; sync files=0, longest=0.000 s, average=0.000 s; "
        "distance=16379 kB, estimate=18887 kB"
    )
    match = milestones.match(line)
    assert match is not None
    assert match.name == "loading"
    assert match.value == 16379.0
    assert milestones.name == "postgres-load"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[[milestone]]\npattern='a('\nprogress=1", "milestone #1 \\('a\\('\\): invalid pattern"),
        (
            "[[milestone]]\npattern='ok'\nprogress=0\n[[milestone]]\npattern='x'\nprogress=101",
            "milestone #2 \\('x'\\): progress 101 is outside 0..100",
        ),
        ("[[milestone]]\npattern='x'\nprogress='half'", "'progress' must be 0..100"),
        ("[[milestone]]\npattern='x'\nprogress=1\ncolour='red'", "unknown key\\(s\\) colour"),
        ("title='x'\n[[milestone]]\npattern='x'\nprogress=1", "unknown key\\(s\\) title"),
        ("[[milestone]]\npattern='(a+)+$'\nprogress=1", "nested unbounded repeats"),
        ("[[milestone]]\npattern='(?P<value>\\d+)'\nprogress=5", "only counts on a dynamic"),
        ("[[milestone]]\npattern='x'\nprogress=5\nexpected=3", "only applies to a dynamic"),
        ("name='only a name'", "no \\[\\[milestone\\]\\] tables"),
        ("[[milestone]\n", "not valid TOML"),
    ],
)
def test_invalid_files_name_the_problem(toml: str, message: str) -> None:
    with pytest.raises(MilestoneConfigError, match=message) as caught:
        parse_milestones(toml, source="m.toml")
    assert isinstance(caught.value, UsageError)
    assert str(caught.value).startswith("m.toml: ")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(MilestoneConfigError, match="cannot read milestone file"):
        load_milestones(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "pattern", ["(a+)+", "(\\w*\\s?)*", "(?:x|y+){2,}", "((ab)*c)+", "(?:a|b*)*", "(a{1,3})+"]
)
def test_nested_repeats_are_rejected(pattern: str) -> None:
    with pytest.raises(MilestoneConfigError, match="nested unbounded repeats"):
        MilestoneSet([(pattern, 1)])


@pytest.mark.parametrize("pattern", ["a+b+", "(ab)+c*", "(a{3})+", "x(?:yz)*", ".*distance=\\d+"])
def test_ordinary_repeats_are_accepted(pattern: str) -> None:
    assert len(MilestoneSet([(pattern, 1)])) == 1


def test_long_lines_are_cut_before_matching() -> None:
    # .*x.*y is polynomial: the cut keeps one hostile line cheap.
    milestones = MilestoneSet([(".*x.*y", 10)], max_line=256)
    started = time.perf_counter()
    assert milestones.match("x" * 200_000) is None
    assert time.perf_counter() - started < 2.0
    # and what lies past the cut is never seen
    assert milestones.match("x" * 300 + "y") is None
    assert milestones.match("x" * 100 + "y") is not None


def test_names_default_from_descriptions_and_stay_unique() -> None:
    milestones = MilestoneSet([("a", 0, "Loading data"), ("b", 10, "Loading data"), ("c", 20)])
    assert milestones.names == ("loading-data", "loading-data-2", "milestone-3")
    with pytest.raises(MilestoneConfigError, match="used twice"):
        MilestoneSet(
            [
                {"pattern": "a", "progress": 0, "name": "x"},
                {"pattern": "b", "progress": 1, "name": "x"},
            ]
        )
