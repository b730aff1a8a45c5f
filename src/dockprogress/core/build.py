"""Sans-IO tracker of the classic builder: the engine's ``/build`` messages in, events out.

Feed :meth:`ClassicBuildTracker.feed` the decoded JSON messages of ``POST /build`` (see
``REFERENCE.md`` §8), :meth:`~ClassicBuildTracker.upload` the context bytes sent before the
engine answers, :meth:`~ClassicBuildTracker.tick` now and then (a calibrated bar moves with
time), and :meth:`~ClassicBuildTracker.feed_eof` at the end. Each call returns the task's new
:class:`~dockprogress.events.TaskEvent` or ``None``.

The stream, as the engine 20.10 writes it::

    {"stream": "Step 2/10 : RUN echo base > /base.txt"}   then {"stream": "\\n"} apart
    {"stream": " ---> Running in 99883fcb9d9c\\n"}        a container runs the step
    {"stream": "step 1 for me\\n"}                        the step's own output
    {"stream": " ---> Using cache\\n"}                     the step came from the cache
    {"stream": " ---> d176f8272cc6\\n"}                    the step's image: step done
    {"status": "Downloading", "id": "…", "progressDetail": {…}}   a FROM image being pulled
    {"aux": {"ID": "sha256:…"}}, {"stream": "Successfully built 4c25da93b7b1\\n"}
    {"errorDetail": {"code": 3, "message": "The command … returned a non-zero code: 3"}}

``stream`` texts are joined and cut at newlines (the ``Step`` line and its newline come
apart). ``Step N/M`` counts every instruction of the file; the plan (``steps=``, from
:meth:`~dockprogress.core.dockerfile.Dockerfile.steps` with ``builder="classic"``) counts
only those the target needs, the same first N, so step N is the plan's N-th. Without a plan,
``M`` is the total.

The task (``build:<name>``, operation ``build``, kind ``count``): ``current`` steps done,
``total`` steps planned, ``percent`` and ``eta`` from :class:`~dockprogress.core.steps.
BuildCourse` (steps, byte sub-progress, calibration), ``description`` the current step,
``detail`` the steps, the last output lines, the image id. ``done`` after ``Successfully
built`` at the end of the stream (an ``aux`` ID comes after every stage); an ``errorDetail``
ends it in ``error`` naming the step, its exit status and its last lines, and :attr:`error`
holds the
:class:`~dockprogress.errors.BuildError` for the adapter to raise; a stream that ends without
an image is an ``error`` too.

A step's output lines and a base image's bytes give an event at most every ``min_interval``
seconds (50 ms; ``0`` for every message): they are kept at once and shown by the next event,
which :meth:`~ClassicBuildTracker.tick` sends when nothing else did. Steps starting, ending
or coming from the cache always give their event.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final

from dockprogress.core.calibration import Profile, RunRecord
from dockprogress.core.steps import BuildCourse
from dockprogress.errors import BuildError
from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.task import Clock, Task

__all__ = ["ClassicBuildTracker", "exit_status_of", "printable"]

_STEP: Final = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_IMAGE: Final = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_BUILT: Final = re.compile(r"^Successfully built ([0-9a-f]+)$")
_EXIT: Final = re.compile(r"(?:non-zero code|exit code):? (\d+)")
_ESCAPES: Final = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
#: A stream text buffered this long without a newline is taken as a line (a cap, as
#: every buffer has).
_MAX_PENDING: Final = 64 * 1024


def printable(text: str) -> str:
    """Text from a container, without escape sequences or control characters."""
    return _ESCAPES.sub("", text).rstrip()


def exit_status_of(message: str, code: Any = None) -> int | None:
    """The failing command's exit status, from ``errorDetail.code`` or the message."""
    if type(code) is int and code > 0:
        return code
    match = _EXIT.search(message)
    return int(match.group(1)) if match else None


def failure_text(message: str, step: str | None, exit_code: int | None, lines: list[str]) -> str:
    head = f"step {step} failed" if step else "build failed"
    if exit_code is not None:
        head += f" with exit status {exit_code}"
    text = f"{head}: {message}"
    if lines:
        text += " | last lines: " + " / ".join(lines[-5:])
    return text


