"""The push tracker on recorded push streams (tests/fixtures/build), fed three ways."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.push import PushTracker
from dockprogress.events import State, TaskEvent
from tests.build.recordings import StepClock, assert_promises, chunks, feed_jsonlines, recording


def run(name: str, parts: list[bytes] | None = None) -> tuple[PushTracker, list[TaskEvent]]:
    tracker = PushTracker("127.0.0.1:5001/dp/recpush:1", clock=StepClock(), min_interval=0)
    data = recording(name)
    return tracker, feed_jsonlines(tracker, parts if parts is not None else [data])


def _totals_fixed(events: list[TaskEvent], *, fixed: bool = True) -> None:
    totals = [e.total for e in events if e.total is not None]
    assert totals, "a total is known"
    assert totals == sorted(totals), "the total never shrinks"
    if fixed:  # the classic store announces every layer first
        assert len(set(totals)) == 1, "the total, once known, never moves"
    # The engine tells a layer's size with its first bytes: once every layer has sent some,
    # the total is known, a few messages in.
    first = next(e for e in events if e.total is not None)
    assert first.current < 0.05 * totals[0], "the total is known before 5 % of the bytes"


@pytest.mark.parametrize("split", ["whole", "messages", "bytes"])
def test_fresh_push_counts_every_byte(split: str) -> None:
    data = recording("push_fresh.jsonl")
    parts = {
        "whole": [data],
        "messages": [line + b"\n" for line in data.split(b"\n") if line],
        "bytes": chunks(data, range(len(data))),
    }[split]
    tracker, events = run("push_fresh.jsonl", parts)
    assert_promises(events)
    _totals_fixed(events)
    last = events[-1]
    assert last.state is State.DONE
    assert last.current == last.total
    assert last.total is not None
    assert last.total > 17_000_000
    assert tracker.digest is not None
    assert tracker.digest.startswith("sha256:")
    assert len({round(e.percent or 0) for e in events if e.state is State.RUNNING}) >= 5


def test_layers_already_in_the_registry_are_not_counted() -> None:
    _, events = run("push_exists.jsonl")
    assert_promises(events)
    last = events[-1]
    assert last.state is State.DONE
    assert last.total == 0
    assert last.detail["counts"] == {"exists": 3}


def test_unreachable_registry_is_an_error_with_the_engines_message() -> None:
    tracker, events = run("push_unreachable.jsonl")
    assert_promises(events)
    assert events[-1].state is State.ERROR
    assert "connection refused" in (events[-1].error or "")
    assert tracker.error is not None
    assert "127.0.0.1:5999" in str(tracker.error)


AUTH_REFUSALS = {
    "push_auth_refused.jsonl": "no basic auth credentials",
    "push_modern_auth_refused.jsonl": "authorization failed: no basic auth credentials",
}


@pytest.mark.parametrize("split", ["whole", "bytes", "random"])
@pytest.mark.parametrize("name", sorted(AUTH_REFUSALS))
def test_auth_refusal_is_one_line_that_says_to_log_in(name: str, split: str) -> None:
    data = recording(name)
    # The recordings name the registry the test started (a free port): the image pushed.
    registry = data.split(b"[", 1)[1].split(b"/", 1)[0].decode()
    parts = {
        "whole": [data],
        "bytes": chunks(data, range(len(data))),
        "random": chunks(data, random.Random(name).sample(range(1, len(data)), 12)),
    }[split]
    tracker = PushTracker(f"{registry}/dp/recauth:1", clock=StepClock(), min_interval=0)
    events = feed_jsonlines(tracker, parts)
    assert_promises(events)
    last = events[-1]
    assert last.state is State.ERROR
    message = last.error or ""
    assert message.startswith(AUTH_REFUSALS[name])  # the engine's own words first
    assert f"`docker login {registry}`" in message
    assert "dp/recauth" in message
    assert "\n" not in message
    assert tracker.error is not None
    assert tracker.error.message == message


@pytest.mark.parametrize(
    "message",
    [
        "dial tcp 127.0.0.1:5999: connect: connection refused",
        "blob upload unknown sha256:ab401cd4034013",
        "manifest invalid: 401abc",
    ],
)
def test_other_failures_get_no_login_advice(message: str) -> None:
    tracker = PushTracker("127.0.0.1:5000/dp/x:1", clock=StepClock())
    tracker.begin()
    event = tracker.feed({"errorDetail": {"message": message + "\n  "}, "error": message})
    assert event is not None
    assert event.error == message  # one line, the engine's words, nothing added


def test_a_refusal_by_docker_hub_says_docker_login_alone() -> None:
    tracker = PushTracker("alice/app", clock=StepClock())
    tracker.begin()
    refused = tracker.feed(
        {"errorDetail": {"message": "denied: requested access to the resource is denied"}}
    )
    assert refused is not None
    assert "`docker login`" in (refused.error or "")  # Docker Hub: no registry to name


def test_stream_without_digest_is_an_error() -> None:
    data = recording("push_fresh.jsonl")
    _, events = run("push_fresh.jsonl", [data[: len(data) // 2]])
    assert events[-1].state is State.ERROR


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_split_gives_the_same_events(data: st.DataObject) -> None:
    names = (
        "push_fresh.jsonl",
        "push_exists.jsonl",
        "push_unreachable.jsonl",
        "push_auth_refused.jsonl",
        "push_modern_auth_refused.jsonl",
    )
    for name in (*names, "push_modern_fresh.jsonl"):
        raw = recording(name)
        cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=40))
        _, whole = run(name)
        _, split = run(name, chunks(raw, cuts))
        assert_promises(split)
        strip = [(e.state, e.current, e.total, e.description) for e in whole]
        assert [(e.state, e.current, e.total, e.description) for e in split] == strip
