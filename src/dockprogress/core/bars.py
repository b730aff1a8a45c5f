"""Recognising progress bars in terminal frames, and keeping one state per bar.

:func:`recognise` reads one frame's text (escape sequences already removed by
:class:`~dockprogress.core.tty.TtyParser`) and returns a :class:`BarReading`, or ``None``:

* **tqdm** lines, in every shape tqdm's default format produces:
  ``desc:  45%|████▌     | 45/100 [00:01<00:01, 45.00it/s]`` (with or without the bar, with
  ``unit_scale`` suffixes ``k M G …``, inverse rates ``2.50s/it``, postfixes), and the
  unknown-total shape ``desc: 45it [00:01, 45.00it/s]`` / ``4.50MB [00:03, 1.50MB/s]``.
  A bar counts bytes when its unit is ``B`` (or ``iB``/``bytes``).
* **rich** progress rows: a description, a run of bar glyphs (``━ ╸ ╺``), then the
  ``{:>3.0f}%`` column and an optional remaining time (``0:00:01`` or ``-:--:--``). A row with
  the glyphs but no percentage (a task with no total) is a bar of unknown progress.
* a **generic** ``N%`` (0 to 100), *only on a live row*: a row the program has redrawn in
  place, which is what any progress bar does.

The rule for plain text: a line that is neither a tqdm nor a rich bar and was printed once
(never redrawn) is not progress, whatever percentage it mentions: ``Processed 100% of
files`` in a log line does not move the task. And no text ever *finishes* a task: a bar at
100% only means that bar is complete; the task is done when the command exits with status 0
(see :mod:`dockprogress.core.execprogress`).

:class:`BarBoard` keeps one :class:`Bar` per bar on screen, keyed by description (or by row
when there is none), and computes the overall percent:

* ``--bar REGEX`` (``follow=``): the most recently drawn bar whose description matches;
* otherwise the bars on screen, top row first. When an unfinished counting bar (tqdm with
  ``n/total``) has bars below it, those are nested inside it (tqdm ``position=``): the
  overall is ``(n + inner fraction) / total``, so an inner bar restarting at 0 moves the
  overall forward, never back. Bars side by side (several rich tasks, or sequential tqdm
  bars) are averaged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

from dockprogress.core.tty import Frame

__all__ = ["Bar", "BarBoard", "BarReading", "BarStyle", "recognise"]

_BYTE_UNITS: Final = frozenset({"B", "iB", "bytes", "byte"})

_NUMBER = r"\d+(?:\.\d+)?"
_TQDM_TAIL = (
    r"\[(?P<elapsed>\d+(?::\d\d)+)(?:<(?P<remaining>\d+(?::\d\d)+|\?))?,\s*"
    r"(?P<rate>[^,\]]*?)\s*(?:,[^\]]*)?(?:\]|$)"  # a narrow terminal cuts the end off
)
_TQDM: Final = re.compile(
    r"\s*(?:(?P<desc>.*?):\s+)?(?P<pct>\d{1,3})%(?:\|[^|]*\||\s)\s*"
    rf"(?P<n>{_NUMBER})(?P<nscale>[kMGTPEZY]?)/(?P<total>{_NUMBER})(?P<tscale>[kMGTPEZY]?)\s+"
    + _TQDM_TAIL
)
_TQDM_UNKNOWN: Final = re.compile(
    rf"\s*(?:(?P<desc>.*?):\s+)?(?P<n>{_NUMBER})(?P<nscale>[kMGTPEZY]?)(?P<unit>[^\s\d\[\]:]*)\s+"
    + _TQDM_TAIL
)
_RATE: Final = re.compile(
    rf"(?:(?P<value>{_NUMBER}(?:e[+-]?\d+)?)|\?)(?P<scale>[kMGTPEZY]?)(?P<unit>\S*?)/s$"
    rf"|(?P<inverse>{_NUMBER}(?:e[+-]?\d+)?)(?P<iscale>[kMGTPEZY]?)s/(?P<iunit>\S+)$"
)
_RICH: Final = re.compile(
    r"(?P<desc>.*?)\s*[━╸╺╾╼]{3,}\s*(?:(?P<pct>\d{1,3})%)?"
    r"(?:\s+(?P<remaining>-:--:--|\d+:\d\d:\d\d))?"
)
_GENERIC: Final = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d+)?)\s?%")
_SPINNER: Final = re.compile(r"^[\u2800-\u28ff]\s+")


class BarStyle(Enum):
    TQDM = "tqdm"
    RICH = "rich"
    GENERIC = "generic"


_TQDM_STYLE: Final = BarStyle.TQDM


class BarReading(NamedTuple):
    """What one frame of one bar says. ``n``/``total`` are in ``unit`` (bytes when ``is_bytes``).

    (A named tuple, like :class:`~dockprogress.core.tty.Frame`: one is made per frame.)
    """

    style: BarStyle
    description: str
    percent: float | None
    n: float | None = None
    total: float | None = None
    unit: str = ""
    is_bytes: bool = False
    rate: float | None = None
    elapsed: float | None = None
    remaining: float | None = None


def recognise(text: str, *, live: bool = True) -> BarReading | None:
    """The bar ``text`` shows, or ``None`` when it is not a bar (see the module rules)."""
    if "[" in text and ("%" in text or "/" in text):  # tqdm: n% | n/total, or a rate x/s
        match = _TQDM.match(text)
        if match is not None:
            return _tqdm_reading(match, known_total=True)
        match = _TQDM_UNKNOWN.match(text)
        if match is not None and ("/s" in match["rate"] or "s/" in match["rate"]):
            return _tqdm_reading(match, known_total=False)
    if "━" in text or "╺" in text or "╸" in text:
        match = _RICH.match(text)
        if match is not None:
            pct = match["pct"]
            remaining = match["remaining"]
            return BarReading(
                style=BarStyle.RICH,
                description=_SPINNER.sub("", match["desc"].strip()),
                percent=None if pct is None else min(float(pct), 100.0),
                remaining=None if remaining is None else _seconds(remaining),
            )
    if live and "%" in text:
        for generic in _GENERIC.finditer(text):
            value = float(generic.group(1))
            if value <= 100.0:
                return BarReading(
                    style=BarStyle.GENERIC,
                    description=text[: generic.start()].strip(" :|[(-"),
                    percent=value,
                )
    return None


def _tqdm_reading(match: re.Match[str], *, known_total: bool) -> BarReading:
    desc, n_text, n_scale, elapsed, rate_text = match.group(
        "desc", "n", "nscale", "elapsed", "rate"
    )
    rate, unit = _rate(rate_text)
    if not known_total and match["unit"]:
        unit = match["unit"]
    is_bytes = unit in _BYTE_UNITS
    divisor = 1024.0 if unit == "iB" else 1000.0
    n = float(n_text) if not n_scale else _scaled(n_text, n_scale, divisor)
    total: float | None = None
    percent: float | None = None
    remaining = None
    if known_total:
        total_text, total_scale, remaining = match.group("total", "tscale", "remaining")
        total = float(total_text) if not total_scale else _scaled(total_text, total_scale, divisor)
        # n/total is more precise than the rounded column, unless unit_scale rounded both
        percent = 100.0 * n / total if total > 0 else float(match["pct"])
        percent = min(percent, 100.0)
    return BarReading(
        _TQDM_STYLE,
        (desc or "").strip(),
        percent,
        n,
        total,
        unit,
        is_bytes,
        rate,
        _seconds(elapsed),
        None if remaining in (None, "?") else _seconds(remaining),
    )


def _scaled(number: str, scale: str, divisor: float) -> float:
    factor = 1.0 if not scale else divisor ** (" kMGTPEZY".index(scale))
    return float(number) * factor


def _rate(text: str) -> tuple[float | None, str]:
    match = _RATE.search(text.strip())
    if match is None:
        return None, ""
    if match["inverse"] is not None:
        # Slow bars show seconds per unit, scaled too with unit_scale: "1.00ks/B".
        inverse = _scaled(match["inverse"], match["iscale"], 1000.0)
        return (1.0 / inverse if inverse > 0 else None), match["iunit"]
    unit = match["unit"] or ""
    if match["value"] is None:
        return None, unit
    divisor = 1024.0 if unit == "iB" else 1000.0
    return _scaled(match["value"], match["scale"], divisor), unit


def _seconds(clock: str) -> float | None:
    # A bar redrawn many times a second repeats its elapsed/remaining text: remember them.
    seconds = _SECONDS_SEEN.get(clock)
    if seconds is not None or clock in _SECONDS_SEEN:
        return seconds
    if clock.startswith("-"):
        seconds = None
    else:
        seconds = 0.0
        for part in clock.split(":"):
            seconds = seconds * 60.0 + float(part)
    if len(_SECONDS_SEEN) >= _SECONDS_SEEN_MAX:
        _SECONDS_SEEN.clear()
    _SECONDS_SEEN[clock] = seconds
    return seconds


_SECONDS_SEEN: dict[str, float | None] = {}
_SECONDS_SEEN_MAX: Final = 4096


# --------------------------------------------------------------------- per-bar state


@dataclass(slots=True)
class Bar:
    """One bar on screen, as last drawn."""

    key: str
    row: int
    reading: BarReading
    seq: int
    restarts: int = 0
    # The progress of the bar nested below, kept for the item ``inner_for`` it belongs to:
    # tqdm erases a finished inner bar before it redraws the outer one with the next count.
    inner: float = 0.0
    inner_for: float | None = None

    @property
    def description(self) -> str:
        return self.reading.description

    @property
    def percent(self) -> float | None:
        return self.reading.percent

    @property
    def complete(self) -> bool:
        return self.reading.percent is not None and self.reading.percent >= 100.0

    @property
    def counts(self) -> bool:
        """A tqdm bar with ``n/total``: bars below it are nested inside it."""
        reading = self.reading
        return reading.style is BarStyle.TQDM and bool(reading.total) and not reading.is_bytes


class BarBoard:
    """Every bar on screen, one :class:`Bar` each; the overall percent across them."""

    __slots__ = ("_bars", "_on_row", "_screen", "_seq", "follow", "max_bars")

    def __init__(self, follow: re.Pattern[str] | None = None, *, max_bars: int = 64) -> None:
        self.follow = follow
        self.max_bars = max_bars
        self._bars: dict[str, Bar] = {}
        self._on_row: dict[int, str] = {}
        # The bars on screen, top row first: rebuilt only when _on_row or _bars change.
        self._screen: list[Bar] | None = None
        self._seq = 0

    def apply(self, frame: Frame) -> bool:
        """Read ``frame``; ``True`` when the bars on screen changed.

        A blank frame (a row overwritten with spaces) takes the bar on that row off screen;
        its state is kept, so it is recognised as the same bar if it comes back.
        """
        text = frame.text
        row = frame.row
        on_row = self._on_row
        if not text or text.isspace():  # (what ``not text.strip()`` says, without a copy)
            if on_row.pop(row, None) is None:
                return False
            self._screen = None
            return True
        reading = recognise(text, live=frame.live)
        if reading is None:
            return False
        key = f"d:{reading.description}" if reading.description else f"r:{row}"
        bars = self._bars
        bar = bars.get(key)
        if bar is not None and bar.row == row and on_row.get(row) == key and bar.reading == reading:
            return False
        self._seq += 1
        if bar is None:
            if len(bars) >= self.max_bars:
                self._forget(min(bars.values(), key=lambda b: b.seq).key)
            bar = Bar(key, row, reading, self._seq)
            bars[key] = bar
            self._screen = None
        else:
            previous = bar.reading
            if (
                previous.percent is not None
                and reading.percent is not None
                and reading.percent < previous.percent
            ) or (previous.n is not None and reading.n is not None and reading.n < previous.n):
                bar.restarts += 1
            if bar.row != row and on_row.get(bar.row) == key:
                del on_row[bar.row]
                self._screen = None
            bar.row = row
            bar.reading = reading
            bar.seq = self._seq
        if on_row.get(row) != key:
            on_row[row] = key
            self._screen = None
        on_screen = self._on_screen()
        if len(on_screen) > 1:
            self._note_inner(on_screen)
        return True

    def _note_inner(self, on_screen: list[Bar]) -> None:
        for index, bar in enumerate(on_screen[:-1]):
            if bar.counts:
                bar.inner = _nested(on_screen, index + 1)
                bar.inner_for = bar.reading.n

    def _on_screen(self) -> list[Bar]:
        screen = self._screen
        if screen is None:
            bars = self._bars
            screen = [bars[key] for _, key in sorted(self._on_row.items()) if key in bars]
            self._screen = screen
        return screen

    @property
    def bars(self) -> list[Bar]:
        """The bars currently on screen (the latest one drawn on each row), top row first."""
        return list(self._on_screen())

    def followed(self) -> Bar | None:
        """The bar the task follows: the ``follow`` match, else the top unfinished bar."""
        if self.follow is not None:
            matching = [b for b in self._bars.values() if self.follow.search(b.description)]
            return max(matching, key=lambda b: b.seq) if matching else None
        on_screen = self._on_screen()
        for bar in on_screen:
            if not bar.complete and bar.percent is not None:
                return bar
        for bar in on_screen:
            if not bar.complete:
                return bar
        return max(on_screen, key=lambda b: b.seq) if on_screen else None

    def overall(self) -> tuple[float | None, float | None]:
        """``(percent, eta_seconds)`` across the bars, per the module rules."""
        on_screen = self._on_screen()
        if self.follow is not None:
            bar = self.followed()
            if bar is None:
                return None, None
            if bar in on_screen:
                index = on_screen.index(bar)
                if _has_inner(bar, on_screen, index):
                    return _nested(on_screen, index), bar.reading.remaining
            return bar.percent, bar.reading.remaining
        # _has_inner, Bar.counts/complete and _add_eta written out: this runs per frame.
        values: list[float] = []
        etas: list[float] = []
        last = len(on_screen) - 1
        for index, bar in enumerate(on_screen):
            reading = bar.reading
            percent = reading.percent
            unfinished = percent is None or percent < 100.0
            if (
                unfinished
                and reading.style is _TQDM_STYLE
                and reading.total
                and not reading.is_bytes
                and (index < last or bar.inner_for == reading.n)
            ):
                values.append(_nested(on_screen, index))
                if reading.remaining is not None:
                    etas.append(reading.remaining)
                break
            if percent is not None:
                values.append(percent)
                if unfinished and reading.remaining is not None:
                    etas.append(reading.remaining)
        if not values:
            return None, None
        return sum(values) / len(values), (max(etas) if etas else None)

    def _forget(self, key: str) -> None:
        bar = self._bars.pop(key)
        if self._on_row.get(bar.row) == key:
            del self._on_row[bar.row]
        self._screen = None


def _has_inner(bar: Bar, bars: list[Bar], index: int) -> bool:
    """Does ``bar`` have a bar nested below it (on screen, or just erased for this item)?"""
    if not bar.counts or bar.complete:
        return False
    return index + 1 < len(bars) or bar.inner_for == bar.reading.n


def _nested(bars: list[Bar], index: int) -> float:
    """Percent of ``bars[index]`` counting the bars below it as its current item's progress."""
    bar = bars[index]
    own = bar.percent or 0.0
    reading = bar.reading
    if not _has_inner(bar, bars, index) or reading.n is None or not reading.total:
        return own
    inner = _nested(bars, index + 1) if index + 1 < len(bars) else bar.inner
    combined = 100.0 * (reading.n + inner / 100.0) / reading.total
    return max(own, min(combined, 100.0))


def _add_eta(etas: list[float], bar: Bar) -> None:
    if bar.reading.remaining is not None:
        etas.append(bar.reading.remaining)
