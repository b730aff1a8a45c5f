"""The pull tracker on streams recorded from the real engine (tests/fixtures/pull/README.md).

Each recording is fed whole, byte by byte, chunk by chunk as the engine sent it, at random
cuts, and with junk lines between its lines: the events must be the same every time, and
keep the promises of INTERFACE.md.
"""

from __future__ import annotations

import json
import random

import pytest

from dockprogress.events import State, TaskEvent
from tests.contract import assert_event_lines
from tests.pull.recordings import JUNK_OBJECTS, load, manifest, replay

STREAMS = ("fresh_layers", "cached_shared_b", "resumed_layers", "up_to_date_layers")
MANIFEST_OF = {
    "fresh_layers": "dp_layers_1",
    "cached_shared_b": "dp_shared_b",
    "resumed_layers": "dp_layers_1",
    "up_to_date_layers": "dp_layers_1",
    "registry_gone_layers": "dp_layers_1",
}


def _sizes(name: str, exact: bool) -> dict[str, int] | None:
    return manifest(MANIFEST_OF[name]).sizes if exact else None


def _random_cuts(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        step = rng.randint(1, 700)
        pieces.append(data[i : i + step])
        i += step
    return pieces


def _with_junk(data: bytes) -> list[bytes]:
    junk = [b"not json at all\n", b"[1, 2]\n", b"\r\n", b'{"half": \n'] + [
        json.dumps(obj).encode() + b"\r\n" for obj in JUNK_OBJECTS
    ]
    out = []
    for n, line in enumerate(data.splitlines(keepends=True)):
        out.append(junk[n % len(junk)])
        out.append(line)
    return out


def _key(events: list[TaskEvent]) -> list[str]:
    return [event.to_json() for event in events]


@pytest.mark.parametrize("exact", [True, False], ids=["manifest", "no-manifest"])
@pytest.mark.parametrize("name", STREAMS)
def test_same_events_however_the_bytes_arrive(name: str, exact: bool) -> None:
    rec = load(name)
    sizes = _sizes(name, exact)
    whole = replay(rec, [rec.raw], sizes=sizes)
    assert len(whole) > 3
    as_sent = replay(rec, [chunk for _, chunk in rec.chunks], sizes=sizes)
    byte_by_byte = replay(rec, [rec.raw[i : i + 1] for i in range(len(rec.raw))], sizes=sizes)
    random_cuts = replay(rec, _random_cuts(rec.raw, seed=len(name)), sizes=sizes)
    junk = replay(rec, _with_junk(rec.raw), sizes=sizes)
    assert _key(as_sent) == _key(whole)
    assert _key(byte_by_byte) == _key(whole)
    assert _key(random_cuts) == _key(whole)
    assert _key(junk) == _key(whole)


@pytest.mark.parametrize("exact", [True, False], ids=["manifest", "no-manifest"])
@pytest.mark.parametrize("name", STREAMS)
def test_promises_hold_on_recordings(name: str, exact: bool) -> None:
    rec = load(name)
    raw_percents: list[float] = []
    events = replay(rec, [rec.raw], sizes=_sizes(name, exact), raw_percents=raw_percents)
    assert_event_lines([e.to_json() for e in events])
    # The tracker's own figure never needs the Task's clamp to stay monotonic.
    assert raw_percents == sorted(raw_percents)
    done = events[-1]
    assert done.state is State.DONE
    assert done.percent == 100.0
    assert done.total is not None
    assert done.current == done.total
    assert done.detail["exact_total"] is exact
    assert all(e.percent is not None and e.percent < 100 for e in events[:-1])


def test_fresh_pull_total_known_before_first_byte() -> None:
    rec = load("fresh_layers")
    layers = manifest("dp_layers_1")
    events = replay(rec, [rec.raw], sizes=layers.sizes)
    assert events[0].total == layers.total_size == 123_790_937
    # The base layer was already present (dp/base:1 stays on the test bed): it is excluded
    # before the first downloaded byte, and from then on the total never moves.
    base = layers.layers[0]
    first_byte = next(e for e in events if e.current > 0)
    assert first_byte.total == layers.total_size - base.size
    assert {e.total for e in events[events.index(first_byte) :]} == {first_byte.total}
    assert events[-1].current == layers.total_size - base.size
    assert events[-1].detail["layers"][base.short_id]["state"] == "present"
    counts = events[-1].detail["counts"]
    assert counts == {"present": 1, "complete": len(layers.layers) - 1}
    assert events[-1].detail["digest"].startswith("sha256:")


def test_partly_cached_pull_excludes_present_layers() -> None:
    rec = load("cached_shared_b")
    layers = manifest("dp_shared_b")
    events = replay(rec, [rec.raw], sizes=layers.sizes)
    present = [m["id"] for _, m in rec.messages() if m.get("status") == "Already exists"]
    assert len(present) == 3  # base + the 10 MB and 20 MB layers shared with dp/shared:a
    own = layers.total_size - sum(layers.sizes[p] for p in present)
    first_byte = next(e for e in events if e.current > 0)
    assert first_byte.total == own
    assert events[-1].current == events[-1].total == own
    assert 8 * 2**20 <= own < 9 * 2**20  # the one own 8 MB layer, compressed


@pytest.mark.parametrize("exact", [True, False], ids=["manifest", "no-manifest"])
def test_resumed_download_neither_double_counts_nor_regresses(exact: bool) -> None:
    rec = load("resumed_layers")
    events = replay(rec, [rec.raw], sizes=_sizes("resumed_layers", exact))
    currents = [e.current for e in events]
    assert currents == sorted(currents)
    assert events[-1].detail["retries"] > 0
    assert any(e.phase == "retrying" for e in events)
    # The big layer resumed at total = size - offset; its count restarts at the offset.
    big = "1690e4465ebf"
    size = manifest("dp_layers_1").sizes[big]
    resumed_total = next(
        m["progressDetail"]["total"]
        for _, m in rec.messages()
        if m.get("id") == big
        and m.get("status") == "Downloading"
        and m["progressDetail"]["total"] < size
    )
    offset = size - resumed_total
    layer_counts = [
        e.detail["layers"][big]["current"] for e in events if big in e.detail.get("layers", {})
    ]
    assert layer_counts == sorted(layer_counts)
    assert any(c >= offset for c in layer_counts[:-1])
    assert events[-1].detail["layers"][big]["current"] == size


def test_missing_tag_refusal_is_the_engines_message() -> None:
    rec = load("missing_tag")
    assert rec.refusal is not None
    assert rec.refusal["http_status"] == 404
    events = replay(rec, [rec.refusal["body"].encode()], sizes=None)
    end = events[-1]
    assert end.state is State.ERROR
    assert end.error == json.loads(rec.refusal["body"])["message"]
    assert "not found" in (end.error or "")


def test_registry_gone_for_good_ends_in_the_engines_error() -> None:
    rec = load("registry_gone_layers")
    messages = [m for _, m in rec.messages()]
    engine_error = messages[-1]["errorDetail"]["message"]
    for sizes in (_sizes("registry_gone_layers", True), None):
        events = replay(rec, [rec.raw], sizes=sizes)
        assert_event_lines([e.to_json() for e in events])
        end = events[-1]
        assert end.state is State.ERROR
        assert end.error == engine_error
        assert end.detail["retries"] >= 4
        assert all(e.state is State.RUNNING for e in events[:-1])
