"""The event-line validator itself: it accepts what ``Task`` emits and catches each breach.

Each breach is made by editing one field of a valid stream, so every rule of
``tests/contract.py`` is shown to bite.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from dockprogress import JsonLinesSink, Kind, Operation, Task, open_display
from dockprogress.sinks.plain import PlainSink
from dockprogress.sinks.terminal import TerminalSink
from tests.contract import assert_event_lines, assert_event_output
from tests.spine.strategies import FakeClock


def valid_stream() -> str:
    """A pull and an exec task interleaved, written by the real JSON-lines sink."""
    clock = FakeClock()
    out = io.StringIO()
    sink = JsonLinesSink(out)
    pull = Task("pull:127.0.0.1:5000/dp/base:1", Operation.PULL, Kind.DOWNLOAD, clock=clock)
    run = Task("exec:py/x", Operation.EXEC, Kind.COUNT, total=100, priority=1, clock=clock)
    sink.send(pull.snapshot())
    sink.send(pull.update(current=0, total=2_000_000, phase="downloading"))
    for step in range(1, 5):
        clock.now += 0.5
        sink.send(pull.update(current=step * 400_000))
        sink.send(run.update(current=step * 20, detail={"bar": "tqdm"}))
    sink.send(pull.finish())
    sink.send(run.fail("exit code 1", detail={"exit_code": 1}))
    sink.close()
    return out.getvalue()


def test_real_events_pass() -> None:
    events = assert_event_output(valid_stream())
    assert len(events) == 12
    assert events[0]["state"] == "pending"
    assert events[-1]["error"] == "exit code 1"


def edit(number: int, **changes: Any) -> Callable[[list[dict[str, Any]]], None]:
    def apply(events: list[dict[str, Any]]) -> None:
        events[number].update(changes)

    return apply


def drop(number: int) -> Callable[[list[dict[str, Any]]], None]:
    def apply(events: list[dict[str, Any]]) -> None:
        del events[number]

    return apply


BREACHES: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "percent went down": edit(4, percent=1.0),
    "percent 100 on a running": edit(4, percent=100),
    "done with percent": edit(10, percent=99.0),
    "percent became null again": edit(5, percent=None),
    "current .* > total": edit(3, current=3_000_000),
    "pull done with current": edit(10, current=1_999_999),
    "event after the terminal": lambda ev: ev.append(dict(ev[10], ts=ev[10]["ts"] + 1)),
    "tasks without a terminal event": drop(11),
    "went back to pending": edit(5, state="pending"),
    "kind changed": edit(5, kind="download"),
    "operation changed": edit(5, operation="run"),
    "state error without an error message": edit(11, error=None),
    "missing fields": lambda ev: ev[2].pop("phase"),
    "fields not in the contract": edit(2, layers=[]),
    "operation 'docker'": edit(2, operation="docker"),
    "kind 'bytes'": edit(2, kind="bytes"),
    "state 'finished'": edit(2, state="finished"),
    "ts must be": edit(2, ts="now"),
    "task must be": edit(2, task=""),
    "total -1": edit(2, total=-1),
    "percent 140": edit(2, percent=140),
    "speed -3": edit(2, speed=-3),
    "eta 'soon'": edit(2, eta="soon"),
    "detail must be an object": edit(2, detail=[]),
    "priority True": edit(2, priority=True),
    "current '5'": edit(2, current="5"),
}


@pytest.mark.parametrize("rule", list(BREACHES))
def test_each_breach_is_caught(rule: str) -> None:
    events = [json.loads(line) for line in valid_stream().splitlines()]
    BREACHES[rule](events)
    lines = [json.dumps(event) for event in events]
    with pytest.raises(AssertionError, match=rule):
        assert_event_lines(lines)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('{"ts": 1}', "not terminated"),
        ("not json\n", "not JSON"),
        ('{"ts": NaN}\n', "missing fields"),
        ("\n", "empty line"),
        ("[]\n", "not a JSON object"),
    ],
)
def test_malformed_output_is_caught(text: str, rule: str) -> None:
    with pytest.raises(AssertionError, match=rule):
        assert_event_output(text)


def test_nan_is_not_a_number_of_the_contract() -> None:
    event = json.loads(valid_stream().splitlines()[3])
    event["speed"] = float("nan")
    with pytest.raises(AssertionError, match="speed nan"):
        assert_event_lines([json.dumps(event)], require_end=False)


def test_open_display_picks_the_sink_for_each_mode() -> None:
    not_a_tty = io.StringIO()
    assert isinstance(open_display("json", not_a_tty), JsonLinesSink)
    assert isinstance(open_display("plain", not_a_tty), PlainSink)
    assert isinstance(open_display("auto", not_a_tty), PlainSink)
    terminal = open_display("tty", not_a_tty)
    assert isinstance(terminal, TerminalSink)
    terminal.close()
