"""The event-line contract of ``INTERFACE.md`` (``--progress json``), as a reusable check.

Any test that runs a command with ``--progress json`` validates its standard output with::

    from tests.contract import assert_event_output, assert_event_lines

    events = assert_event_output(result.stdout)        # whole stdout: only event lines
    events = assert_event_lines(text.splitlines())     # already split lines

Both raise ``AssertionError`` naming the line and the broken rule, and return the parsed
objects (dicts) in order. Checked for every line: it is one JSON object, the fields of the
table with their types and enums, ``node`` (the publishing machine's name, a non-empty string),
plus this project's ``priority`` integer; nothing else.
Checked per task, in order of appearance (the promises):

1. ``percent`` never decreases and, once known, never becomes null again; it is 100 only on
   the ``done`` event, and the ``done`` event has 100;
2. exactly one terminal event (``done``, ``error``, ``cancelled``), the task's last; a task
   never goes back to ``pending``; ``operation`` and ``kind`` never change;
3. ``current`` never exceeds ``total`` when ``total`` is known;
4. a ``pull`` task's ``done`` event has a known ``total`` and ``current == total``;
5. an ``error`` event carries a non-empty ``error`` message.

``require_end=True`` (the default) also demands that every task has ended, as every
command's tasks do by the time it exits.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["FIELDS", "assert_event_lines", "assert_event_output", "check_event"]

OPERATIONS = frozenset({"pull", "logs", "exec", "run", "build", "push"})
KINDS = frozenset({"download", "count"})
STATES = frozenset({"pending", "running", "done", "error", "cancelled"})
TERMINAL = frozenset({"done", "error", "cancelled"})

#: The fields of INTERFACE.md's table, then the project's own additions.
FIELDS = (
    "ts",
    "task",
    "operation",
    "kind",
    "state",
    "current",
    "total",
    "percent",
    "description",
    "phase",
    "speed",
    "eta",
    "error",
    "detail",
    "node",
)
EXTRA_FIELDS = ("priority",)


def _require(condition: object, message: str) -> None:
    """Like ``assert``, but not stripped by ``python -O``."""
    if not condition:
        raise AssertionError(message)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_event(obj: Any, where: str = "event") -> None:
    """Check one parsed event line against the field table (types, enums, ranges)."""
    _require(isinstance(obj, dict), f"{where}: not a JSON object: {obj!r}")
    missing = [name for name in FIELDS if name not in obj]
    _require(not missing, f"{where}: missing fields {missing}")
    unknown = sorted(set(obj) - set(FIELDS) - set(EXTRA_FIELDS))
    _require(not unknown, f"{where}: fields not in the contract: {unknown}")
    _require(_is_number(obj["ts"]) and obj["ts"] > 0, f"{where}: ts must be Unix seconds")
    _require(
        isinstance(obj["task"], str) and obj["task"], f"{where}: task must be a non-empty string"
    )
    _require(obj["operation"] in OPERATIONS, f"{where}: operation {obj['operation']!r}")
    _require(obj["kind"] in KINDS, f"{where}: kind {obj['kind']!r}")
    _require(obj["state"] in STATES, f"{where}: state {obj['state']!r}")
    _require(
        _is_number(obj["current"]) and obj["current"] >= 0, f"{where}: current {obj['current']!r}"
    )
    total = obj["total"]
    _require(total is None or (_is_number(total) and total >= 0), f"{where}: total {total!r}")
    percent = obj["percent"]
    _require(
        percent is None or (_is_number(percent) and 0 <= percent <= 100),
        f"{where}: percent {percent!r} outside 0..100",
    )
    _require(isinstance(obj["description"], str), f"{where}: description must be a string")
    _require(
        obj["phase"] is None or isinstance(obj["phase"], str), f"{where}: phase {obj['phase']!r}"
    )
    speed = obj["speed"]
    _require(speed is None or (_is_number(speed) and speed >= 0), f"{where}: speed {speed!r}")
    eta = obj["eta"]
    _require(eta is None or (_is_number(eta) and eta >= 0), f"{where}: eta {eta!r}")
    _require(
        obj["error"] is None or isinstance(obj["error"], str), f"{where}: error {obj['error']!r}"
    )
    _require(isinstance(obj["detail"], dict), f"{where}: detail must be an object")
    _require(
        isinstance(obj["node"], str) and obj["node"], f"{where}: node must be a non-empty string"
    )
    if "priority" in obj:
        priority = obj["priority"]
        _require(
            isinstance(priority, int) and not isinstance(priority, bool),
            f"{where}: priority {priority!r} must be an integer",
        )
    # Promise 3, per event.
    if total is not None:
        _require(obj["current"] <= total, f"{where}: current {obj['current']} > total {total}")
    # Promise 5.
    if obj["state"] == "error":
        _require(obj["error"], f"{where}: state error without an error message")


def assert_event_lines(lines: list[str], *, require_end: bool = True) -> list[dict[str, Any]]:
    """Check ``lines`` (one event each, without their newline); return the parsed events."""
    events: list[dict[str, Any]] = []
    last: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        where = f"line {number}"
        _require(line.strip(), f"{where}: empty line")
        _require("\n" not in line, f"{where}: contains a newline")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{where}: not JSON ({exc}): {line[:200]!r}") from None
        check_event(obj, where)
        where = f"{where} (task {obj['task']!r})"
        before = last.get(obj["task"])
        if before is not None:
            _check_sequence(before, obj, where)
        if obj["state"] == "done":
            _require(obj["percent"] == 100, f"{where}: done with percent {obj['percent']}")
            if obj["operation"] == "pull":
                _require(
                    obj["total"] is not None and obj["current"] == obj["total"],
                    f"{where}: pull done with current {obj['current']} != total {obj['total']}",
                )
        else:
            _require(
                obj["percent"] is None or obj["percent"] < 100,
                f"{where}: percent 100 on a {obj['state']} event",
            )
        last[obj["task"]] = obj
        events.append(obj)
    if require_end:
        open_tasks = sorted(task for task, obj in last.items() if obj["state"] not in TERMINAL)
        _require(not open_tasks, f"tasks without a terminal event: {open_tasks}")
    return events


def assert_event_output(text: str, *, require_end: bool = True) -> list[dict[str, Any]]:
    """Check a whole standard output of ``--progress json``: only ``\\n``-terminated lines."""
    if not text:
        return assert_event_lines([], require_end=require_end)
    _require(text.endswith("\n"), "the last event line is not terminated by \\n")
    _require("\r" not in text, "event lines must not contain carriage returns")
    return assert_event_lines(text[:-1].split("\n"), require_end=require_end)


def _check_sequence(before: dict[str, Any], obj: dict[str, Any], where: str) -> None:
    _require(
        before["state"] not in TERMINAL,
        f"{where}: event after the terminal {before['state']!r} event",
    )
    _require(obj["operation"] == before["operation"], f"{where}: operation changed")
    _require(obj["kind"] == before["kind"], f"{where}: kind changed")
    _require(obj["node"] == before["node"], f"{where}: node changed")
    _require(
        not (obj["state"] == "pending" and before["state"] != "pending"),
        f"{where}: went back to pending from {before['state']!r}",
    )
    if before["percent"] is not None:
        _require(obj["percent"] is not None, f"{where}: percent became null again")
        _require(
            obj["percent"] >= before["percent"],
            f"{where}: percent went down {before['percent']} -> {obj['percent']}",
        )
