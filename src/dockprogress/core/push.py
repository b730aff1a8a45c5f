"""Sans-IO push tracker: the engine's push messages in, one task's events out.

Feed :meth:`PushTracker.feed` the decoded messages of ``POST /images/{name}/push`` (see
``REFERENCE.md`` §8), then :meth:`PushTracker.feed_eof`. Each call returns the task's new
:class:`~dockprogress.events.TaskEvent`, or ``None``.

The stream, per layer (keyed by the stream's 12-hex ``id``)::

    Preparing -> Waiting -> Pushing {current, total} ... -> Pushed
    Preparing -> Layer already exists          (the registry has it: nothing to send;
                                               "Already exists" on some engines)
    Preparing -> Mounted from <repo>           (the registry copied it across repositories)

then ``{"status": "<tag>: digest: sha256:… size: N"}`` and ``{"aux": {"Tag", "Digest",
"Size"}}``. A layer's size is first told by its first ``Pushing`` message (``total``: the
bytes the engine counts as it reads the layer, which is what ``current`` counts too).

The task (``push:<image>``, operation ``push``, kind ``download``) reports:

* ``current``: bytes sent, over the layers that have to be sent;
* ``total``: bytes to send, **null until every layer seen is decided** (its size known from
  ``Pushing``, or excluded as existing or mounted). That is as early as the engine allows
  while excluding what the registry has. It never shrinks: a layer once counted stays
  counted (a total that dropped a layer would move the bar backwards). The classic store
  announces every layer (``Preparing``) first, so its total is then fixed; the containerd
  store (engine 26.1) names a layer only with its first ``Pushing``, so a layer named a
  moment later adds its size (all of them come within the first messages). Meanwhile
  ``percent`` is the bytes sent over an estimate that counts each layer of unknown size as
  large as the largest known one (it errs low, so the exact figure only moves it forward);
* a layer whose ``current`` runs past its ``total`` (the tar is a little larger than the
  size the engine announces) counts as its total; ``Pushed`` counts the whole layer;
* ``done`` after the final digest line, at the end of the stream, with ``current == total``;
  an ``errorDetail`` (an authentication refusal, an unreachable registry) ends the task in
  ``error`` with the engine's message and :attr:`PushTracker.error` set for the adapter to
  raise; a stream that ends without a digest is an ``error`` too. Every error is one line
  (the engine's whitespace folded); a refusal for want of credentials or rights (see
  :func:`push_advice`) gets what to do appended: ``docker login <registry>``.

Bytes-only messages give an event at most every ``min_interval`` seconds (their bytes are
counted at once and shown by the next event).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final

from dockprogress.core.manifest import DOCKER_HUB, parse_reference
from dockprogress.errors import PushError, UsageError
from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.task import Clock, Task

__all__ = ["PushLayerState", "PushTracker", "push_advice"]

# How the engines word a registry's 401/403 on push: the classic store ("no basic auth
# credentials", "denied: requested access to the resource is denied"), the containerd store
# ("failed to authorize: ... 401 Unauthorized", "push access denied", "insufficient_scope").
_AUTH_REFUSAL: Final = re.compile(
    r"no basic auth credentials|unauthorized|authentication required|failed to authorize"
    r"|access denied|access to the resource is denied|insufficient_scope|\b40[13]\b",
    re.IGNORECASE,
)


def push_advice(message: str, image: str) -> str:
    """``message`` on one line; for a refusal for want of credentials or rights, what to do.

    The engine's own words come first and are kept whole (scripts match on them); the advice
    names the registry to log in to, from ``image``.
    """
    line = " ".join(message.split())
    if _AUTH_REFUSAL.search(line) is None:
        return line
    try:
        ref = parse_reference(image)
    except UsageError:
        return f"{line} (the registry refused the push: log in with `docker login`, then retry)"
    login = "docker login" if ref.registry == DOCKER_HUB else f"docker login {ref.registry}"
    return (
        f"{line} (the registry {ref.registry} refused the push: log in with `{login}`, "
        f"then push again; if logged in already, that account may not push to {ref.repository})"
    )


class PushLayerState:
    PREPARING: Final = "preparing"
    WAITING: Final = "waiting"
    PUSHING: Final = "pushing"
    PUSHED: Final = "pushed"
    EXISTS: Final = "exists"  # Layer already exists
    MOUNTED: Final = "mounted"  # Mounted from another repository


_EXCLUDED: Final = (PushLayerState.EXISTS, PushLayerState.MOUNTED)


class _Layer:
    __slots__ = ("current", "size", "state")

    def __init__(self) -> None:
        self.state = PushLayerState.PREPARING
        self.current = 0
        self.size: int | None = None


def _number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value) if 0 <= value < 1 << 62 else 0


class PushTracker:
    """One image push: engine messages in (:meth:`feed`), events out. No I/O."""

    def __init__(
        self,
        image: str,
        *,
        task_id: str | None = None,
        clock: Clock = time.time,
        priority: int = 0,
        min_interval: float = 0.05,
    ) -> None:
        self.image = image
        self.min_interval = min_interval
        self._clock = clock
        self._layers: dict[str, _Layer] = {}
        self._total: int | None = None
        self._last_emit = float("-inf")
        self.digest: str | None = None
        self.size: int | None = None
        self.error: PushError | None = None
        self.ignored = 0
        self.task = Task(
            task_id or f"push:{image}",
            Operation.PUSH,
            Kind.DOWNLOAD,
            description=f"pushing {image}",
            priority=priority,
            clock=clock,
        )

    @property
    def ended(self) -> bool:
        return self.task.ended

    def begin(self) -> TaskEvent | None:
        return self._emit("preparing", force=True)

    def feed(self, message: Mapping[str, Any]) -> TaskEvent | None:
        if self.task.ended:
            return None
        error = message.get("errorDetail")
        text = error.get("message") if isinstance(error, Mapping) else None
        text = text or message.get("error")
        if not text and "message" in message and "status" not in message:
            text = message.get("message")  # the engine refused before streaming
        if text:
            return self.fail(str(text))
        status = message.get("status")
        layer_id = message.get("id")
        if isinstance(status, str) and isinstance(layer_id, str):
            return self._layer_message(layer_id, status, message.get("progressDetail"))
        aux = message.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("Digest"), str):
            self.digest = aux["Digest"]
            self.size = _number(aux.get("Size")) or None
            return None
        if isinstance(status, str) and ": digest: " in status:
            self.digest = status.split(": digest: ", 1)[1].split()[0]
            return self._emit(status, force=True)
        if isinstance(status, str) and status.startswith("The push refers to"):
            return self._emit(status, force=True)
        self.ignored += 1
        return None

    def feed_eof(self) -> TaskEvent | None:
        if self.task.ended:
            return None
        if self.digest is None:
            return self.fail("the engine closed the push stream before the registry had the image")
        self._decide_total(final=True)
        return self.task.finish(description=f"pushed {self.digest}", detail=self._detail())

    def fail(self, message: str) -> TaskEvent | None:
        if self.task.ended:
            return None
        message = push_advice(message, self.image)
        self.error = PushError(message, image=self.image)
        return self.task.fail(message, detail=self._detail())

    def cancel(self, reason: str | None = "cancelled") -> TaskEvent | None:
        return self.task.cancel(reason, detail=self._detail())

    # ----------------------------------------------------------------- layers

    def _layer_message(self, layer_id: str, status: str, progress: Any) -> TaskEvent | None:
        layer = self._layers.get(layer_id)
        if layer is None:
            layer = self._layers[layer_id] = _Layer()
        if layer.state in _EXCLUDED or layer.state == PushLayerState.PUSHED:
            return None
        if status == "Pushing":
            current = total = 0
            if isinstance(progress, Mapping):
                current, total = _number(progress.get("current")), _number(progress.get("total"))
            changed = layer.state != PushLayerState.PUSHING
            layer.state = PushLayerState.PUSHING
            if layer.size is None and total > 0:
                layer.size = total
                changed = True
            if layer.size is not None:
                layer.current = max(layer.current, min(current, layer.size))
            self._decide_total()
            return self._emit(None, force=changed)
        if status == "Pushed":
            layer.state = PushLayerState.PUSHED
            if layer.size is None:
                layer.size = layer.current
            layer.current = layer.size
        elif status in ("Layer already exists", "Already exists") or status.startswith("Mounted"):
            if self._total is not None and layer.size is not None:
                # Counted in a fixed total already: it is done, not excluded.
                layer.state, layer.current = PushLayerState.PUSHED, layer.size
            else:
                layer.state = (
                    PushLayerState.EXISTS if status.startswith("Layer") else PushLayerState.MOUNTED
                )
        elif status == "Waiting":
            layer.state = PushLayerState.WAITING
        elif status == "Preparing":
            pass
        else:
            self.ignored += 1
            return None
        self._decide_total()
        return self._emit(None, force=True)

    def _decide_total(self, *, final: bool = False) -> None:
        """Once every layer seen is decided, the total is the sizes of those to send; a layer
        the engine names later (the containerd store names each with its first ``Pushing``)
        adds its size. Nothing counted is ever taken out, so the total never shrinks."""
        sizes = []
        for layer in self._layers.values():
            if layer.state in _EXCLUDED:
                continue
            if layer.size is None and not final:
                if self._total is None:
                    return
                continue  # decided later: added then
            sizes.append(layer.size or 0)
        if self._layers or final:
            self._total = max(sum(sizes), self._total or 0)

    # ----------------------------------------------------------------- emitting

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for layer in self._layers.values():
            counts[layer.state] = counts.get(layer.state, 0) + 1
        return counts

    def _percent(self, current: int) -> float:
        if self._total is not None:
            return 100.0 * current / self._total if self._total else 0.0
        # Before every size is known, a layer of unknown size counts as large as the largest
        # known one: an estimate that errs low, so the exact figure does not have to wait.
        sizes = [
            layer.size
            for layer in self._layers.values()
            if layer.state not in _EXCLUDED and layer.size is not None
        ]
        unknown = sum(
            1
            for layer in self._layers.values()
            if layer.state not in _EXCLUDED and layer.size is None
        )
        estimate = sum(sizes) + unknown * max(sizes, default=0)
        return 100.0 * current / estimate if estimate else 0.0

    def _emit(self, description: str | None, *, force: bool = False) -> TaskEvent | None:
        now = self._clock()
        if not force and now - self._last_emit < self.min_interval:
            return None
        self._last_emit = now
        current = sum(
            layer.current for layer in self._layers.values() if layer.state not in _EXCLUDED
        )
        if description is None:
            counts = self._counts()
            to_send = len(self._layers) - sum(counts.get(s, 0) for s in _EXCLUDED)
            pushed = counts.get(PushLayerState.PUSHED, 0)
            description = f"pushing {to_send - pushed} of {to_send} layers"
            excluded = sum(counts.get(s, 0) for s in _EXCLUDED)
            if excluded:
                description += f" ({excluded} already in the registry)"
        return self.task.update(
            current=float(current),
            total=None if self._total is None else float(self._total),
            percent=self._percent(current),
            description=description,
            phase="pushing" if self._layers else "preparing",
            detail=self._detail(),
        )

    def _detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "image": self.image,
            "layers": {
                short: {"state": layer.state, "current": layer.current, "total": layer.size}
                for short, layer in self._layers.items()
            },
            "counts": self._counts(),
            "exact_total": self._total is not None,
        }
        if self.digest is not None:
            detail["digest"] = self.digest
        return detail
