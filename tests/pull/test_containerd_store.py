"""Pulls on the containerd image store: recorded Docker 26.1 streams and Docker 29-shaped ones.

Docker 26.1 (the bed's modern engine, recorded with scripts/record_pull.py, see
tests/fixtures/pull/README.md) never says ``Already exists`` and unpacks silently after
``Download complete`` (``hidecounts``); Docker 28-29 send ``Extracting`` as seconds spent
(``{"current": 3, "units": "s"}``, public reports cited in REFERENCE.md §8): those streams are
built here from the 26.1 recording by the documented format. The tracker estimates extraction
from an unpack rate (core/unpack.py), ticked while the engine is silent.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.pull import PullTracker
from dockprogress.core.unpack import (
    DEFAULT_UNPACK_RATE,
    EASE_CAP,
    EASE_KNEE,
    blend_rate,
    ease,
    estimated_fraction,
)
from dockprogress.events import State, TaskEvent
from tests.contract import assert_event_lines
from tests.pull.recordings import EPOCH, Recording, load, manifest, replay

TICK = 0.25
STREAMS = {
    "containerd26_fresh_layers": "dp_layers_1_bed2",
    "containerd26_many_files": "dp_many_1",
    "containerd26_up_to_date_layers": "dp_layers_1_bed2",
}


def _cuts(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        step = rng.randint(1, 500)
        pieces.append(data[i : i + step])
        i += step
    return pieces


def _replay(rec: Recording, pieces: list[bytes], **options: Any) -> list[TaskEvent]:
    options.setdefault("sizes", manifest(STREAMS[rec.name.removeprefix("docker29_")]).sizes)
    options.setdefault("tick", TICK)
    return replay(rec, pieces, **options)


def _key(events: list[TaskEvent]) -> list[str]:
    return [event.to_json() for event in events]


@pytest.mark.parametrize("hint", [True, False], ids=["engine-said", "stream-only"])
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_same_events_however_the_bytes_arrive(name: str, hint: bool) -> None:
    rec = load(name)
    whole = _replay(rec, [rec.raw], containerd_store=hint)
    assert _key(_replay(rec, [c for _, c in rec.chunks], containerd_store=hint)) == _key(whole)
    byte_by_byte = [rec.raw[i : i + 1] for i in range(len(rec.raw))]
    assert _key(_replay(rec, byte_by_byte, containerd_store=hint)) == _key(whole)
    assert _key(_replay(rec, _cuts(rec.raw, len(name)), containerd_store=hint)) == _key(whole)


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_promises_hold(name: str) -> None:
    rec = load(name)
    raw: list[float] = []
    events = _replay(rec, [rec.raw], containerd_store=True, raw_percents=raw)
    assert_event_lines([e.to_json() for e in events])
    assert raw == sorted(raw)
    done = events[-1]
    assert done.state is State.DONE
    assert done.percent == 100.0
    assert done.current == done.total
    assert all(e.percent is not None and e.percent < 100 for e in events[:-1])


def test_layers_the_engine_has_leave_the_total_before_the_first_byte() -> None:
    # dp/base:1's layer is on the engine: Docker 26 does not name it at all.
    rec = load("containerd26_fresh_layers")
    layers = manifest("dp_layers_1_bed2")
    base = layers.layers[0]
    named = {m.get("id") for _, m in rec.messages()}
    assert base.short_id not in named
    events = _replay(rec, [rec.raw], containerd_store=True)
    assert events[0].total == layers.total_size
    first_byte = next(e for e in events if e.current > 0)
    assert first_byte.total == layers.total_size - base.size
    assert {e.total for e in events[events.index(first_byte) :]} == {first_byte.total}
    assert events[-1].detail["layers"][base.short_id]["state"] == "present"
    assert events[-1].detail["exact_total"] is True


def _extraction(events: list[TaskEvent]) -> list[TaskEvent]:
    return [e for e in events if e.state is State.RUNNING and e.phase == "extracting"]


def test_silent_unpacking_moves_with_an_eta_and_never_reaches_100() -> None:
    # 40,000 files of 1 KiB: 0.55 s to download, then 5.7 s of silence before Digest:.
    rec = load("containerd26_many_files")
    events = _replay(rec, [rec.raw], containerd_store=True)
    extracting = _extraction(events)
    assert len(extracting) >= 15  # ticked 4 times a second through the silence
    percents = [e.percent or 0.0 for e in extracting]
    assert percents == sorted(percents)
    assert percents[-1] - percents[0] > 10  # it moved, through what used to be a frozen bar
    assert max(percents) < 100
    assert extracting[0].eta is not None
    assert all("estimated" in e.description for e in extracting)
    assert extracting[-1].detail["extraction"]["estimated"] is True
    assert events[-1].state is State.DONE


def test_a_learned_rate_predicts_the_silent_phase() -> None:
    rec = load("containerd26_many_files")
    first: list[PullTracker] = []
    _replay(rec, [rec.raw], containerd_store=True, tracker_out=first)
    sample = first[0].unpack_sample
    assert sample is not None
    nbytes, seconds = sample
    size = manifest("dp_many_1").total_size
    assert nbytes == size
    assert 5.0 < seconds < 6.5  # the recorded silence
    rate = blend_rate(None, nbytes, seconds)
    assert rate is not None
    events = _replay(rec, [rec.raw], containerd_store=True, unpack_rate=rate)
    extracting = _extraction(events)
    start = extracting[0]
    assert start.eta is not None
    assert abs(start.eta - seconds) < 0.6
    # Half-way through the silence the bar is half-way through the extraction share.
    end_of_download = 80.0
    middle = min(extracting, key=lambda e: abs(e.ts - (start.ts + seconds / 2)))
    assert (middle.percent or 0) == pytest.approx(end_of_download + 10, abs=2.5)
    etas = [e.eta for e in extracting if e.eta is not None]
    assert etas == sorted(etas, reverse=True)


def _docker29_stream(rec: Recording, seconds_per_layer: float) -> Recording:
    """The 26.1 recording reshaped as Docker 28-29 send it: after the downloads, each layer
    in turn reports ``Extracting`` as whole seconds spent, then ``Pull complete``."""
    out: list[tuple[float, bytes]] = []
    layers: list[str] = []
    tail: list[dict[str, Any]] = []
    last = 0.0
    for t, message in rec.messages():
        status = message.get("status", "")
        if status.startswith(("Digest:", "Status:")):
            tail.append(message)
            continue
        if status == "Download complete":
            layers.append(message["id"])
        out.append((t, json.dumps(message).encode() + b"\r\n"))
        last = t
    for layer in layers:
        for second in range(math.ceil(seconds_per_layer)):
            last += 1.0
            message = {
                "status": "Extracting",
                "progressDetail": {"current": second + 1, "units": "s"},
                "id": layer,
            }
            out.append((last, json.dumps(message).encode() + b"\r\n"))
        last += seconds_per_layer - math.floor(seconds_per_layer)
        complete = {"status": "Pull complete", "progressDetail": {}, "id": layer}
        out.append((last, json.dumps(complete).encode() + b"\r\n"))
    out.extend((last, json.dumps(m).encode() + b"\r\n") for m in tail)
    return Recording("docker29_" + rec.name, rec.header, out, None)


@pytest.mark.parametrize("hint", [True, False], ids=["engine-said", "stream-only"])
def test_docker29_seconds_are_estimated_per_layer(hint: bool) -> None:
    rec = _docker29_stream(load("containerd26_fresh_layers"), seconds_per_layer=3.0)
    raw: list[float] = []
    trackers: list[PullTracker] = []
    events = _replay(rec, [rec.raw], containerd_store=hint, raw_percents=raw, tracker_out=trackers)
    assert_event_lines([e.to_json() for e in events])
    assert raw == sorted(raw)
    extracting = _extraction(events)
    assert len(extracting) > 6 * 3  # every layer moves while it unpacks
    assert all(e.detail["extraction"]["estimated"] for e in extracting if "extraction" in e.detail)
    assert events[-1].state is State.DONE
    assert events[-1].percent == 100.0
    assert max(e.percent or 0 for e in events[:-1]) < 100
    # Each layer told its seconds: the observed rate is its bytes over them.
    sample = trackers[0].unpack_sample
    assert sample is not None
    assert sample[1] == pytest.approx(6 * 3.0, abs=0.5)
    same = _replay(rec, _cuts(rec.raw, 7), containerd_store=hint)
    assert _key(same) == _key(events)


@given(st.floats(min_value=0, max_value=1e3), st.floats(min_value=0, max_value=1e3))
def test_ease_is_monotonic_and_never_reaches_the_cap(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert ease(low) <= ease(high) < EASE_CAP or ease(high) == pytest.approx(EASE_CAP)
    assert ease(high) <= EASE_CAP
    assert ease(low) <= max(low, 0.0) + 1e-12


def test_ease_follows_the_estimate_up_to_the_knee_with_a_continuous_slope() -> None:
    assert ease(0.5) == 0.5
    assert ease(EASE_KNEE) == EASE_KNEE
    slope = (ease(EASE_KNEE + 1e-6) - ease(EASE_KNEE)) / 1e-6
    assert slope == pytest.approx(1.0, rel=1e-3)
    assert estimated_fraction(DEFAULT_UNPACK_RATE, 1e6, 1) <= EASE_CAP


@settings(max_examples=200)
@given(
    st.one_of(st.none(), st.floats(min_value=1e3, max_value=1e10)),
    st.floats(min_value=0, max_value=1e11),
    st.floats(min_value=0, max_value=1e5),
)
def test_blended_rates_stay_sane(stored: float | None, nbytes: float, seconds: float) -> None:
    rate = blend_rate(stored, nbytes, seconds)
    if nbytes < 1e6 or seconds <= 0.02:
        assert rate == stored
    else:
        assert rate is not None
        assert math.isfinite(rate)
        assert rate >= 256e3 * 0.99 or (stored is not None and stored < 256e3)


def test_tick_on_the_classic_store_does_nothing() -> None:
    tracker = PullTracker(
        "127.0.0.1:5000/dp/any:1", layer_sizes={"a" * 12: 10}, clock=lambda: EPOCH
    )
    tracker.begin()
    assert tracker.tick() is None
