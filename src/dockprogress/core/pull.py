"""Sans-IO pull tracker: the engine's pull messages in, one task's events out.

Feed :meth:`PullTracker.feed` the decoded messages of ``POST /images/create`` (dicts with
``status``, ``id``, ``progressDetail``, ``errorDetail``, see ``REFERENCE.md`` §1), then
:meth:`PullTracker.feed_eof` when the stream ends. Each call returns the task's new
:class:`~dockprogress.events.TaskEvent`, or ``None`` when the message changed nothing (a
message that is not a pull message at all is ignored and counted in :attr:`ignored`).

The task (id ``pull:<image>``, operation ``pull``, kind ``download``) reports:

* ``current``: compressed bytes downloaded, over the layers that have to be downloaded;
* ``total``: compressed bytes to download. With the manifest's layer sizes
  (``layer_sizes=``, see :mod:`dockprogress.core.manifest`) it is exact from the first event:
  the manifest's sum, less each layer the stream reports ``Already exists``/``Exists`` (the
  engine says so before any byte moves), less, at the final ``Status:`` line, layers the
  stream never named (an image that is up to date downloads nothing). Without the manifest
  the total is the sum of the sizes the stream has shown so far, and
  ``detail["exact_total"]`` is ``False``;
* ``percent``: download and extraction weighed together::

      percent = 100 * (downloaded + w * extracted) / ((1 + w) * total),   w = 0.25

  so downloading is 80 % of the bar and extraction 20 %. Extraction is counted because a
  pull is not usable until its layers are unpacked, and forgetting it leaves a bar at 100 %
  for seconds; it weighs less because unpacking a compressed layer on a local disk is several
  times faster than fetching it (most of all through a throttled link), yet not free.
  Without exact sizes each layer has an equal share of the bar instead (its own download
  fraction and extraction fraction weighed the same way): layers the engine has announced but
  whose size is still unknown hold their share in reserve, so a size arriving late cannot
  pull the bar back. ``percent`` never decreases (the :class:`~dockprogress.task.Task`
  holds it) and reaches 100 only on ``done``: at the end of the stream, after the final
  ``Status:`` line, with no error;
* ``detail``: ``layers`` (short id → state, current, total), ``counts`` per state,
  ``exact_total``, ``downloaded``, ``extracted``, ``extract_weight``, ``retries``,
  ``digest``/``status`` once the engine says them, and the caller's ``extra_detail``.
  It is rebuilt when a layer changes state and otherwise at most every
  ``detail_interval`` seconds. A message that only moves bytes (no layer changes state)
  gives an event at most every ``min_interval`` seconds (50 ms; ``0`` for every message):
  its bytes are counted at once and shown by the next event, so the hot path costs a few
  additions, and displays still get 20 updates a second.

Per layer (keyed by the 12-hex short digest, the stream's ``id``), downloaded bytes never go
down: a download resumed after ``Retrying in N seconds`` starts again at 0 of
``size - offset``, so the layer counts ``max(before, offset + current)`` with
``offset = size - new_total``. Messages for an id never announced add a layer (the total
grows and is flagged not exact; percent holds).

**The containerd image store** (Docker 26 and later with it; the default from 29) tells less:
it never says ``Already exists`` (a layer it has is simply not named), Docker 26 sends no
``Extracting`` at all (``Download complete`` carries ``hidecounts``, and the layers unpack
silently before ``Digest:``), and Docker 28–29 send ``Extracting`` as seconds spent
(``units: "s"``, no total). So, with ``containerd_store=True`` (the adapter asks the engine)
or once the stream shows either sign:

* at the first byte, manifest layers the stream has not named are the ones the engine has:
  they leave the total before the first ``Downloading`` byte is counted, as ``Already
  exists`` does on the classic store (one named later comes back, the total flagged inexact);
* extraction is estimated from a learned unpack rate (:mod:`dockprogress.core.unpack`), so
  the bar keeps moving through the silent phase, with an ETA, never past what the engine
  confirms; :meth:`PullTracker.tick` moves it while the engine says nothing, ``detail
  ["extraction"]`` says it is estimated, and :attr:`PullTracker.unpack_sample` gives the
  bytes and seconds observed, for the adapter to learn the rate from.

An ``errorDetail`` (or ``error``, or the engine's refusal body ``{"message": …}``) message
ends the task in state ``error`` with the engine's message; :attr:`PullTracker.error` then
holds a :class:`~dockprogress.errors.PullError` for the adapter to raise. A stream that
ends without its final ``Status:`` line also ends in ``error``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any, Final

from dockprogress.core.unpack import DEFAULT_UNPACK_RATE, estimated_fraction, rate_from_finish
from dockprogress.errors import PullError
from dockprogress.events import Kind, Operation, State, TaskEvent
from dockprogress.task import Clock, Task

__all__ = ["EXTRACT_WEIGHT", "LayerState", "PullTracker"]

_RUNNING: Final = State.RUNNING

#: Weight of extraction against download, per byte of compressed layer (see module doc).
EXTRACT_WEIGHT: Final = 0.25


class LayerState:
    """Machine words for a layer's state (``detail["layers"][id]["state"]``)."""

    PENDING: Final = "pending"  # Pulling fs layer
    WAITING: Final = "waiting"  # queued behind the engine's 3 concurrent downloads
    DOWNLOADING: Final = "downloading"
    RETRYING: Final = "retrying"
    VERIFYING: Final = "verifying"
    DOWNLOADED: Final = "downloaded"
    EXTRACTING: Final = "extracting"
    COMPLETE: Final = "complete"
    PRESENT: Final = "present"  # Already exists / Exists: not downloaded by this pull


