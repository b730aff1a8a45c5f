"""The log tracker on recorded real logs: split-invariance, promises, dynamic bands, calibration."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.calibration import Profile
from dockprogress.core.lines import LogDecoder, LogLine
from dockprogress.core.logprogress import ASYMPTOTIC_STEP, LogProgress
from dockprogress.core.milestones import DYNAMIC, MilestoneSet, parse_milestones
from dockprogress.events import State, TaskEvent
from dockprogress.examples import example_path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "logs"
POSTGRES = (FIXTURES / "postgres-load-s40.frames").read_bytes()
TTY = (FIXTURES / "busybox-tty.raw").read_bytes()


def milestones() -> MilestoneSet:
    return parse_milestones(example_path("postgres-load.toml").read_text())


def run(
    chunks: list[bytes], *, tty: bool = False, profile: Profile | None = None
) -> list[TaskEvent]:
    """Feed ``chunks`` through decoder and tracker with a fixed clock."""
    decoder = LogDecoder(tty=tty)
    tracker = LogProgress(milestones(), profile=profile, clock=lambda: 1000.0)
    events: list[TaskEvent] = []
    for chunk in chunks:
        events += tracker.feed(decoder.feed(chunk))
    events += tracker.feed(decoder.feed_eof())
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def lines_of(data: bytes) -> list[LogLine]:
    decoder = LogDecoder(tty=False)
    return decoder.feed(data) + decoder.feed_eof()


def test_recording_whole_reaches_100_exactly_at_the_final_milestone() -> None:
    events = run([POSTGRES])
    percents = [e.percent for e in events]
    assert percents == sorted(percents)
    assert events[-1].state is State.DONE
    assert events[-1].percent == 100.0
    assert events[-1].phase == "ready"
    assert all(e.percent is not None and e.percent < 100 for e in events[:-1])
    phases = [e.phase for e in events]
    for phase in ("start", "server-ready", "generating", "loading", "vacuuming", "primary-keys"):
        assert phase in phases
    # every checkpoint of the recording up to the final line is one dynamic update
    recorded = [x for x in lines_of(POSTGRES) if "checkpoint complete" in x.text]
    final_at = next(x.time_ns for x in lines_of(POSTGRES) if "Finished DB init!" in x.text)
    before = [x for x in recorded if x.time_ns is not None and x.time_ns < final_at]
    # ... and names the phase while the load runs, up to the vacuum (see the test below)
    vacuum_at = next(x.time_ns for x in lines_of(POSTGRES) if x.text.startswith("vacuuming"))
    in_band = [x for x in before if x.time_ns is not None and x.time_ns < vacuum_at]
    assert phases.count("loading") == len(in_band) > 10


def test_same_updates_whole_per_frame_byte_by_byte_and_random() -> None:
    whole = run([POSTGRES])
    assert run(split_at(POSTGRES, list(range(len(POSTGRES))))) == whole
    rng = random.Random(5)
    for _ in range(5):
        cuts = rng.sample(range(1, len(POSTGRES)), 200)
        assert run(split_at(POSTGRES, cuts)) == whole


def test_same_updates_line_by_line() -> None:
    whole = run([POSTGRES])
    tracker = LogProgress(milestones(), clock=lambda: 1000.0)
    events: list[TaskEvent] = []
    for line in lines_of(POSTGRES):
        events += tracker.feed_line(line)
    assert events == whole


def test_tty_recording_byte_by_byte() -> None:
    steps = MilestoneSet([("héllo", 0, "Hello"), (r"step \d", DYNAMIC, "Steps"), ("^done$", 100)])

    def feed(chunks: list[bytes]) -> list[tuple[State, float | None, str | None]]:
        decoder = LogDecoder(tty=True)
        tracker = LogProgress(steps, clock=lambda: 0.0)
        out = []
        for chunk in chunks:
            out += tracker.feed(decoder.feed(chunk))
        out += tracker.feed(decoder.feed_eof())
        return [(e.state, e.percent, e.phase) for e in out]

    whole = feed([TTY])
    assert whole == feed([TTY[i : i + 1] for i in range(len(TTY))])
    assert [p for _, p, _ in whole][-1] == 100.0
    assert [ph for _, _, ph in whole].count("steps") == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(POSTGRES) - 1), max_size=40))
def test_any_split_same_events_property(cuts: list[int]) -> None:
    assert run(split_at(POSTGRES, cuts)) == run([POSTGRES])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["begin", "half", "all done", "noise"]),
            st.integers(min_value=0, max_value=500).map(lambda n: f"chunk {n}"),
        ),
        max_size=40,
    ),
    st.booleans(),
)
def test_promises_on_any_line_sequence(lines: list[str], with_expected: bool) -> None:
    dynamic: dict[str, object] = {"pattern": r"chunk (?P<value>\d+)", "progress": "dynamic"}
    if with_expected:
        dynamic["expected"] = 2000
    steps = MilestoneSet(
        [("begin", 10), dynamic, ("half", 50), {"pattern": "all done", "progress": 100}]
    )
    tracker = LogProgress(steps, clock=lambda: 0.0)
    events: list[TaskEvent] = []
    for i, text in enumerate(lines):
        events += tracker.feed_line(text, ts=float(i))
        events += tracker.tick(float(i) + 0.5)
    percents = [e.percent for e in events]
    assert percents == sorted(percents)
    for event in events:
        assert event.total == 100
        assert event.current <= 100
        assert (event.percent == 100) == (event.state is State.DONE)
    assert sum(e.terminal for e in events) <= 1
    if events and events[-1].terminal:
        assert "all done" in lines


def test_dynamic_band_without_expected_is_asymptotic() -> None:
    steps = MilestoneSet([("go", 20), ("tick", DYNAMIC), ("next", 60), ("end", 100)])
    tracker = LogProgress(steps, clock=lambda: 0.0)
    tracker.feed_line("go", ts=0.0)
    seen = []
    for i in range(50):
        (event,) = tracker.feed_line("tick", ts=float(i + 1))
        seen.append(event.percent)
    assert seen[0] == 20 + 40 * ASYMPTOTIC_STEP
    assert seen == sorted(seen)
    assert seen[-1] < 60
    (event,) = tracker.feed_line("next", ts=60.0)
    assert event.percent == 60


def test_dynamic_value_with_expected_total() -> None:
    steps = MilestoneSet(
        [
            ("go", 10),
            {"pattern": r"wrote (?P<value>\d+)", "progress": "dynamic", "expected": 1000},
            ("end", 100),
        ]
    )
    tracker = LogProgress(steps, clock=lambda: 0.0)
    tracker.feed_line("go", ts=0.0)
    (first,) = tracker.feed_line("wrote 250", ts=1.0)
    assert first.percent == 10 + 90 * 0.25
    (second,) = tracker.feed_line("wrote 5000", ts=2.0)
    assert second.percent is not None
    assert second.percent < 100
    assert second.percent == 10 + 90 * 0.99


def test_progress_handler_gets_real_numbers() -> None:
    calls: list[tuple[float, str, str]] = []
    tracker = LogProgress(milestones(), progress_handler=lambda *a: calls.append(a))
    tracker.feed(lines_of(POSTGRES))
    assert calls[-1][0] == 100.0
    assert calls[-1][2] == "Finished DB init!"
    assert all(p >= 0 for p, _, _ in calls)
    assert [p for p, _, _ in calls] == sorted(p for p, _, _ in calls)


def test_exit_before_final_is_an_error_with_code_and_lines() -> None:
    tracker = LogProgress(milestones(), clock=lambda: 0.0)
    tracker.feed(lines_of(POSTGRES)[:60])
    (event,) = tracker.container_exited(3, at=5.0)
    assert event.state is State.ERROR
    assert event.detail["exit_code"] == 3
    assert event.detail["last_lines"][-1] == lines_of(POSTGRES)[59].text
    assert tracker.error is not None
    assert tracker.error.exit_code == 3
    assert "before its final milestone" in (event.error or "")


def test_no_final_milestone_done_on_exit_zero() -> None:
    tracker = LogProgress(MilestoneSet([("go", 10)]), clock=lambda: 0.0)
    tracker.feed_line("go", ts=1.0)
    (event,) = tracker.container_exited(0, at=2.0)
    assert event.state is State.DONE
    assert event.percent == 100


def test_daemon_error_line_ends_in_error() -> None:
    tracker = LogProgress(milestones(), clock=lambda: 0.0)
    (event,) = tracker.feed_line(LogLine(3, "Error grabbing logs: log file gone"))
    assert event.state is State.ERROR
    assert "Error grabbing logs" in (event.error or "")


def test_stall_warning_set_once_and_cleared_by_a_match() -> None:
    tracker = LogProgress(milestones(), stall_after=30.0, clock=lambda: 0.0)
    tracker.feed_line("Starting DB init!", ts=0.0)
    assert tracker.tick(10.0) == []
    (warned,) = tracker.tick(31.0)
    assert warned.detail["warning"] == "no milestone matched for 30 s"
    assert tracker.tick(40.0) == []
    (cleared,) = tracker.feed_line("LOG:  database system is ready to accept connections", ts=41)
    assert "warning" not in cleared.detail


def replay(
    profile: Profile | None, recording: bytes = POSTGRES
) -> tuple[list[TaskEvent], LogProgress]:
    """The recording in time order, with a tick every 0.25 s between lines."""
    lines = lines_of(recording)
    start = lines[0].ts or 0.0
    now = {"t": start}
    tracker = LogProgress(milestones(), profile=profile, started_at=start, clock=lambda: now["t"])
    events = tracker.start(start)
    for line in lines:
        assert line.ts is not None
        while now["t"] + 0.25 < line.ts:
            now["t"] += 0.25
            events += tracker.tick(now["t"])
        now["t"] = line.ts
        events += tracker.feed_line(line)
        if tracker.ended:
            break
    return events, tracker


def max_gap(events: list[TaskEvent]) -> float:
    start, end = events[0].ts, events[-1].ts
    return max(abs((e.percent or 0) - 100 * (e.ts - start) / (end - start)) for e in events)


def test_calibrated_second_run_tracks_time_and_has_an_eta() -> None:
    first, tracker = replay(None)
    assert tracker.run_record is not None
    assert all(e.eta is None for e in first)
    profile = Profile("postgres-load").with_run(tracker.run_record)
    second, again = replay(profile)
    assert again.calibrated
    percents = [e.percent for e in second]
    assert percents == sorted(percents)
    assert second[-1].state is State.DONE
    assert second[-1].percent == 100
    running = [e for e in second if e.state is State.RUNNING]
    assert all(e.eta is not None for e in running)
    assert max_gap(second) < max_gap(first)
    # same run replayed: calibrated progress follows elapsed time within a few points
    assert max_gap(second) < 5.0


def test_more_checkpoints_than_the_learned_run_had_do_not_jump_to_a_later_phase() -> None:
    # Learned from a small load (few checkpoints while loading, more during the primary
    # keys), followed on a larger one: its n-th checkpoint while loading must not be put
    # where the small run's n-th checkpoint was (after the vacuum, near the end).
    small = (FIXTURES / "postgres-load-s20.frames").read_bytes()
    large = (FIXTURES / "postgres-load-s80.frames").read_bytes()
    _, tracker = replay(None, small)
    assert tracker.run_record is not None
    profile = Profile("postgres-load").with_run(tracker.run_record)
    marks = dict(profile.marks())
    small_loads = sum(
        1 for k, v in marks.items() if k.startswith("loading#") and v < marks["vacuuming"]
    )
    events, _ = replay(profile, large)
    loading = [e for e in events if e.phase == "loading"]
    assert len(loading) > small_loads  # the case is in the recordings
    vacuum = 100 * marks["vacuuming"]
    assert max(e.percent or 0 for e in loading) < vacuum
    percents = [e.percent for e in events]
    assert percents == sorted(percents)
    assert events[-1].percent == 100


def test_a_checkpoint_after_a_later_phase_does_not_rename_the_phase_back() -> None:
    # The recording has checkpoint lines (the dynamic "loading" milestone) while pgbench
    # vacuums and builds primary keys: progress may move, the phase stays the later one.
    events = run([POSTGRES])
    phases = [e.phase for e in events]
    assert "loading" not in phases[phases.index("vacuuming") :]
    lines = lines_of(POSTGRES)
    vacuum_at = next(x.time_ns for x in lines if x.text.startswith("vacuuming"))
    final_at = next(x.time_ns for x in lines if "Finished DB init!" in x.text)
    late = [
        x
        for x in lines
        if "checkpoint complete" in x.text
        and x.time_ns is not None
        and vacuum_at is not None
        and final_at is not None
        and vacuum_at < x.time_ns < final_at
    ]
    assert late  # the case really is in the recording
