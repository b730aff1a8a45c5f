"""Property tests: any engine-shaped push stream keeps the promises.

Streams are generated as the engines write them (REFERENCE.md §8 and the recordings): with
``Preparing`` for every layer first (classic store) or not (containerd store, a layer named
by its first ``Pushing``); each layer either already in the registry (``Layer already
exists``, ``Already exists``, ``Mounted from``) or sent in ``Pushing`` steps then ``Pushed``;
the layers' messages interleaved at random; then the digest line and ``aux``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.push import PushTracker
from dockprogress.events import State
from tests.build.recordings import StepClock, assert_promises

Message = dict[str, Any]
EXISTS = ("Layer already exists", "Already exists", "Mounted from dp/other")


@st.composite
def push_stream(draw: st.DrawFn) -> tuple[list[Message], int]:
    count = draw(st.integers(min_value=1, max_value=6))
    announce = draw(st.booleans())
    scripts: list[list[Message]] = []
    to_send = 0
    for index in range(count):
        layer = f"{index:012x}"
        if draw(st.booleans()):
            scripts.append([{"status": draw(st.sampled_from(EXISTS)), "id": layer}])
            continue
        size = draw(st.integers(min_value=1, max_value=50_000_000))
        to_send += size
        # The engine's progress reader always reports its end (seen for 3-byte layers too).
        steps = [*sorted(draw(st.lists(st.integers(0, size), max_size=5))), size]
        script = [
            {"status": "Pushing", "progressDetail": {"current": c, "total": size}, "id": layer}
            for c in steps
        ]
        script.append({"status": "Pushed", "progressDetail": {}, "id": layer})
        scripts.append(script)
    head: list[Message] = [{"status": "The push refers to repository [127.0.0.1:5001/x]"}]
    if announce:
        head += [{"status": "Preparing", "id": f"{i:012x}"} for i in range(count)]
    body: list[Message] = []
    cursors = [0] * count
    while any(cursors[i] < len(s) for i, s in enumerate(scripts)):
        live = [i for i, s in enumerate(scripts) if cursors[i] < len(s)]
        pick = draw(st.sampled_from(live))
        body.append(scripts[pick][cursors[pick]])
        cursors[pick] += 1
    tail: list[Message] = [
        {"status": "1: digest: sha256:" + "ab" * 32 + " size: 527"},
        {"aux": {"Tag": "1", "Digest": "sha256:" + "ab" * 32, "Size": 527}},
    ]
    return head + body + tail, to_send


@settings(max_examples=150, deadline=None)
@given(push_stream())
def test_any_push_stream_keeps_the_promises(stream: tuple[list[Message], int]) -> None:
    messages, to_send = stream
    tracker = PushTracker("127.0.0.1:5001/x:1", clock=StepClock(), min_interval=0)
    events = [tracker.begin(), *(tracker.feed(m) for m in messages), tracker.feed_eof()]
    kept = [e for e in events if e is not None]
    assert_promises(kept)
    totals = [e.total for e in kept if e.total is not None]
    assert totals == sorted(totals), "the total never shrinks"
    last = kept[-1]
    assert last.state is State.DONE
    assert last.current == last.total
    # Every layer sent is counted; a layer the registry had is not (unless the engine said
    # so only after it had started sending it, which these streams never do).
    assert last.total == to_send