_BUSY_DOWNLOADING: Final = (
    LayerState.PENDING,
    LayerState.WAITING,
    LayerState.DOWNLOADING,
    LayerState.VERIFYING,
)

# Statuses that come only once bytes move (the containerd store's first-byte rule).
_BYTE_STATUSES: Final = frozenset(
    {"Downloading", "Download complete", "Verifying Checksum", "Extracting", "Pull complete"}
)

# The engine's status words for layers, mapped to our states (those needing numbers are
# handled apart). Anything else with an ``id`` is an unknown layer status and is ignored.
_SIMPLE_STATUS: Final = {
    "Pulling fs layer": LayerState.PENDING,
    "Waiting": LayerState.WAITING,
    "Verifying Checksum": LayerState.VERIFYING,
    "Download complete": LayerState.DOWNLOADED,
    "Pull complete": LayerState.COMPLETE,
    "Already exists": LayerState.PRESENT,
    "Exists": LayerState.PRESENT,
}


def _count(value: Any) -> int:
    """A byte count from the stream; anything but a finite non-negative number counts as 0."""
    if type(value) is int and 0 <= value < _FLOAT_RANGE:  # the usual case, as below
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(value)


# Ints from here up overflow math.isfinite (below): they take the general path.
_FLOAT_RANGE: Final = 1 << 1000


class _Layer:
    __slots__ = (
        "done_at",
        "downloaded",
        "estimate",
        "extract_seconds",
        "extract_seen",
        "extracted",
        "named",
        "share",
        "size",
        "state",
    )

    def __init__(self, size: int | None, *, named: bool = True) -> None:
        self.size = size
        self.named = named  # the stream has mentioned it (manifest layers start unnamed)
        self.extract_seen = 0.0  # when extract_seconds was reported (seconds mode)
        self.estimate = 0.0  # highest estimated extracted bytes shown (containerd store)
        self.done_at: float | None = None  # when its download completed
        self.state = LayerState.PENDING
        self.downloaded = 0  # monotonic, bytes of the whole blob
        self.extracted = 0  # monotonic, compressed bytes read by extraction
        self.extract_seconds: float | None = None
        self.share = 0.0  # this layer's fraction of its own work, 0..1 (non-exact percent)