class ClassicBuildTracker:
    """One classic build: engine messages in, events out. No I/O."""

    def __init__(
        self,
        name: str,
        *,
        steps: list[str] | None = None,
        profile: Profile | None = None,
        task_id: str | None = None,
        clock: Clock = time.time,
        priority: int = 0,
        extra_detail: Mapping[str, Any] | None = None,
        min_interval: float = 0.05,
    ) -> None:
        self.name = name
        self._clock = clock
        self.min_interval = min_interval
        self._last_emit = float("-inf")
        self._unshown = False  # a line or bytes kept since the last event
        self.course = BuildCourse(list(steps or ()), start=clock(), profile=profile)
        self.planned = steps is not None
        self.extra_detail = dict(extra_detail or {})
        self.image_id: str | None = None
        self.built = False
        self.tags: list[str] = []
        self.error: BuildError | None = None
        self.ignored = 0
        self._pending = ""
        self._step: int | None = None
        self._step_text: str | None = None
        self._layers: dict[str, tuple[float, float]] = {}
        self.task = Task(
            task_id or f"build:{name}",
            Operation.BUILD,
            Kind.COUNT,
            description=f"building {name}",
            total=len(steps) if steps else None,
            priority=priority,
            clock=clock,
        )

    @property
    def ended(self) -> bool:
        return self.task.ended

    # ----------------------------------------------------------------- feeding

    def begin(self) -> TaskEvent | None:
        return self._emit("preparing the build", phase="preparing")

    def upload(self, sent: int, total: int) -> TaskEvent | None:
        """Context bytes sent so far, of ``total`` (before the engine answers)."""
        if self.task.ended:
            return None
        self.course.upload(sent, total)
        return self._emit("sending the build context", phase="uploading")

    def tick(self) -> TaskEvent | None:
        """Time passed without a message: a calibrated bar moves on, and what the last
        messages changed without an event of their own is shown."""
        if self.task.ended or not (self.course.calibrated or self._unshown):
            return None
        return self._emit(None)

    def feed(self, message: Mapping[str, Any]) -> TaskEvent | None:
        if self.task.ended:
            return None
        error = message.get("errorDetail")
        if isinstance(error, Mapping) or "error" in message:
            detail: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
            text = detail.get("message") or message.get("error") or "the build failed"
            return self._failed(str(text), detail.get("code"))
        if "message" in message and len(message) == 1:  # the engine refused before streaming
            return self._failed(str(message["message"]), None)
        stream = message.get("stream")
        if isinstance(stream, str):
            return self._stream(stream)
        aux = message.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            self.image_id = aux["ID"]
            return None
        status = message.get("status")
        if isinstance(status, str):
            return self._pulling(status, message)
        self.ignored += 1
        return None

    def feed_eof(self) -> TaskEvent | None:
        if self.task.ended:
            return None
        if self._pending:
            event = self._line(self._pending)
            self._pending = ""
            if self.task.ended:
                return event
        if not self.built:  # an aux ID alone comes after each stage, not only the last
            return self.fail("the engine closed the build stream before the image was built")
        now = self._clock()
        if self._step is not None:
            self.course.finish_through(self._step, now)
        self.task.total = float(len(self.course.steps))
        self.task.current = float(self.course.done)
        return self.task.finish(description=f"built {self.name}", detail=self._detail())

    def fail(self, message: str) -> TaskEvent | None:
        if self.task.ended:
            return None
        self.error = BuildError(message, step=self._step_text)
        return self.task.fail(message, detail=self._detail())

    def cancel(self, reason: str | None = "cancelled") -> TaskEvent | None:
        return self.task.cancel(reason, detail=self._detail())

    def record(self) -> RunRecord | None:
        """The finished build's calibration record (``None`` unless it ended ``done``)."""
        if self.task.state.value != "done":
            return None
        return self.course.record(self._clock())

    # ------------------------------------------------------------------ stream

    def _stream(self, text: str) -> TaskEvent | None:
        text = self._pending + text
        *lines, self._pending = text.split("\n")
        if len(self._pending) > _MAX_PENDING:
            lines.append(self._pending)
            self._pending = ""
        event = None
        for line in lines:
            new = self._line(line)
            if new is not None:
                event = new
            if self.task.ended:
                break
        return event

    def _line(self, line: str) -> TaskEvent | None:
        # Escapes first: a step's stderr comes as "\x1b[91m…\n\x1b[0m", so the reset code
        # starts the next line (" ---> …" or "Removing intermediate container …").
        line = printable(line)
        now = self._clock()
        course = self.course
        match = _STEP.match(line)
        if match:
            number, count, text = int(match.group(1)), int(match.group(2)), match.group(3)
            if not self.planned and len(course.steps) < count:
                course.ensure(count)
                self.task.total = float(count)
            if self._step is not None:
                course.finish_through(self._step, now)
            self._step, self._step_text = number, f"{number}/{len(course.steps)} {text}"
            self._layers.clear()
            course.begin(number, now, text)
            return self._emit(None)
        if line == " ---> Using cache":
            if self._step is not None:
                course.finish(self._step, now, cached=True)
            return self._emit(None)
        match = _IMAGE.match(line)
        if match and self._step is not None:
            course.finish(self._step, now)
            return self._emit(None)
        if line.startswith(" ---> Running in ") or line.startswith("Removing intermediate"):
            return None
        match = _BUILT.match(line)
        if match:
            self.built = True
            self.image_id = self.image_id or match.group(1)
            return self._emit(None, phase="finishing")
        if line.startswith("Successfully tagged "):
            self.tags.append(line.removeprefix("Successfully tagged "))
            return None
        if line:
            course.line(line)
            return self._emit(None, coalesce=True)
        return None

    def _pulling(self, status: str, message: Mapping[str, Any]) -> TaskEvent | None:
        """A ``FROM`` image pulled inside the build: bytes of the current step."""
        layer = message.get("id")
        if self._step is None or not isinstance(layer, str):
            self.ignored += 1
            return None
        progress = message.get("progressDetail")
        current, total = self._layers.get(layer, (0.0, 0.0))
        if isinstance(progress, Mapping) and status == "Downloading":
            new_total = progress.get("total")
            new_current = progress.get("current")
            if isinstance(new_total, int | float) and new_total > 0:
                total = float(new_total)
            if isinstance(new_current, int | float):
                current = max(current, float(new_current))
        elif status in ("Download complete", "Pull complete", "Already exists"):
            current = total
        self._layers[layer] = (min(current, total), total)
        moved = sum(c for c, _ in self._layers.values())
        whole = sum(t for _, t in self._layers.values())
        if whole > 0:
            self.course.bytes(self._step, moved, whole)
        return self._emit(None, coalesce=True)

    def _failed(self, message: str, code: Any) -> TaskEvent | None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        exit_code = exit_status_of(message, code)
        lines = list(self.course.last_lines)
        self.course.fail(self._step)
        text = failure_text(message, self._step_text, exit_code, lines)
        self.error = BuildError(
            text, step=self._step_text, exit_code=exit_code, last_lines=tuple(lines)
        )
        detail = self._detail()
        detail["exit_code"] = exit_code
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
            if self._step_text is not None:
                description = f"step {self._step_text}"
            else:
                description = self.task.description
        if phase is None:
            phase = "building" if self._step is not None else self.task.phase
        total = float(len(course.steps)) if course.steps else None
        return self.task.update(
            current=float(course.done),
            total=total,
            percent=100.0 * course.fraction(now),
            description=description,
            phase=phase,
            detail=self._detail(),
            eta=course.eta(now),  # from calibration only: a step rate says nothing of time
        )

    def _detail(self) -> dict[str, Any]:
        detail = self.course.detail()
        detail["builder"] = "classic"
        if self.image_id is not None:
            detail["image_id"] = self.image_id
        if self.tags:
            detail["tags"] = list(self.tags)
        detail.update(self.extra_detail)
        return detail
