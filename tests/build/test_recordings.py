"""Both build trackers on recorded streams: whole, message by message, split anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.build import ClassicBuildTracker
from dockprogress.core.buildkit import BuildKitTracker, RawJsonDecoder
from dockprogress.core.calibration import Profile
from dockprogress.core.dockerfile import parse_dockerfile
from dockprogress.events import State, TaskEvent
from tests.build.recordings import (
    FIXTURES,
    StepClock,
    assert_promises,
    chunks,
    feed_jsonlines,
    recording,
)

PLAN = parse_dockerfile((FIXTURES / "contexts" / "multistage" / "Dockerfile").read_text())
CLASSIC_STEPS = [i.text for i in PLAN.steps("final")]
BUILDKIT_STEPS = [i.text for i in PLAN.steps("final", builder="buildkit")]
ORDER = {s.name or "": s.index for s in PLAN.stages}


def classic(name: str, parts: list[bytes], **options: Any) -> list[TaskEvent]:
    options.setdefault("steps", CLASSIC_STEPS)
    tracker = ClassicBuildTracker("t", clock=StepClock(), **options)
    return feed_jsonlines(tracker, parts)


def buildkit(
    name: str, parts: list[bytes], exit_code: int = 0, tracker: BuildKitTracker | None = None
) -> list[TaskEvent]:
    if tracker is None:
        tracker = BuildKitTracker("t", steps=BUILDKIT_STEPS, stage_order=ORDER, clock=StepClock())
    decoder = RawJsonDecoder()
    events: list[TaskEvent | None] = [tracker.begin()]
    for part in parts:
        events += [tracker.feed(o) for o in decoder.decode(part)]
    events += [tracker.feed(o) for o in decoder.flush()]
    events.append(tracker.feed_eof(exit_code, decoder.junk))
    return [e for e in events if e is not None]


def _summary(events: list[TaskEvent]) -> tuple[Any, ...]:
    last = events[-1]
    return (last.state, last.current, last.total, last.error, last.detail.get("exit_code"))


def _messages(data: bytes) -> list[bytes]:
    return [line + b"\n" for line in data.split(b"\n") if line]


@pytest.mark.parametrize("split", ["whole", "messages", "bytes"])
def test_classic_multistage_counts_every_step(split: str) -> None:
    data = recording("classic_multistage.jsonl")
    parts = {"whole": [data], "messages": _messages(data), "bytes": chunks(data, range(len(data)))}
    events = classic("m", parts[split])
    assert_promises(events)
    assert events[-1].state is State.DONE
    assert events[-1].current == events[-1].total == 10
    live = {round(e.percent or 0) for e in events if e.state is State.RUNNING}
    assert len(live) >= 8  # one percent per step at least
    assert "step 10/10" in events[-2].description


def test_classic_cached_steps_count_at_once() -> None:
    events = classic("c", [recording("classic_cached.jsonl")])
    assert_promises(events)
    steps = events[-1].detail["steps"]
    assert [s["state"] for s in steps].count("cached") >= 5
    assert events[-1].detail["cached_steps"] >= 5


def test_classic_failure_names_step_exit_status_and_last_lines() -> None:
    plan = parse_dockerfile((FIXTURES / "contexts" / "fail" / "Dockerfile").read_text())
    tracker = ClassicBuildTracker("f", steps=[i.text for i in plan.steps()], clock=StepClock())
    events = feed_jsonlines(tracker, [recording("classic_fail.jsonl")])
    assert_promises(events)
    last = events[-1]
    assert last.state is State.ERROR
    assert last.detail["exit_code"] == 3
    assert last.error is not None
    assert "step 3/4" in last.error
    assert "about to fail" in last.error
    assert tracker.error is not None
    assert tracker.error.exit_code == 3
    # Colour codes removed; the engine's "Removing intermediate container" (forcerm) after the
    # failure, which starts with the stderr's colour reset, is not a line of the step.
    assert tracker.error.last_lines == ("about to fail", "oops")


def test_classic_stream_cut_short_is_an_error() -> None:
    data = recording("classic_multistage.jsonl")
    events = classic("cut", [data[: len(data) // 2]])
    assert events[-1].state is State.ERROR
    assert "closed the build stream" in (events[-1].error or "")


def test_calibration_gives_a_second_build_an_eta() -> None:
    data = recording("classic_multistage.jsonl")
    first = ClassicBuildTracker("t", steps=CLASSIC_STEPS, clock=StepClock())
    feed_jsonlines(first, _messages(data))
    record = first.record()
    assert record is not None
    profile = Profile("p").with_run(record)
    second = ClassicBuildTracker("t", steps=CLASSIC_STEPS, clock=StepClock(), profile=profile)
    events = feed_jsonlines(second, _messages(data))
    assert_promises(events)
    etas = [e.eta for e in events if e.state is State.RUNNING and e.eta is not None]
    assert len(etas) >= 5
    assert etas[-1] < etas[0]
    assert events[-1].detail["calibrated"] is True


@pytest.mark.parametrize("split", ["whole", "bytes"])
def test_buildkit_multistage_steps_from_vertexes(split: str) -> None:
    data = recording("buildkit_multistage.rawjson")
    parts = [data] if split == "whole" else chunks(data, range(0, len(data), 3))
    events = buildkit("m", parts)
    assert_promises(events)
    last = events[-1]
    # 5 steps of the stages 'final' needs, plus the export; 'unused' is not counted.
    assert last.state is State.DONE
    assert last.current == last.total == 6
    assert {e.total for e in events} == {6.0}
    assert len({round(e.percent or 0) for e in events if e.state is State.RUNNING}) >= 5
    assert any("step 3 for world" in line for e in events for line in e.detail["last_lines"])


def test_buildkit_failure_names_step_exit_status_and_last_lines() -> None:
    tracker = BuildKitTracker("f", steps=["a", "b", "c", "d"], clock=StepClock())
    events = buildkit("f", [recording("buildkit_fail.rawjson")], exit_code=1, tracker=tracker)
    assert_promises(events)
    assert events[-1].state is State.ERROR
    assert events[-1].detail["exit_code"] == 3
    assert tracker.error is not None
    assert "[3/4] RUN" in (tracker.error.step or "")
    assert "about to fail" in tracker.error.last_lines


def test_rawjson_decoder_skips_text_lines_and_caps_its_buffer() -> None:
    decoder = RawJsonDecoder(max_pending=100)
    out = decoder.decode(b'ERROR: something\n{\n  "a": 1\n}\n{"b"')
    assert out == [{"a": 1}]
    assert decoder.junk == ["ERROR: something"]
    assert decoder.decode(b": 2}") == [{"b": 2}]
    from dockprogress.errors import StreamError

    with pytest.raises(StreamError):
        decoder.decode(b"{" + b" " * 200)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_split_gives_the_same_end(data: st.DataObject) -> None:
    for name, run in (
        ("classic_multistage.jsonl", classic),
        ("classic_fail.jsonl", classic),
        ("buildkit_multistage.rawjson", buildkit),
    ):
        raw = recording(name)
        cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=30))
        whole = run(name, [raw])
        split = run(name, chunks(raw, cuts))
        assert_promises(split)
        assert _summary(split) == _summary(whole)


def test_buildkit_failure_outside_any_step_keeps_buildkits_words() -> None:
    # Recorded when the modern engine's snapshotter lost a snapshot (see the fixtures README).
    events = buildkit("i", [recording("buildkit_internal_error.rawjson")], exit_code=1)
    assert_promises(events)
    assert events[-1].state is State.ERROR
    assert "load build definition" in (events[-1].error or "")
    assert "no such file or directory" in (events[-1].error or "")


class FrozenClock:
    """A clock that only moves when the test moves it."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["classic", "buildkit"])
