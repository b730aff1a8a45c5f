"""Estimated extraction, for engines that do not report it in bytes (the containerd store).

How each engine reports the unpacking of a pulled layer (REFERENCE.md §1 and §8):

* classic image store (Docker ≤ 28 by default): ``Extracting`` with ``current``/``total`` in
  compressed bytes, then ``Pull complete``. Exact: :mod:`dockprogress.core.pull` counts it and
  nothing here is used;
* containerd image store, Docker 26–27 (``silent``): no ``Extracting`` at all. Layers end
  ``Download complete`` with ``progressDetail: {"hidecounts": true}`` and the engine unpacks
  them after the downloads, saying nothing until ``Digest:`` and ``Status:``;
* containerd image store, Docker 28–29 (``seconds``): ``Extracting`` with
  ``{"current": <seconds spent>, "units": "s"}`` and no total, then ``Pull complete``.

Where the bytes are not told, they are estimated from an **unpack rate** ``R`` (compressed
bytes per second) learned on this host's earlier pulls (see :func:`blend_rate`; the adapter
stores it, :data:`DEFAULT_UNPACK_RATE` before the first one):

* silent: a virtual unpacker takes the downloaded layers in the image's order (each unpacks
  on its parent), a layer from when it is downloaded and its parent is done, ``R`` bytes a
  second; the time from the end of the downloads to ``Digest:`` tells what ``R`` was
  (:func:`rate_from_finish`), since containerd unpacks while later layers still download;
* seconds: a layer that reported ``s`` seconds, ``d`` seconds ago, has ``R * (s + d)`` of its
  ``size`` bytes unpacked.

The raw estimate ``x`` (a fraction of the bytes) is shown through :func:`ease`: unchanged up to
:data:`EASE_KNEE`, then approaching :data:`EASE_CAP` without reaching it, with a continuous
slope. An estimate that runs out before the engine is done slows down instead of reaching the
end, and the engine's own end (``Pull complete``, ``Status:``) replaces it by the real figure
(only ever upwards: the pull tracker's percent never decreases). The time left is
``(B - R * t) / R`` while that is positive, and unknown after.

After the pull, :func:`blend_rate` folds what was observed (bytes, seconds) into the stored
rate, so the next pull's estimate is closer. No I/O here.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = [
    "DEFAULT_UNPACK_RATE",
    "EASE_CAP",
    "EASE_KNEE",
    "MAX_UNPACK_RATE",
    "MIN_UNPACK_RATE",
    "blend_rate",
    "ease",
    "estimated_fraction",
    "rate_from_finish",
]

#: Compressed bytes per second before any pull was measured on this host (a conservative
#: figure for a local disk: layers of many small files unpack slower than large files).
DEFAULT_UNPACK_RATE: Final = 40e6
#: Measured rates are kept within these bounds (a clock jump must not poison the store).
MIN_UNPACK_RATE: Final = 256e3
MAX_UNPACK_RATE: Final = 20e9
#: Where the shown fraction stops following the raw estimate, and what it never reaches.
EASE_KNEE: Final = 0.8
EASE_CAP: Final = 0.99
#: Weight of the newest observation in the stored rate.
BLEND_WEIGHT: Final = 0.5


def ease(x: float) -> float:
    """Shown fraction for a raw estimated fraction ``x`` (≥ 0): ``x`` up to the knee, then an
    exponential approach to :data:`EASE_CAP` with the same slope at the knee. Monotonic."""
    if x <= EASE_KNEE:
        return max(x, 0.0)
    room = EASE_CAP - EASE_KNEE
    return EASE_KNEE + room * (1.0 - math.exp(-(x - EASE_KNEE) / room))


def estimated_fraction(rate: float, seconds: float, size: float) -> float:
    """Shown fraction of ``size`` bytes unpacked after ``seconds`` at ``rate`` bytes/s."""
    if size <= 0:
        return EASE_CAP
    return ease(rate * max(seconds, 0.0) / size)


def blend_rate(stored: float | None, nbytes: float, seconds: float) -> float | None:
    """The rate to store after unpacking ``nbytes`` in ``seconds``; ``None`` if it tells
    nothing (too little to measure) and the stored rate should stay."""
    if nbytes < 1e6 or seconds <= 0.02:
        return stored  # a few small layers: timer noise, not a rate
    observed = min(max(nbytes / seconds, MIN_UNPACK_RATE), MAX_UNPACK_RATE)
    if stored is None:
        return observed
    # Blend in log space: rates span orders of magnitude (small files vs. large ones).
    return math.exp(
        BLEND_WEIGHT * math.log(observed) + (1.0 - BLEND_WEIGHT) * math.log(max(stored, 1.0))
    )


def unpacked_by(layers: list[tuple[float, float]], rate: float) -> float:
    """When a virtual unpacker at ``rate`` is done with ``layers`` (download end time, bytes),
    taken in order, each once downloaded and after its parent."""
    cursor = float("-inf")
    for done_at, size in layers:
        cursor = max(cursor, done_at) + size / rate
    return cursor


def rate_from_finish(layers: list[tuple[float, float]], end: float) -> float | None:
    """The rate at which the virtual unpacker finishes ``layers`` at ``end`` (bisection in
    log space within the sane bounds); ``None`` without layers."""
    if not layers or sum(size for _, size in layers) <= 0:
        return None
    low, high = math.log(MIN_UNPACK_RATE), math.log(MAX_UNPACK_RATE)
    if unpacked_by(layers, MAX_UNPACK_RATE) >= end:
        return MAX_UNPACK_RATE
    if unpacked_by(layers, MIN_UNPACK_RATE) <= end:
        return MIN_UNPACK_RATE
    for _ in range(60):
        middle = (low + high) / 2
        if unpacked_by(layers, math.exp(middle)) > end:
            low = middle  # too slow
        else:
            high = middle
    return math.exp((low + high) / 2)
