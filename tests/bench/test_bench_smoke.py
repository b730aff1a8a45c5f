"""Smoke test of the benchmarks: each family runs on a tiny input and returns well-formed
figures. Nothing here is timed or compared: ``make test`` does not time anything, and a
figure's value on a shared machine says nothing about correctness."""

from __future__ import annotations

import json
import math

import pytest
from bench.harness import (
    Comparison,
    Family,
    Figure,
    Target,
    families_from_json,
    families_to_json,
    percentile,
)

from bench import fanout, latency, parsers, pull_e2e, push_e2e, report


def _well_formed(figure: Figure, *, runs: int | None = None) -> None:
    assert figure.label
    assert figure.unit
    assert figure.runs, figure.label
    if runs is not None:
        assert len(figure.runs) == runs
    assert all(math.isfinite(v) and v >= 0 for v in figure.runs), figure
    assert figure.min <= figure.median <= figure.max


def _comparison(comparison: Comparison) -> None:
    assert comparison.title
    _well_formed(comparison.subject)
    assert comparison.baselines
    for baseline in comparison.baselines:
        _well_formed(baseline)


def _target(target: Target) -> None:
    assert target.goal
    assert math.isfinite(target.measured)
    assert target.verdict in {"PASS", "MISS"}
    assert target.passed == (
        target.measured >= target.limit if target.at_least else target.measured <= target.limit
    )


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_pull_tracker_bench_compares_with_json_loads() -> None:
    comparison, target, profile = parsers.bench_pull_tracker(scale=0.002, runs=1)
    _comparison(comparison)
    assert comparison.baselines[0].label.startswith("json.loads")
    _target(target)
    assert "update" in profile or "feed" in profile  # the tracker's own functions show


def test_build_and_push_tracker_benches_compare_with_json_loads() -> None:
    build_comparisons = parsers.bench_build_tracker(scale=0.01, runs=1)
    push = parsers.bench_push_tracker(scale=0.01, runs=1)
    assert [c.title.split(":")[0] for c in [*build_comparisons, push]] == [
        "Classic build tracker",
        "BuildKit tracker",
        "Push tracker",
    ]
    for comparison in [*build_comparisons, push]:
        _comparison(comparison)
        assert comparison.baselines[0].label.startswith("json.loads")


def test_rawjson_floor_splits_the_recording_into_its_objects() -> None:
    from dockprogress.core.buildkit import RawJsonDecoder

    blob = (parsers.BUILD_FIXTURES / "buildkit_fail.rawjson").read_bytes()
    decoder = RawJsonDecoder()
    objects = decoder.decode(blob) + decoder.flush()
    assert [json.loads(t) for t in parsers._json_texts(blob)] == objects


def test_milestone_bench_runs_both_set_sizes_and_every_baseline() -> None:
    sets = parsers.milestone_sets()
    assert sorted(sets) == [4, 50]
    assert len(sets[4]) == 4
    assert len(sets[50]) == 50
    comparisons, targets, _profile = parsers.bench_milestones(scale=0.002, runs=1)
    assert len(comparisons) == 2
    for comparison in comparisons:
        _comparison(comparison)
        labels = " ".join(b.label for b in comparison.baselines)
        assert "re.compile per line" in labels
        assert "re.search(pattern, line)" in labels
        assert "precompiled" in labels
        assert "linear-time engine" in labels
    # 4: the precompiled loop's speed; 50: 500k lines/s and 10x the seed's way
    assert len(targets) == 3
    assert "precompiled loop" in targets[0].goal
    for target in targets:
        _target(target)


def test_required_literal_guard_is_sound() -> None:
    # The proposal must never skip a pattern that would have matched.
    assert parsers._required_literal(r"checkpoint complete: wrote \d+ buffers") == (
        "checkpoint complete: wrote "
    )
    assert parsers._required_literal(r"(?:a|b)\d+") == ""
    assert parsers._required_literal(r"(?i)Finished") == ""
    log = parsers.LOG_RECORDING.read_text(encoding="utf-8").splitlines()
    for milestone in parsers.milestone_sets()[50].milestones:
        literal = parsers._required_literal(milestone.pattern)
        regex = __import__("re").compile(milestone.pattern)
        for line in log:
            if regex.search(line):
                assert literal in line


