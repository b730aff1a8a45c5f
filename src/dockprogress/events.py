"""The one event model every tracker speaks and every display reads.

A :class:`TaskEvent` is an immutable snapshot of one task at one moment. Its fields are the
event-line contract of ``INTERFACE.md`` (``--progress json``), plus ``priority`` for ordering
(lower number = more important = shown first, in every display).

``node`` names the machine that made the event (the fleet's dashboards keep one task list per
node, so two hosts' ``pull:app`` never overwrite each other). An event made without one
(``None``) is written with :func:`default_node`: ``DOCKPROGRESS_NODE``, else the host name.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = ["EMPTY_DETAIL", "Kind", "Operation", "State", "TaskEvent", "default_node"]

EMPTY_DETAIL: Mapping[str, Any] = MappingProxyType({})


class Operation(StrEnum):
    """What kind of Docker (or local) operation a task follows."""

    PULL = "pull"
    LOGS = "logs"
    EXEC = "exec"
    RUN = "run"
    BUILD = "build"
    PUSH = "push"


class Kind(StrEnum):
    """The unit of ``current``/``total``: bytes (``download``) or items/percent points."""

    DOWNLOAD = "download"
    COUNT = "count"


class State(StrEnum):
    """Life cycle of a task. The last three are terminal: a task has exactly one of them."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({State.DONE, State.ERROR, State.CANCELLED})


@functools.cache
def default_node() -> str:
    """This machine's node name: ``DOCKPROGRESS_NODE``, else the host name (read once)."""
    return os.environ.get("DOCKPROGRESS_NODE") or socket.gethostname() or "localhost"


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One task's state at time ``ts`` (Unix seconds).

    ``percent`` covers every phase of the task and never decreases; it is 100 only when
    ``state`` is ``done``. ``current <= total`` whenever ``total`` is known.
    """

    ts: float
    task: str
    operation: Operation
    kind: Kind
    state: State
    current: float
    total: float | None
    percent: float | None
    description: str = ""
    phase: str | None = None
    speed: float | None = None
    eta: float | None = None
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=lambda: EMPTY_DETAIL)
    priority: int = 0
    node: str | None = None

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def to_dict(self, *, node: str | None = None) -> dict[str, Any]:
        """The event as the JSON-ready mapping of the event-line contract.

        ``node``, when given, is written instead of the event's own (a bus publisher stamps
        its events with its node this way, without copying them).
        """
        if node is None:
            node = self.node if self.node is not None else default_node()
        return {
            "ts": round(self.ts, 6),
            "task": self.task,
            "operation": self.operation.value,
            "kind": self.kind.value,
            "state": self.state.value,
            "current": _number(self.current),
            "total": None if self.total is None else _number(self.total),
            "percent": None if self.percent is None else round(self.percent, 3),
            "description": self.description,
            "phase": self.phase,
            "speed": None if self.speed is None else round(self.speed, 3),
            "eta": None if self.eta is None else round(self.eta, 3),
            "error": self.error,
            "detail": dict(self.detail),
            "priority": self.priority,
            "node": node,
        }

    def to_json(self, *, node: str | None = None) -> str:
        """One event line, without the trailing newline (``node`` as for :meth:`to_dict`)."""
        return _ENCODE(self.to_dict(node=node))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskEvent:
        """Rebuild an event from :meth:`to_dict` output (e.g. published by another process).

        Raises ``ValueError`` (or ``KeyError``/``TypeError``) on a mapping that is not an event.
        """
        total = data.get("total")
        percent = data.get("percent")
        speed = data.get("speed")
        eta = data.get("eta")
        detail = data.get("detail") or EMPTY_DETAIL
        if type(detail) is not dict and not isinstance(detail, Mapping):
            raise ValueError("detail must be an object")
        # Dict lookups (a TypeError for an unhashable value): calling an enum class costs more.
        operation = _OPERATIONS.get(data["operation"])
        kind = _KINDS.get(data["kind"])
        state = _STATES.get(data["state"])
        if operation is None or kind is None or state is None:
            raise ValueError(
                f"not an event: operation {data['operation']!r}, kind {data['kind']!r}, "
                f"state {data['state']!r}"
            )
        return cls(  # positionally, in field order: keywords cost a third more
            float(data["ts"]),
            str(data["task"]),
            operation,
            kind,
            state,
            float(data["current"]),
            None if total is None else float(total),
            None if percent is None else float(percent),
            str(data.get("description") or ""),
            None if data.get("phase") is None else str(data["phase"]),
            None if speed is None else float(speed),
            None if eta is None else float(eta),
            None if data.get("error") is None else str(data["error"]),
            EMPTY_DETAIL if detail is EMPTY_DETAIL else MappingProxyType(dict(detail)),
            int(data.get("priority") or 0),
            None if data.get("node") is None else str(data["node"]),
        )


# The enums by value, for from_dict.
_OPERATIONS: dict[Any, Operation] = {member.value: member for member in Operation}
_KINDS: dict[Any, Kind] = {member.value: member for member in Kind}
_STATES: dict[Any, State] = {member.value: member for member in State}


# One encoder for every event line (json.dumps would build a new one per call).
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _number(value: float) -> float | int:
    """Integers stay integers on the wire (byte counts read better as 1048576 than 1048576.0)."""
    as_int = int(value)
    return as_int if as_int == value else value