class PullTracker:
    """One image pull: engine messages in (:meth:`feed`), events out. No I/O."""

    __slots__ = (
        "_byte_seen",
        "_clock",
        "_containerd",
        "_counts",
        "_dirty",
        "_downloaded",
        "_exact",
        "_extracted",
        "_has_manifest",
        "_last_detail",
        "_last_emit",
        "_layers",
        "_manifest_sizes",
        "_sample",
        "_seconds_mode",
        "_share_sum",
        "_total",
        "_unpack_rate",
        "detail_interval",
        "digest",
        "error",
        "extra_detail",
        "extract_weight",
        "ignored",
        "image",
        "min_interval",
        "retries",
        "status",
        "task",
    )

    def __init__(
        self,
        image: str,
        *,
        layer_sizes: Mapping[str, int] | None = None,
        task_id: str | None = None,
        clock: Clock = time.time,
        priority: int = 0,
        extract_weight: float = EXTRACT_WEIGHT,
        detail_interval: float = 0.5,
        min_interval: float = 0.05,
        extra_detail: Mapping[str, Any] | None = None,
        containerd_store: bool = False,
        unpack_rate: float | None = None,
    ) -> None:
        self.image = image
        self._containerd = containerd_store
        self._unpack_rate = unpack_rate if unpack_rate and unpack_rate > 0 else DEFAULT_UNPACK_RATE
        self._byte_seen = False
        self._seconds_mode = False  # the engine tells extraction seconds (Docker 28-29)
        self._sample = [0.0, 0.0]  # bytes and seconds of unpacking observed (estimated mode)
        self.extra_detail = dict(extra_detail or {})
        self.extract_weight = extract_weight
        self.detail_interval = detail_interval
        self.min_interval = min_interval
        self._manifest_sizes: dict[str, int] = dict(layer_sizes or {})
        self._has_manifest = self._exact = layer_sizes is not None
        self._clock = clock
        self._layers: dict[str, _Layer] = {}
        self._counts: dict[str, int] = {}
        self._downloaded = 0
        self._extracted = 0
        self._total = sum(self._manifest_sizes.values())
        self._share_sum = 0.0
        self._dirty = True
        self._last_detail = float("-inf")
        self._last_emit = float("-inf")
        self.digest: str | None = None
        self.status: str | None = None
        self.error: PullError | None = None
        self.retries = 0
        self.ignored = 0
        self.task = Task(
            task_id or f"pull:{image}",
            Operation.PULL,
            Kind.DOWNLOAD,
            description=f"pulling {image}",
            total=self._total if self._exact else None,
            priority=priority,
            clock=clock,
        )
        for short in self._manifest_sizes:
            self._add_layer(short, announced=False)

    # ------------------------------------------------------------------ reading

    @property
    def exact_total(self) -> bool:
        """``True`` while the total comes from the manifest and no unknown layer appeared."""
        return self._exact

    @property
    def ended(self) -> bool:
        return self.task.ended

    @property
    def extraction_estimated(self) -> bool:
        """``True`` on the containerd store: extraction bytes are estimated, not told."""
        return self._containerd

    @property
    def unpack_sample(self) -> tuple[float, float] | None:
        """Compressed bytes unpacked and the seconds it took, as observed during this pull
        (containerd store only; ``None`` when nothing was measured)."""
        nbytes, seconds = self._sample
        return (nbytes, seconds) if nbytes > 0 and seconds > 0 else None

    @property
    def unpack_rate(self) -> float:
        """The rate (compressed bytes/s) the extraction estimate uses."""
        return self._unpack_rate

    # ----------------------------------------------------------------- feeding

    def begin(self) -> TaskEvent | None:
        """The first ``running`` event, before the engine is asked: carries the total."""
        return self._emit("resolving", phase="resolving", force_detail=True)

    def feed(self, message: Mapping[str, Any]) -> TaskEvent | None:
        """One engine message; the new event, or ``None`` (nothing changed, or bytes only,
        coalesced into the next event within ``min_interval``)."""
        state = self.task.state
        if state is not _RUNNING and state.terminal:  # (task.ended, without the property)
            return None
        if "errorDetail" in message or "error" in message or "message" in message:
            return self._feed_other(message, None)
        status = message.get("status")
        layer_id = message.get("id")
        if not isinstance(status, str) or not isinstance(layer_id, str):
            return self._feed_other(message, status)
        layer = self._layers.get(layer_id)
        if layer is not None and not layer.named:
            if layer.state is LayerState.PRESENT:  # named after the first byte after all
                self._unmake_present(layer)
            layer.named = True
        if not self._byte_seen and status in _BYTE_STATUSES:
            self._first_byte(status, message.get("progressDetail"))
        elif status == "Download complete" and not self._containerd:
            progress = message.get("progressDetail")
            if isinstance(progress, dict) and progress.get("hidecounts"):
                self._on_containerd()
        if status == "Downloading":
            return self._downloading(layer_id, layer, message.get("progressDetail"))
        if status == "Extracting":
            return self._extracting(layer_id, layer, message.get("progressDetail"))
        new_state = _SIMPLE_STATUS.get(status)
        if new_state is None:
            if status.startswith("Retrying in"):
                layer = layer or self._add_layer(layer_id)
                if layer.state is LayerState.PRESENT:
                    return None
                self.retries += 1
                self._set_state(layer, LayerState.RETRYING)
                return self._emit(f"layer {layer_id}: {status.lower()}")
            if status.startswith("Pulling from"):
                return self._emit(status.lower())
            self.ignored += 1
            return None
        layer = layer or self._add_layer(layer_id)
        if layer.state == new_state or layer.state is LayerState.PRESENT:
            return None
        if new_state is LayerState.PRESENT:
            self._make_present(layer)
        else:
            if new_state is LayerState.VERIFYING or new_state is LayerState.DOWNLOADED:
                self._download_done(layer)
            elif new_state is LayerState.COMPLETE:
                self._download_done(layer)
                if layer.extract_seconds is not None:  # seconds mode: a measured layer
                    self._sample[0] += layer.size or 0
                    self._sample[1] += layer.extract_seconds + self._clock() - layer.extract_seen
                self._set_extracted(layer, layer.size, complete=True)
            self._set_state(layer, new_state)
        return self._emit(None)

    def tick(self) -> TaskEvent | None:
        """Call while the engine is silent (a few times a second): moves the estimated
        extraction of the containerd store along. ``None`` when there is nothing to move."""
        if self.task.ended or not self._containerd or not self._estimating():
            return None
        return self._emit(None)

    def feed_eof(self) -> TaskEvent | None:
        """End of stream: ``done`` after a final ``Status:`` line, else ``error``."""
        if self.task.ended:
            return None
        if self.status is None:
            return self.fail("the engine closed the pull stream before reporting its end")
        if self.task.total is None:  # nothing to download, no manifest: 0 bytes of 0
            self.task.total = float(self._total)
        return self.task.finish(description=self.status, detail=self._detail())

    # ------------------------------------------------------ containerd store

    def _first_byte(self, status: str, progress: Any) -> None:
        """The first message that moves bytes: on the containerd store, the manifest's layers
        the stream has not named are present (it never says ``Already exists``)."""
        self._byte_seen = True
        if isinstance(progress, dict) and (progress.get("hidecounts") or progress.get("units")):
            self._containerd = True
        if self._containerd:
            self._unnamed_are_present()

    def _on_containerd(self) -> None:
        """The stream shows the containerd store (the adapter did not say so)."""
        self._containerd = True
        self._unnamed_are_present()

    def _unnamed_are_present(self) -> None:
        if not self._has_manifest:
            return
        for layer in self._layers.values():
            if not layer.named and layer.state is LayerState.PENDING:
                self._make_present(layer)

    def _unmake_present(self, layer: _Layer) -> None:
        """A layer taken as present is named after all: it is downloaded, the total grows."""
        self._set_state(layer, LayerState.PENDING)
        self._total += layer.size or 0
        self._exact = False

    def _estimating(self) -> bool:
        counts = self._counts
        return bool(
            counts.get(LayerState.EXTRACTING)
            or (not self._seconds_mode and counts.get(LayerState.DOWNLOADED))
        )

    def _estimate(self, now: float) -> tuple[float, float]:
        """Estimated unpacked bytes beyond those the engine confirmed, and the raw bytes left
        (for the ETA), over the layers whose extraction is not told in bytes.

        Seconds mode: each layer from the seconds it reported. Silent mode: a virtual
        unpacker takes the downloaded layers in the image's order (a layer unpacks on its
        parent), each from when both it is downloaded and its parent is done, at the rate.
        Each layer's estimate only grows: shown 90 % unpacked, it stays so until the engine
        says more.
        """
        rate = self._unpack_rate
        shown = left = 0.0
        cursor = float("-inf")
        blocked = False
        for layer in self._layers.values():
            state = layer.state
            if state is LayerState.COMPLETE or state is LayerState.PRESENT:
                continue
            size = (layer.size or 0) - layer.extracted
            guess = 0.0
            if state is LayerState.EXTRACTING and layer.extract_seconds is not None:
                seconds = layer.extract_seconds + now - layer.extract_seen
                guess = layer.extracted + size * estimated_fraction(rate, seconds, size)
                left += max(size - rate * seconds, 0.0)
            elif state is LayerState.DOWNLOADED and not self._seconds_mode and not blocked:
                start = max(cursor, layer.done_at if layer.done_at is not None else now)
                need = size / rate
                cursor = start + need
                if now > start:
                    guess = layer.extracted + size * estimated_fraction(rate, now - start, size)
            elif state is not LayerState.DOWNLOADED:
                blocked = True  # its children cannot unpack before it
            layer.estimate = max(layer.estimate, guess)
            if layer.estimate > layer.extracted:
                shown += layer.estimate - layer.extracted
        if cursor > now:  # the virtual unpacker's own time left, in bytes at the rate
            left += (cursor - now) * rate
        return shown, left

    def _measure_silent(self, end: float) -> None:
        """Docker 26's silent unpacking ended at ``end``: the rate at which the virtual
        unpacker (see :meth:`_estimate`) would have finished then is what was observed."""
        layers = [
            (layer.done_at, float((layer.size or 0) - layer.extracted))
            for layer in self._layers.values()
            if layer.state is LayerState.DOWNLOADED and layer.done_at is not None
        ]
        nbytes = sum(size for _, size in layers)
        rate = rate_from_finish(layers, end)
        if nbytes > 0 and rate is not None:
            self._sample[0] += nbytes
            self._sample[1] += nbytes / rate

    def fail(self, message: str) -> TaskEvent | None:
        """End in ``error`` (an adapter's connection error, say); :attr:`error` is set."""
        if self.task.ended:
            return None
        self.error = PullError(message, image=self.image)
        return self.task.fail(message, detail=self._detail())

    def cancel(self, reason: str | None = "cancelled") -> TaskEvent | None:
        return self.task.cancel(reason, detail=self._detail())

    # ---------------------------------------------------------- layer messages

    def _downloading(self, layer_id: str, layer: _Layer | None, progress: Any) -> TaskEvent | None:
        layer = layer or self._add_layer(layer_id)
        if layer.state is LayerState.PRESENT:
            return None
        current = total = 0
        if isinstance(progress, dict):
            # (_count written out for the usual value, a plain int: once per message)
            raw = progress.get("current")
            current = raw if type(raw) is int and 0 <= raw < _FLOAT_RANGE else _count(raw)
            raw = progress.get("total")
            total = raw if type(raw) is int and 0 <= raw < _FLOAT_RANGE else _count(raw)
        if total > 0:
            if layer.size is None:
                self._set_size(layer, total)
            elif total > layer.size:  # the manifest was not this image's (other platform?)
                self._exact = False
                self._set_size(layer, total)
        size = layer.size
        if size is not None:
            # A resumed download counts from 0 of what is left: add back the offset.
            offset = size - total if total else 0
            value = min(offset + current, size)
            if value > layer.downloaded:  # (_set_downloaded, written out)
                self._downloaded += value - layer.downloaded
                layer.downloaded = value
                self._update_share(layer)
        elif current > layer.downloaded:
            layer.downloaded = current  # shown in detail; counted once the size is known
        if layer.state is not LayerState.DOWNLOADING:
            self._set_state(layer, LayerState.DOWNLOADING)
            return self._emit(None)
        if self._dirty:
            return self._emit(None)
        # (_emit's test for a message that only moves bytes, written out: most messages)
        now = self._clock()
        if now - self._last_emit < self.min_interval:
            return None  # coalesced into the next event (see module doc)
        return self._emit(None, now=now)

    def _extracting(self, layer_id: str, layer: _Layer | None, progress: Any) -> TaskEvent | None:
        layer = layer or self._add_layer(layer_id)
        if layer.state is LayerState.PRESENT:
            return None
        self._download_done(layer)
        if isinstance(progress, dict):
            current = _count(progress.get("current"))
            if progress.get("units") == "s" or not _count(progress.get("total")):
                # containerd store: seconds spent, no total; estimated until Pull complete.
                if not self._containerd:
                    self._on_containerd()
                self._seconds_mode = True  # not silent after all: estimate per layer
                layer.extract_seconds = float(current)
                layer.extract_seen = self._clock()
            else:
                if layer.size is None:
                    self._set_size(layer, _count(progress["total"]))
                self._set_extracted(layer, current)
        if layer.state is not LayerState.EXTRACTING:
            self._set_state(layer, LayerState.EXTRACTING)
        return self._emit(None)

    def _feed_other(self, message: Mapping[str, Any], status: Any) -> TaskEvent | None:
        error = message.get("errorDetail")
        text: Any = None
        if isinstance(error, dict):
            text = error.get("message")
        # ``message`` alone is the engine's body when it refuses a request before streaming
        # (e.g. ``{"message": "manifest for … not found"}``): the same error, told earlier.
        text = text or message.get("error") or (message.get("message") if status is None else None)
        if text:
            return self.fail(str(text))
        if not isinstance(status, str):
            self.ignored += 1
            return None
        if status.startswith("Digest:"):
            self.digest = status.partition(":")[2].strip()
            return self._emit(None, force_detail=True)
        if status.startswith("Status:"):
            self.status = status.partition(":")[2].strip()
            if self._containerd and not self._seconds_mode:  # Docker 26: unpacked by now
                self._measure_silent(self._clock())
            if self._containerd:
                for layer in self._layers.values():
                    if layer.state in (LayerState.DOWNLOADED, LayerState.EXTRACTING):
                        self._set_extracted(layer, layer.size, complete=True)
                        self._set_state(layer, LayerState.COMPLETE)
            # Layers the stream never named were not needed (an up-to-date image).
            for layer in self._layers.values():
                if layer.state is LayerState.PENDING and not layer.downloaded:
                    self._make_present(layer)
            return self._emit(self.status, phase="finishing", force_detail=True)
        if status.startswith("Pulling from"):
            return self._emit(status.lower())
        self.ignored += 1
        return None

    # --------------------------------------------------------------- bookkeeping

    def _add_layer(self, layer_id: str, *, announced: bool = True) -> _Layer:
        layer = _Layer(self._manifest_sizes.get(layer_id), named=announced)
        if announced and self._has_manifest and layer_id not in self._manifest_sizes:
            self._exact = False  # a layer the manifest did not list: total grows
        self._layers[layer_id] = layer
        self._counts[layer.state] = self._counts.get(layer.state, 0) + 1
        self._dirty = True
        return layer

    def _set_state(self, layer: _Layer, state: str) -> None:
        counts = self._counts
        counts[layer.state] -= 1
        counts[state] = counts.get(state, 0) + 1
        layer.state = state
        self._dirty = True

    def _set_size(self, layer: _Layer, size: int) -> None:
        old = layer.size or 0
        layer.size = size
        if layer.state is not LayerState.PRESENT:
            self._total += size - old
            # Bytes seen before the size was known now count.
            self._downloaded -= min(layer.downloaded, old) if old else 0
            layer.downloaded = min(layer.downloaded, size)
            self._downloaded += layer.downloaded
            self._update_share(layer)

    def _set_downloaded(self, layer: _Layer, value: int) -> None:
        if value > layer.downloaded:
            self._downloaded += value - layer.downloaded
            layer.downloaded = value
            self._update_share(layer)

    def _download_done(self, layer: _Layer) -> None:
        if layer.done_at is None:
            layer.done_at = self._clock()
        if layer.size is None:
            # Never saw its size: what it downloaded is its size.
            self._set_size(layer, layer.downloaded)
        assert layer.size is not None
        self._set_downloaded(layer, layer.size)

    def _set_extracted(self, layer: _Layer, value: int | None, *, complete: bool = False) -> None:
        size = layer.size or 0
        value = size if value is None else min(value, size) if size else value
        if value > layer.extracted:
            self._extracted += value - layer.extracted
            layer.extracted = value
        if complete or value > 0:
            self._update_share(layer, complete=complete)

    def _make_present(self, layer: _Layer) -> None:
        if layer.state is LayerState.PRESENT:
            return
        self._total -= layer.size or 0
        self._downloaded -= layer.downloaded
        self._extracted -= layer.extracted
        self._share_sum -= layer.share
        layer.share = 0.0
        self._set_state(layer, LayerState.PRESENT)

    def _update_share(self, layer: _Layer, *, complete: bool = False) -> None:
        if complete:
            share = 1.0
        elif layer.size:
            w = self.extract_weight
            share = (layer.downloaded + w * layer.extracted) / ((1.0 + w) * layer.size)
        else:
            share = 0.0
        if share > layer.share:
            self._share_sum += share - layer.share
            layer.share = share

    # ----------------------------------------------------------------- emitting

    def _percent(self) -> float:
        if self._exact:
            if self._total <= 0:
                return 0.0
            w = self.extract_weight
            extracted: float = self._extracted
            if self._containerd:
                extracted += self._estimate(self._clock())[0]
            return 100.0 * (self._downloaded + w * extracted) / ((1.0 + w) * self._total)
        active = len(self._layers) - self._counts.get(LayerState.PRESENT, 0)
        return 100.0 * self._share_sum / active if active > 0 else 0.0

    def _phase(self) -> str:
        counts = self._counts
        if counts.get(LayerState.RETRYING):
            return "retrying"
        if any(counts.get(state) for state in _BUSY_DOWNLOADING):
            return "downloading"
        if counts.get(LayerState.EXTRACTING) or counts.get(LayerState.DOWNLOADED):
            return "extracting"
        if self.status is not None:
            return "finishing"
        return "resolving" if not self._layers else "finishing"

    def _describe(self, phase: str) -> str:
        counts = self._counts
        layers = len(self._layers) - counts.get(LayerState.PRESENT, 0)
        downloaded = (
            counts.get(LayerState.DOWNLOADED, 0)
            + counts.get(LayerState.EXTRACTING, 0)
            + counts.get(LayerState.COMPLETE, 0)
        )
        if phase == "downloading":
            return f"downloading {layers - downloaded} of {layers} layers"
        if phase == "extracting":
            left = layers - counts.get(LayerState.COMPLETE, 0)
            estimated = " (estimated)" if self._containerd else ""
            return f"extracting {left} of {layers} layers{estimated}"
        return phase

    def _emit(
        self,
        description: str | None,
        *,
        phase: str | None = None,
        force_detail: bool = False,
        now: float | None = None,
    ) -> TaskEvent | None:
        """The event for the task's state now; ``now``: the clock, already read by a caller
        that made the bytes-only test (not coalesced)."""
        task = self.task
        detail = None
        if self._dirty or force_detail:
            phase = phase or self._phase()
            if description is None:
                description = self._describe(phase)
            detail = self._detail()
            self._dirty = False
        else:
            if now is None:
                now = self._clock()
                if now - self._last_emit < self.min_interval:
                    return None  # bytes only: coalesced into the next event (see module doc)
            if now - self._last_detail >= self.detail_interval:
                detail = self._detail()
        self._last_emit = now = self._clock()
        if detail is not None:
            self._last_detail = now
        total: float | None
        total = self._total if self._exact or self._total > 0 else None
        if self._containerd and self._estimating():
            return self._emit_estimated(description, phase, detail, total, now)
        if phase is None:
            return task.update(
                current=self._downloaded,
                total=total,
                percent=self._percent(),
                description=description,
                detail=detail,
            )
        return task.update(
            current=self._downloaded,
            total=total,
            percent=self._percent(),
            description=description,
            phase=phase,
            detail=detail,
        )

    def _emit_estimated(
        self,
        description: str | None,
        phase: str | None,
        detail: dict[str, Any] | None,
        total: float | None,
        now: float,
    ) -> TaskEvent | None:
        """An event while extraction is estimated: once nothing is left to download, the
        ETA is the estimated unpacking time left (unknown once the estimate has run out)."""
        changes: dict[str, Any] = {}
        if phase is not None:
            changes["phase"] = phase
        counts = self._counts
        if not any(counts.get(state) for state in (*_BUSY_DOWNLOADING, LayerState.RETRYING)):
            left = self._estimate(now)[1]
            changes["eta"] = left / self._unpack_rate if left > 0 else None
        return self.task.update(
            current=self._downloaded,
            total=total,
            percent=self._percent(),
            description=description,
            detail=detail,
            **changes,
        )

    def _detail(self) -> dict[str, Any]:
        layers = {
            short: {
                "state": layer.state,
                "current": layer.downloaded,
                "total": layer.size,
                **({"extract_seconds": layer.extract_seconds} if layer.extract_seconds else {}),
            }
            for short, layer in self._layers.items()
        }
        detail: dict[str, Any] = {
            "image": self.image,
            "exact_total": self._exact,
            "layers": layers,
            "counts": {state: n for state, n in self._counts.items() if n},
            "downloaded": self._downloaded,
            "extracted": self._extracted,
            "extract_weight": self.extract_weight,
            "retries": self.retries,
        }
        if self._containerd:
            detail["extraction"] = {
                "estimated": True,
                "store": "containerd",
                "unpack_rate": round(self._unpack_rate),
                "extracted_estimate": round(self._estimate(self._clock())[0]),
            }
        if self.digest is not None:
            detail["digest"] = self.digest
        if self.status is not None:
            detail["status"] = self.status
        if self.extra_detail:
            detail.update(self.extra_detail)
        return detail
