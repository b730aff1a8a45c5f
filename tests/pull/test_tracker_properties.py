"""Property tests: for any engine-shaped pull stream, the tracker keeps the promises.

Streams are generated the way the engine writes them (REFERENCE.md §1): every layer is
announced first (``Already exists`` or ``Pulling fs layer``, maybe ``Waiting``), then the
layers' own sequences interleave at random: ``Downloading`` steps (with retries that resume
at ``total = size - offset``; the last step reports the end of what was read),
``Verifying Checksum``, ``Download complete``, ``Extracting``
in bytes or, for the containerd store, in seconds, ``Pull complete``; then ``Digest:`` and
``Status:``. With and without the manifest's sizes.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.pull import PullTracker
from dockprogress.events import State, TaskEvent

Message = dict[str, Any]


@st.composite
def layer_script(draw: st.DrawFn, layer_id: str) -> tuple[int, bool, list[Message]]:
    size = draw(st.integers(min_value=1, max_value=50_000_000))
    present = draw(st.booleans())
    if present:
        return size, True, []
    msgs: list[Message] = []
    offset, done = 0, 0
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        done = draw(st.integers(min_value=done, max_value=size))
        msgs.append(_dl(layer_id, done - offset, size - offset))
        if draw(st.integers(0, 9)) == 0:  # the connection broke: retry and resume
            msgs.append({"status": "Retrying in 5 seconds", "progressDetail": {}, "id": layer_id})
            offset = draw(st.integers(min_value=offset, max_value=done))
            msgs.append({"status": "Downloading", "progressDetail": {}, "id": layer_id})
    # The engine's progress reader always reports its end (current == what it had to read).
    msgs.append(_dl(layer_id, size - offset, size - offset))
    msgs.append({"status": "Verifying Checksum", "progressDetail": {}, "id": layer_id})
    msgs.append({"status": "Download complete", "progressDetail": {}, "id": layer_id})
    containerd = draw(st.booleans())
    extracted = 0
    for step in range(draw(st.integers(min_value=0, max_value=4))):
        if containerd:
            detail = {"current": step + 1, "units": "s"}
        else:
            extracted = draw(st.integers(min_value=extracted, max_value=size))
            detail = {"current": extracted, "total": size}
        msgs.append({"status": "Extracting", "progressDetail": detail, "id": layer_id})
    msgs.append({"status": "Pull complete", "progressDetail": {}, "id": layer_id})
    return size, False, msgs


def _dl(layer_id: str, current: int, total: int) -> Message:
    return {
        "status": "Downloading",
        "progressDetail": {"current": current, "total": total},
        "progress": "[==>   ]",
        "id": layer_id,
    }


@st.composite
def pull_stream(draw: st.DrawFn) -> tuple[dict[str, int], list[Message]]:
    count = draw(st.integers(min_value=1, max_value=6))
    ids = [f"{n:012x}" for n in range(0xA0, 0xA0 + count)]
    sizes: dict[str, int] = {}
    head: list[Message] = [{"status": "Pulling from dp/any", "id": "1"}]
    scripts: list[list[Message]] = []
    for layer_id in ids:
        size, present, msgs = draw(layer_script(layer_id))
        sizes[layer_id] = size
        status = "Already exists" if present else "Pulling fs layer"
        head.append({"status": status, "progressDetail": {}, "id": layer_id})
        if msgs:
            scripts.append(msgs)
    for n, script in enumerate(scripts):
        if n >= 3:  # the engine downloads 3 at a time; the others wait
            head.append({"status": "Waiting", "progressDetail": {}, "id": script[0]["id"]})
    body: list[Message] = []
    while scripts:
        pick = draw(st.integers(min_value=0, max_value=len(scripts) - 1))
        body.append(scripts[pick].pop(0))
        if not scripts[pick]:
            scripts.pop(pick)
    tail = [
        {"status": "Digest: sha256:" + "e" * 64},
        {"status": "Status: Downloaded newer image for 127.0.0.1:5000/dp/any:1"},
    ]
    return sizes, head + body + tail


def _run(sizes: dict[str, int] | None, messages: list[Message]) -> list[TaskEvent]:
    now = [1_700_000_000.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    tracker = PullTracker("127.0.0.1:5000/dp/any:1", layer_sizes=sizes, clock=clock)
    events = [tracker.begin()]
    raw = []
    for message in messages:
        events.append(tracker.feed(message))
        raw.append(tracker._percent())
    # The tracker's own figure is monotonic: the Task's clamp is a safety net, not the design.
    assert raw == sorted(raw)
    events.append(tracker.feed_eof())
    return [e for e in events if e is not None]


@settings(max_examples=150, deadline=None)
@given(pull_stream(), st.booleans())
def test_percent_monotonic_current_within_total_and_exact_end(
    stream: tuple[dict[str, int], list[Message]], exact: bool
) -> None:
    sizes, messages = stream
    events = _run(sizes if exact else None, messages)
    percents = [e.percent for e in events if e.percent is not None]
    assert percents == sorted(percents)
    for event in events:
        if event.total is not None:
            assert event.current <= event.total
    end = events[-1]
    assert end.state is State.DONE
    assert end.percent == 100.0
    assert all(e.percent is None or e.percent < 100.0 for e in events[:-1])
    to_download = sum(
        size
        for layer_id, size in sizes.items()
        if not any(m.get("id") == layer_id and m["status"] == "Already exists" for m in messages)
    )
    assert end.current == end.total == to_download
    if exact:
        first_byte = next((e for e in events if e.current > 0), None)
        if first_byte is not None:  # total known, and final, before the first byte
            assert first_byte.total == to_download


@settings(max_examples=100, deadline=None)
@given(pull_stream(), st.booleans())
def test_downloaded_bytes_never_go_back(
    stream: tuple[dict[str, int], list[Message]], exact: bool
) -> None:
    sizes, messages = stream
    events = _run(sizes if exact else None, messages)
    running = [e for e in events if e.current > 0]
    currents = [e.current for e in running]
    assert currents == sorted(currents)


@settings(max_examples=60, deadline=None)
@given(pull_stream(), st.integers(min_value=0, max_value=200))
def test_an_error_anywhere_ends_in_error_with_the_engines_message(
    stream: tuple[dict[str, int], list[Message]], where: int
) -> None:
    sizes, messages = stream
    cut = min(where, len(messages) - 1)
    message = "dial tcp 127.0.0.1:5182: connect: connection refused"
    broken = [*messages[:cut], {"errorDetail": {"message": message}, "error": message}]
    tracker = PullTracker("x", layer_sizes=sizes)
    for m in broken:
        tracker.feed(m)
    assert tracker.task.state is State.ERROR
    assert tracker.task.error == message
    assert tracker.error is not None
    assert tracker.error.message == message
    assert tracker.feed_eof() is None