def test_output_lines_are_coalesced_and_tick_shows_the_last(kind: str) -> None:
    """Within ``min_interval`` a step's output lines give no event of their own; steps still
    do, and ``tick`` shows a line no event has shown. The end is the same as uncoalesced."""

    def run(min_interval: float) -> tuple[list[TaskEvent], list[TaskEvent]]:
        clock = FrozenClock()
        tracker: ClassicBuildTracker | BuildKitTracker
        if kind == "classic":
            tracker = ClassicBuildTracker(
                "t", steps=CLASSIC_STEPS, clock=clock, min_interval=min_interval
            )
            decoder: Any = None
            data = recording("classic_multistage.jsonl")
            items: list[Any] = [json.loads(line) for line in data.split(b"\n") if line]
        else:
            tracker = BuildKitTracker(
                "t", steps=BUILDKIT_STEPS, stage_order=ORDER, clock=clock, min_interval=min_interval
            )
            decoder = RawJsonDecoder()
            items = decoder.decode(recording("buildkit_multistage.rawjson")) + decoder.flush()
        events: list[TaskEvent] = []
        ticks: list[TaskEvent] = []
        first = tracker.begin()
        assert first is not None
        events.append(first)
        for index, item in enumerate(items):
            event = tracker.feed(item)
            if event is not None:
                events.append(event)
            if index % 5 == 4:  # now and then the stream goes quiet: the adapter ticks
                tick = tracker.tick()
                if tick is not None:
                    ticks.append(tick)
                    events.append(tick)
        end = tracker.feed_eof() if kind == "classic" else tracker.feed_eof(0, decoder.junk)
        assert end is not None
        events.append(end)
        return events, ticks

    coalesced, ticks = run(60.0)
    every, no_ticks = run(0.0)
    assert_promises(coalesced)
    assert no_ticks == []  # nothing is ever left unshown without coalescing
    assert ticks, "the frozen clock kept lines back: tick must show them"
    assert len(coalesced) < len(every)
    # Every step still has its events: the same step counts are seen.
    assert {e.current for e in coalesced} == {e.current for e in every}
    assert _summary(coalesced) == _summary(every)
    assert coalesced[-1].detail["last_lines"] == every[-1].detail["last_lines"]
    for tick in ticks:  # a tick shows the lines kept back, as an uncoalesced event had them
        assert any(e.detail["last_lines"] == tick.detail["last_lines"] for e in every)
