"""Sans-IO tracker of BuildKit builds: ``docker buildx build --progress rawjson`` in, events out.

buildx 0.13 writes its rawjson progress (on standard error) as **indented** JSON
``SolveStatus`` objects one after another, not one per line (``REFERENCE.md`` §8).
:class:`RawJsonDecoder` takes bytes in any chunks and returns each complete object: text is
decoded incrementally, each object is read with ``JSONDecoder.raw_decode`` once its closing
brace has arrived; a lone non-JSON line (a buildx warning) is skipped and counted; the
pending text has a cap.

:class:`BuildKitTracker` follows the objects:

* ``vertexes``: each has a ``digest`` and a ``name``; the build's steps are the vertexes
  named ``[stage i/n] INSTRUCTION`` (or ``[i/n]`` for a file with one unnamed stage).
  BuildKit lists all of them before it runs any, so the total is known from then on; before,
  the plan from the Dockerfile (``steps=``, only the stages the target needs) stands in.
  Steps are ordered by stage (the file's order, ``stage_order=``), then ``i``, plus one last
  step for ``exporting to image``. A vertex with ``started`` is running, with ``completed``
  done (``cached``: counted at once), with ``error`` failed.
* ``statuses`` with a ``total`` (a base image's layers, the context transfer) give the byte
  sub-progress of their vertex.
* ``logs`` (base64 ``data``) are the step's output: its last lines are kept.

The task (``build:<name>``, operation ``build``, kind ``count``) is shaped like the classic
tracker's (:mod:`dockprogress.core.build`): steps done of steps, percent and ETA from
:class:`~dockprogress.core.steps.BuildCourse`. :meth:`BuildKitTracker.feed_eof` takes the
exit status of buildx: 0 ends ``done``; otherwise ``error`` naming the failed step, its exit
status (from BuildKit's ``exit code: N``) and its last lines, or buildx's own last words
(``errors=``) when no step failed.

Objects that only bring bytes or output lines give an event at most every ``min_interval``
seconds (50 ms; ``0`` for every object): what they change is kept at once and shown by the
next event, which :meth:`BuildKitTracker.tick` sends when nothing else did. A step starting,
ending or failing always gives its event.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from dockprogress.core.build import exit_status_of, failure_text, printable
from dockprogress.core.calibration import Profile, RunRecord
from dockprogress.core.steps import BuildCourse
from dockprogress.errors import BuildError, StreamError
from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.task import Clock, Task

__all__ = ["BuildKitTracker", "RawJsonDecoder"]

_STEP_NAME: Final = re.compile(r"^\[(?:(\S+) )?(\d+)/(\d+)\] (.*)$")
_EXPORT: Final = "exporting to image"
DEFAULT_MAX_PENDING: Final = 8 << 20


class RawJsonDecoder:
    """Bytes of concatenated (indented) JSON objects in, one ``dict`` per object out."""

    def __init__(self, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        self._text = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._json = json.JSONDecoder()
        self.max_pending = max_pending
        self.objects = 0
        self.junk: list[str] = []

    def decode(self, data: bytes) -> list[dict[str, Any]]:
        self._text += self._decoder.decode(data)
        return self._drain(final=False)

    def flush(self) -> list[dict[str, Any]]:
        self._text += self._decoder.decode(b"", final=True)
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        text = self._text
        index = 0
        while True:
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                break
            if text[index] != "{":  # not an object: a line of text; skip it whole
                end = text.find("\n", index)
                if end < 0 and not final:
                    break
                end = len(text) if end < 0 else end
                self.junk.append(text[index:end][:200])
                index = end
                continue
            try:
                value, end = self._json.raw_decode(text, index)
            except json.JSONDecodeError:
                if final:
                    self.junk.append(text[index : index + 200])
                    index = len(text)
                break  # need more data
            index = end
            if isinstance(value, dict):
                self.objects += 1
                out.append(value)
        self._text = text[index:]
        if len(self._text) > self.max_pending:
            self._text = ""
            raise StreamError(f"rawjson progress object over {self.max_pending} characters")
        return out


class _Vertex:
    __slots__ = ("error", "key", "name", "number")

    def __init__(self, name: str, key: tuple[int, int] | None) -> None:
        self.name = name
        self.key = key
        self.number: int | None = None
        self.error: str | None = None


class BuildKitTracker:
    """One BuildKit build: SolveStatus objects in, events out. No I/O."""

    def __init__(
        self,
        name: str,
        *,
        steps: Sequence[str] | None = None,
        stage_order: Mapping[str, int] | None = None,
        profile: Profile | None = None,
        task_id: str | None = None,
        clock: Clock = time.time,
        priority: int = 0,
        min_interval: float = 0.05,
    ) -> None:
        self.name = name
        self._clock = clock
        self.min_interval = min_interval
        self._last_emit = float("-inf")
        self._unshown = False  # bytes or lines kept since the last event
        planned = [*(steps or ()), _EXPORT]
        self.course = BuildCourse(planned, start=clock(), profile=profile, upload_share=0.0)
        self._stage_order = {k.lower(): v for k, v in (stage_order or {}).items()}
        self._vertexes: dict[str, _Vertex] = {}
        self._numbered = False
        self._logs: dict[str, str] = {}
        self._parts: dict[int, dict[str, tuple[float, float]]] = {}
        self.failed: _Vertex | None = None
        self.error: BuildError | None = None
        self.task = Task(
            task_id or f"build:{name}",
            Operation.BUILD,
            Kind.COUNT,
            description=f"building {name}",
            total=float(len(planned)),
            priority=priority,
            clock=clock,
        )

    @property
    def ended(self) -> bool:
        return self.task.ended

    def begin(self) -> TaskEvent | None:
        return self._emit("starting BuildKit", phase="preparing")

    def tick(self) -> TaskEvent | None:
        """Time passed without an object: a calibrated bar moves on, and what the last
        objects changed without an event of their own is shown."""
        if self.task.ended or not (self.course.calibrated or self._unshown):
            return None
        return self._emit(None)

    def feed(self, status: Mapping[str, Any]) -> TaskEvent | None:
        if self.task.ended:
            return None
        now = self._clock()
        stepped = False
        for vertex in status.get("vertexes") or ():
            if isinstance(vertex, Mapping):
                stepped |= self._vertex(vertex, now)
        changed = False
        for item in status.get("statuses") or ():
            if isinstance(item, Mapping):
                changed |= self._status(item)
        for log in status.get("logs") or ():
            if isinstance(log, Mapping):
                changed |= self._log(log)
        if stepped:
            return self._emit(None)
        return self._emit(None, coalesce=True) if changed else None

    def feed_eof(self, exit_code: int = 0, errors: Sequence[str] = ()) -> TaskEvent | None:
        if self.task.ended:
            return None
        if exit_code != 0 or self.failed is not None:
            return self._failed(exit_code, errors)
        now = self._clock()
        self.course.finish_through(len(self.course.steps), now)
        self.task.total = float(len(self.course.steps))
        self.task.current = float(self.course.done)
        return self.task.finish(description=f"built {self.name}", detail=self._detail())

    def fail(self, message: str) -> TaskEvent | None:
        if self.task.ended:
            return None
        self.error = BuildError(message)
        return self.task.fail(message, detail=self._detail())

    def cancel(self, reason: str | None = "cancelled") -> TaskEvent | None:
        return self.task.cancel(reason, detail=self._detail())

    def record(self) -> RunRecord | None:
        if self.task.state.value != "done":
            return None
        return self.course.record(self._clock())

    # ----------------------------------------------------------------- objects

    def _key(self, name: str) -> tuple[int, int] | None:
        if name == _EXPORT:
            return (1 << 30, 0)
        match = _STEP_NAME.match(name)
        if not match:
            return None
        stage = (match.group(1) or "").lower()
        order = self._stage_order.get(stage)
        if order is None:
            digits = stage.removeprefix("stage-")
            order = int(digits) if digits.isdigit() else (1 << 29)
        return (order, int(match.group(2)))

    def _number(self) -> None:
        """A new step vertex: give every one its place, in stage then step order, with the
        export last (a placeholder until BuildKit names it). Steps keep their states."""
        keyed = sorted(
            (v for v in self._vertexes.values() if v.key is not None),
            key=lambda v: v.key or (0, 0),
        )
        course = self.course
        placeholder = course.steps[-1]  # the export step is always last
        old = {v.number: course.steps[v.number - 1] for v in keyed if v.number is not None}
        course.steps = []
        for number, vertex in enumerate(keyed, start=1):
            step = old.get(vertex.number) if vertex.number is not None else None
            if step is None and vertex.name == _EXPORT:
                step = placeholder
            course.ensure(number)
            if step is not None:
                course.steps[number - 1] = step
            course.steps[number - 1].text = vertex.name
            vertex.number = number
        if not keyed or keyed[-1].name != _EXPORT:
            course.steps.append(placeholder)
        self._parts = {}
        self._numbered = True

    def _vertex(self, data: Mapping[str, Any], now: float) -> bool:
        digest, name = data.get("digest"), data.get("name")
        if not isinstance(digest, str) or not isinstance(name, str):
            return False
        vertex = self._vertexes.get(digest)
        if vertex is None:
            vertex = self._vertexes[digest] = _Vertex(name, self._key(name))
        if vertex.key is None:
            if data.get("error") and self.failed is None:  # e.g. the Dockerfile not readable
                vertex.error = str(data["error"])
                self.failed = vertex
            return False
        if not self._numbered or vertex.number is None:
            self._number()
        number = vertex.number
        assert number is not None
        if data.get("started"):
            self.course.begin(number, now)
        if data.get("error"):
            vertex.error = str(data["error"])
            self.failed = vertex
            self.course.fail(number)
        elif data.get("completed"):
            self.course.finish(number, now, cached=bool(data.get("cached")))
        elif data.get("cached"):
            self.course.finish(number, now, cached=True)
        return True

    def _status(self, data: Mapping[str, Any]) -> bool:
        vertex = self._vertexes.get(str(data.get("vertex")))
        total, current = data.get("total"), data.get("current")
        if vertex is None or vertex.number is None or not isinstance(total, int | float):
            return False
        if total <= 0 or not isinstance(current, int | float):
            return False
        key = str(data.get("id"))
        parts = self._parts.setdefault(vertex.number, {})
        parts[key] = (min(float(current), float(total)), float(total))
        moved = sum(c for c, _ in parts.values())
        whole = sum(t for _, t in parts.values())
        self.course.bytes(vertex.number, moved, whole)
        return True

    def _log(self, data: Mapping[str, Any]) -> bool:
        vertex = str(data.get("vertex"))
        try:
            text = base64.b64decode(str(data.get("data") or ""), validate=False)
        except ValueError:
            return False
        pending = self._logs.get(vertex, "") + text.decode("utf-8", "replace")
        *lines, rest = pending.split("\n")
        self._logs[vertex] = rest[-4096:]
        added = False
        for line in lines:
            clean = printable(line)
            if clean:
                self.course.line(clean)
                added = True
        return added

    def _failed(self, exit_code: int, errors: Sequence[str]) -> TaskEvent | None:
        vertex = self.failed
        lines = list(self.course.last_lines)
        if vertex is not None:
            message = vertex.error or "failed"
            step = vertex.name
            status = exit_status_of(message)
        else:
            words = [printable(e) for e in errors if printable(e)]
            message = words[-1] if words else f"buildx exited with status {exit_code}"
            step, status = None, None
        text = failure_text(message, step, status, lines)
        self.error = BuildError(text, step=step, exit_code=status, last_lines=tuple(lines))
        detail = self._detail()
        detail["exit_code"] = status
        return self.task.fail(text, detail=detail)

    # ----------------------------------------------------------------- emitting

    def _emit(
        self, description: str | None, *, phase: str | None = None, coalesce: bool = False
    ) -> TaskEvent | None:
        now = self._clock()
        if coalesce and now - self._last_emit < self.min_interval:
            self._unshown = True
            return None
        self._last_emit, self._unshown = now, False
        course = self.course
        if description is None:
            running = [s.text for s in course.steps if s.state == "running" and s.text] or [
                self.task.description
            ]
            description = running[-1]
        return self.task.update(
            current=float(course.done),
            total=float(len(course.steps)),
            percent=100.0 * course.fraction(now),
            description=description,
            phase=phase or "building",
            detail=self._detail(),
            eta=course.eta(now),  # from calibration only: a step rate says nothing of time
        )

    def _detail(self) -> dict[str, Any]:
        detail = self.course.detail()
        detail["builder"] = "buildkit"
        return detail