def test_tty_bench_measures_tqdm_and_rich_against_pyte_and_the_seed() -> None:
    comparisons, targets, profile = parsers.bench_tty(scale=0.002, runs=1)
    assert [c.title.split(" on ")[1].split(":")[0] for c in comparisons] == ["tqdm", "rich"]
    for comparison in comparisons:
        _comparison(comparison)
        labels = [b.label for b in comparison.baselines]
        assert any(label.startswith("pyte") for label in labels)
        assert any(label.startswith("seed's") for label in labels)
    for target in targets:
        _target(target)
    assert "TtyParser" in profile


def test_tool_bars_bench_measures_every_recording_with_and_without_bar_files() -> None:
    comparison, target = parsers.bench_tool_bars(scale=0.002, runs=1)
    _well_formed(comparison.subject, runs=1)
    assert comparison.subject.label.startswith("ExecTracker")
    assert [b.label.split(" ")[0] for b in comparison.baselines] == ["TtyParser"] * 3
    assert "every recording" in comparison.title
    assert target.limit == 50.0


def test_parsers_family_runs_only_the_rows_asked_for() -> None:
    family = parsers.run(scale=0.002, runs=1, only=("tool_bars",))
    assert [c.title.split(" ")[0] for c in family.comparisons] == ["Whole"]
    assert len(family.targets) == 1


def test_seed_scan_keeps_no_state_between_reads() -> None:
    # The seed's fault the baseline reproduces: "4" | "5%" across reads reads as 5%.
    seen: list[int] = []
    parsers._seed_scan([b"\r 4", b"5%|###"], seen.append)
    assert seen == [5]


def test_report_renders_every_figure_and_verdict(tmp_path: pytest.TempPathFactory) -> None:
    family = Family("Demo")
    family.comparisons.append(
        Comparison(
            "demo",
            Figure("subject", "x/s", [2.0, 3.0, 4.0]),
            [Figure("baseline", "x/s", [1.0, 1.0, 1.0])],
            input="nothing",
        )
    )
    family.targets.append(Target("subject >= 2 x/s", 3.0, 2.0, "x/s", True))
    family.notes.append("Profile:\nline one")
    skipped = Family("Broken", skipped="RuntimeError: no engine")
    info = report.machine()
    text = report.markdown(
        [family, skipped], info, command="python -m bench", seconds=1.0, analysis=report.analysis
    )
    assert "| subject | 3 x/s | 2 | 4 | 3 | subject |" in text
    assert "| baseline | 1 x/s | 1 | 1 | 3 | 3x |" in text
    assert "**PASS**" in text
    assert "**MISS**" in text  # the family that could not run
    assert info["python"] in text
    table = report.text_table([family, skipped])
    assert "PASS  subject >= 2 x/s" in table
    assert "MISS  Broken: not run" in table


@pytest.mark.engine
def test_pull_once_times_both_tools(testbed: object) -> None:
    image = "127.0.0.1:5000/dp/layers:1"
    tags = [image, "127.0.0.1:5001/dp/layers:1"]
    for tool in ("dockprogress", "docker"):
        pull_e2e.remove_image(tags)
        outcome = pull_e2e.pull_once(tool, image, timeout=120)
        assert outcome.exit_code == 0, outcome.notes
        assert outcome.wall > 0
        assert outcome.cpu >= 0
        assert outcome.lines > 0
        if tool == "dockprogress":
            assert outcome.first_output is not None
            assert outcome.done_event is not None
            assert outcome.first_output <= outcome.done_event <= outcome.wall


@pytest.mark.engine
def test_push_once_times_both_tools_and_the_registry_forgets_each_run(testbed: object) -> None:
    import uuid

    source = f"127.0.0.1:5000/dp/bench-push-smoke-{uuid.uuid4().hex[:8]}:1"
    push_e2e._build_image(source)
    try:
        for tool in ("dockprogress", "docker"):
            repository = f"dp/bench-push-smoke-{tool}-{uuid.uuid4().hex[:8]}"
            image = f"127.0.0.1:5000/{repository}:1"
            pull_e2e.subprocess.run(["docker", "tag", source, image], check=True)
            try:
                outcome = push_e2e.push_once(tool, image, timeout=120)
            finally:
                pull_e2e.remove_image([image])
            assert outcome.exit_code == 0, outcome.notes
            assert outcome.wall > 0
            assert outcome.cpu >= 0
            # dp/base's layer may be mounted: the config, two random layers at least.
            assert push_e2e.forget_repository(repository) >= 3
            assert push_e2e.forget_repository(repository) == 0  # nothing left to forget
    finally:
        pull_e2e.remove_image([source])


@pytest.mark.engine
def test_up_to_date_row_pairs_both_tools_and_sets_the_3x_target(testbed: object) -> None:
    comparison, target = pull_e2e.up_to_date(runs=2)
    assert len(comparison.subject.runs) == len(comparison.baselines[0].runs) == 2
    assert all(0 < v < 30 for v in comparison.subject.runs + comparison.baselines[0].runs)
    assert target.limit == 3.0
    assert target.measured == comparison.subject.median / comparison.baselines[0].median
    assert "failed" not in target.note  # both tools exited 0 every time


@pytest.mark.engine
def test_latency_paths_deliver_stamped_events(testbed: object) -> None:
    name = "dp-bench-smoke-exec"
    latency._remove_container(name)
    latency._docker("run", "-d", "--name", name, latency.PYTHON_IMAGE, "sleep", "300")
    try:
        with latency.Server() as server:
            logs = latency.measure_logs(server, 12, warmup=0.2)
            execs = latency.measure_exec(server, name, 12, skip=2)
    finally:
        latency._remove_container(name)
    for result in (logs, execs):
        assert result.latencies, result.notes
        assert all(0 <= v < 30 for v in result.latencies)
        assert len(result.latencies) <= result.written


@pytest.mark.engine
def test_fanout_once_reports_cpu_delay_and_memory(testbed: object) -> None:
    result = fanout.fanout_once(clients=3, tasks=2, seconds=2.0, warmup=0.5, processes=1)
    assert not result.notes
    assert result.entries > 0
    assert result.published > 0
    assert math.isfinite(result.delay(99))
    assert result.delay(50) <= result.delay(99) <= result.delay(100)
    assert result.cpu_percent >= 0
    assert len(result.rss_mb) >= 3
    assert all(mb > 0 for _, mb in result.rss_mb)


def test_saved_figures_render_the_same_report() -> None:
    family = Family("Demo", notes=["Profile, pull tracker (own time):\n 10.0%  3  pull.py:1 feed"])
    family.comparisons.append(
        Comparison("demo", Figure("a", "s", [1.0, 2.0], False), [Figure("b", "s", [3.0])])
    )
    family.targets.append(Target("a <= 2 s", 1.5, 2.0, "s", False, note="n"))
    info = dict.fromkeys(("date", "commit", "cpu", "memory", "kernel", "python", "engine"), "x")
    info["load"] = "0 0 0"
    saved = json.loads(json.dumps(families_to_json([family])))
    again = families_from_json(saved)

    def render(families: list[Family]) -> str:
        return report.markdown(families, info, command="c", seconds=1.0, analysis=report.analysis)

    assert render(again) == render([family])


def test_peak_rss_reads_the_child_alone_not_the_forked_benchmark() -> None:
    from bench import footprint

    ballast = bytearray(64 * 1024 * 1024)  # the benchmark process grows; the child must not
    wall, megabytes, code = footprint.peak_rss(footprint.FLOOR)
    assert code == 0
    assert 0 < wall < 30
    assert 1 < megabytes < 40
    del ballast
