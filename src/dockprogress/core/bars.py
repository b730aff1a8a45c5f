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
* **tools' own bars** (curl, wget, git, rsync, apt, pip, ffmpeg, rich download rows, custom
  tqdm formats), described as data by bar files (:mod:`dockprogress.core.barfiles`): the
  user's ``--bars`` files are tried first, then tqdm's default shape, then the shipped
  files, then rich and the generic rule.

Honest precision: a tqdm byte bar prints ``k M G`` for ``unit_divisor`` 1000 and 1024 alike.
It is read as decimal until a frame proves the base (:func:`_base_hint`: a ``0.98M``, or a
percentage only one base agrees with); the :class:`Bar` then keeps 1024 for good. Figures
read from a rounded display are ``approximate``.

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
* a tool **in sequence** (once a bar of a tool whose bar file declares phases, or whose
  announcements were seen, has been drawn): its phases make the overall, *done phases +
  weight x the current phase's percent*, and a bar of an earlier phase never takes it back
  (git, apt); or, for announced items (pip's ``Collecting``), *sum of the bars' percents /
  (announced items + 1)*: one item more than announced is assumed until the command exits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final, NamedTuple

from dockprogress.core.tty import Frame, FrameEnd

if TYPE_CHECKING:
    from dockprogress.core.barfiles import Recognisers

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
    TOOL = "tool"  # a tool's own bar, read by a bar file (see core/barfiles.py)


_TQDM_STYLE: Final = BarStyle.TQDM
_tuple_new: Final = tuple.__new__  # what a named tuple's own __new__ calls
_PARTIAL: Final = FrameEnd.PARTIAL


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
    tool: str = ""  # the bar file's tool, "" for the built-in shapes
    phase: int = -1  # index of the tool's phase this bar fills, -1 for none
    approximate: bool = False  # figures read from a rounded display, or a guessed base
    base_hint: int = 0  # 1024 or 1000 when this frame proves what k/M/G mean, else 0
    binary: tuple[float | None, float | None, float | None] | None = None  # n, total, rate
    # read with k/M/G as powers of 1024 (tqdm byte bars, whose unit_divisor is not shown)


def recognise(
    text: str, *, live: bool = True, recognisers: Recognisers | None = None
) -> BarReading | None:
    """The bar ``text`` shows, or ``None`` when it is not a bar (see the module rules).

    ``recognisers`` (bar files): the user's are tried first, then tqdm's default shape (the
    commonest bar, one regex), then the shipped files, then rich and the generic ``N%``.
    """
    if recognisers is not None and recognisers.user_specs:
        reading = recognisers.read(text, live, user=True)
        if reading is not None:
            return reading
    if "[" in text:  # tqdm: n% | n/total [elapsed<remaining, rate], or n [elapsed, rate]
        if "%" in text:
            match = _TQDM.match(text)
            if match is not None:
                return _tqdm_reading(match, known_total=True)
        if "/s" in text or "s/" in text:  # (what the unknown-total shape's rate must hold)
            match = _TQDM_UNKNOWN.match(text)
            if match is not None and ("/s" in match["rate"] or "s/" in match["rate"]):
                return _tqdm_reading(match, known_total=False)
    if recognisers is not None:
        reading = recognisers.read(text, live, user=False)
        if reading is not None:
            return reading
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
    rate, unit, rate_binary = _rates(rate_text)
    if not known_total and match["unit"]:
        unit = match["unit"]
    is_bytes = unit in _BYTE_UNITS
    factors = _POWERS_OF_1024 if unit == "iB" else _POWERS_OF_1000
    n_value = float(n_text)
    n = n_value * factors[n_scale]
    total: float | None = None
    percent: float | None = None
    remaining = None
    total_text = total_scale = ""
    total_value = 0.0
    if known_total:
        total_text, total_scale, remaining = match.group("total", "tscale", "remaining")
        total_value = float(total_text)
        total = total_value * factors[total_scale]
        # n/total is more precise than the rounded column, unless unit_scale rounded both
        percent = 100.0 * n / total if total > 0 else float(match["pct"])
        percent = min(percent, 100.0)
    scaled = bool(n_scale or total_scale)
    hint = 0
    binary = None
    if is_bytes and scaled and unit != "iB":
        # tqdm prints k/M/G for unit_divisor 1000 and 1024 alike: keep both readings, and
        # say which one this frame proves (see _base_hint), if any.
        hint = _base_hint(
            n_text, n_scale, total_text, total_scale, match["pct"] if known_total else None
        )
        binary = (
            n_value * _POWERS_OF_1024[n_scale],
            None if not known_total else total_value * _POWERS_OF_1024[total_scale],
            rate_binary,
        )
    # BarReading(...) with every field in order, made in C (one per frame).
    return _tuple_new(
        BarReading,
        (
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
            "",  # tool
            -1,  # phase
            scaled,  # approximate
            hint,  # base_hint
            binary,
        ),
    )


def _rates(text: str) -> tuple[float | None, str, float | None]:
    """``_rate(text)``, remembered: a bar redrawn many times a second repeats its rate."""
    seen = _RATES_SEEN.get(text)
    if seen is not None:
        return seen
    rates = _rate(text)
    if len(_RATES_SEEN) >= _RATES_SEEN_MAX:
        _RATES_SEEN.clear()
    _RATES_SEEN[text] = rates
    return rates


def _half_ulp(number: str) -> float:
    decimals = len(number) - number.index(".") - 1 if "." in number else 0
    return 0.5 * 10.0**-decimals


def _base_hint(n_text: str, n_scale: str, t_text: str, t_scale: str, pct: str | None) -> int:
    """1024 or 1000 when the shown figures prove tqdm's ``unit_divisor``, else 0.

    * tqdm's ``format_sizeof`` divides by the divisor once a figure reaches 999.5, so with
      1024 a figure between 999.5 and 1023.99 of a unit shows as ``0.98M``: a leading
      ``0.`` before a suffix happens only with 1024.
    * When ``n`` and ``total`` have different suffixes the two bases give ratios 2.4 % apart
      (per step), more than the display's rounding: the percentage column (rounded from the
      exact ratio) then agrees with one base only.
    """
    if (n_scale and n_text.startswith("0.")) or (t_scale and t_text.startswith("0.")):
        return 1024
    if pct is None or not t_text or n_scale == t_scale:
        return 0
    steps = " kMGTPEZY".index(n_scale or " ") - " kMGTPEZY".index(t_scale or " ")
    n_value, t_value = float(n_text), float(t_text)
    n_half, t_half = _half_ulp(n_text), _half_ulp(t_text)
    if t_value - t_half <= 0:
        return 0
    target_low, target_high = float(pct) - 0.5, float(pct) + 0.5
    fits = []
    for base in (1000.0, 1024.0):
        factor = 100.0 * base**steps
        low = (n_value - n_half) * factor / (t_value + t_half)
        high = (n_value + n_half) * factor / (t_value - t_half)
        fits.append(low <= target_high and high >= target_low)
    if fits == [True, False]:
        return 1000
    if fits == [False, True]:
        return 1024
    return 0


#: A k/M/G… suffix's factor ("" for none), as ``_scaled`` computes it.
_POWERS_OF_1000: Final = {"": 1.0} | {s: 1000.0**i for i, s in enumerate(" kMGTPEZY") if i}
_POWERS_OF_1024: Final = {"": 1.0} | {s: 1024.0**i for i, s in enumerate(" kMGTPEZY") if i}


def _scaled(number: str, scale: str, divisor: float) -> float:
    factor = 1.0 if not scale else divisor ** (" kMGTPEZY".index(scale))
    return float(number) * factor


def _rate(text: str) -> tuple[float | None, str, float | None]:
    """The rate, its unit, and the rate read with k/M/G as powers of 1024."""
    match = _RATE.search(text.strip())
    if match is None:
        return None, "", None
    if match["inverse"] is not None:
        # Slow bars show seconds per unit, scaled too with unit_scale: "1.00ks/B".
        inverse = _scaled(match["inverse"], match["iscale"], 1000.0)
        rate = 1.0 / inverse if inverse > 0 else None
        return rate, match["iunit"], rate
    unit = match["unit"] or ""
    if match["value"] is None:
        return None, unit, None
    scale = match["scale"] or ""
    rate = _scaled(match["value"], scale, 1024.0 if unit == "iB" else 1000.0)
    return rate, unit, rate * (1.024 ** (" kMGTPEZY".index(scale)) if scale else 1.0)


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
_RATES_SEEN: dict[str, tuple[float | None, str, float | None]] = {}
_RATES_SEEN_MAX: Final = 4096
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
    base: int = 0  # 1024 once a frame proved the bar's k/M/G are binary (tqdm), else 0
    given_total: float | None = None  # announced by the tool before the bar (wget's Length)

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


@dataclass(slots=True)
class _Sequence:
    """A tool's bars in sequence: its announced items, its phase, each bar's last figures."""

    items: int = 0
    pending_total: float | None = None
    given_phase: tuple[int, float] | None = None
    phase: int = -1
    phase_percent: float = 0.0
    percents: dict[str, float] = field(default_factory=dict)
    amounts: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


class BarBoard:
    """Every bar on screen, one :class:`Bar` each; the overall percent across them."""

    __slots__ = (
        "_bars",
        "_given_total",
        "_last_tool",
        "_on_row",
        "_recognisers",
        "_screen",
        "_seq",
        "_sequences",
        "follow",
        "max_bars",
        "unproven",
    )

    def __init__(
        self,
        follow: re.Pattern[str] | None = None,
        *,
        max_bars: int = 64,
        recognisers: Recognisers | None = None,
    ) -> None:
        self.follow = follow
        self.max_bars = max_bars
        self._recognisers = recognisers
        self._sequences: dict[str, _Sequence] = {}
        self._last_tool = ""
        self._given_total: float | None = None
        self._bars: dict[str, Bar] = {}
        self._on_row: dict[int, str] = {}
        # The bars on screen, top row first: rebuilt only when _on_row or _bars change.
        self._screen: list[Bar] | None = None
        self._seq = 0
        # Rows whose bar counts bytes in a base (k/M/G) no frame has proved yet: a caller
        # that coalesces frames (ExecTracker) has every frame of these read.
        self.unproven: set[int] = set()

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
            self.unproven.discard(row)
            self._screen = None
            return True
        reading = recognise(text, live=frame.live, recognisers=self._recognisers)
        if reading is None:
            if self._recognisers is not None and frame.end is not _PARTIAL:
                self._announce(text)
            return False
        if reading.tool:  # a tool's bars in sequence are told apart by their rows too
            key = f"t:{reading.tool}:{reading.description}:{row}"
        else:
            key = f"d:{reading.description}" if reading.description else f"r:{row}"
        bars = self._bars
        bar = bars.get(key)
        if reading.binary is not None:
            base = reading.base_hint if bar is None or not bar.base else bar.base
            if base == 1024:
                n, total, rate = reading.binary
                reading = reading._replace(n=n, total=total, rate=rate)
            if bar is not None and not bar.base and reading.base_hint:
                bar.base = reading.base_hint
        if reading.tool:
            reading = self._in_sequence(key, reading, bar)
        if bar is not None and bar.row == row and on_row.get(row) == key and bar.reading == reading:
            return False
        self._seq += 1
        if bar is None:
            if len(bars) >= self.max_bars:
                self._forget(min(bars.values(), key=lambda b: b.seq).key)
            bar = Bar(key, row, reading, self._seq, base=reading.base_hint)
            if reading.tool:
                bar.given_total = self._given_total
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
        if reading.binary is not None and not bar.base:
            self.unproven.add(row)
        elif self.unproven:
            self.unproven.discard(row)
        on_screen = self._on_screen()
        if len(on_screen) > 1:
            self._note_inner(on_screen)
        return True

    def _announce(self, text: str) -> None:
        assert self._recognisers is not None
        for item, match in self._recognisers.announced(text):
            sequence = self._sequences.setdefault(item.tool, _Sequence())
            sequence.items += item.items
            total = item.total(match)
            if total is not None:
                sequence.pending_total = total

    def _in_sequence(self, key: str, reading: BarReading, bar: Bar | None) -> BarReading:
        """Note a tool's reading in its sequence; apply a total the tool announced."""
        tool = reading.tool
        sequence = self._sequences.get(tool)
        if sequence is None:
            sequence = self._sequences[tool] = _Sequence()
        recognisers = self._recognisers
        info = None if recognisers is None else recognisers.tools.get(tool)
        if sequence.items or (info is not None and info.weights):
            self._last_tool = tool  # a tool in sequence: its phases make the overall
        if bar is not None:
            given = bar.given_total
        elif sequence.pending_total is not None:  # the first bar after the announcement
            given = sequence.pending_total
            sequence.pending_total = None
            sequence.given_phase = (reading.phase, given) if reading.phase >= 0 else None
        elif sequence.given_phase is not None and sequence.given_phase[0] == reading.phase:
            given = sequence.given_phase[1]  # the same phase's row, drawn again further down
        else:
            given = None
        self._given_total = given
        if given is not None and reading.total is None:
            percent = reading.percent
            if percent is None and reading.n is not None and given > 0:
                percent = min(100.0 * reading.n / given, 100.0)
            reading = reading._replace(total=given, percent=percent)
        percent = reading.percent or 0.0
        if reading.phase >= 0:
            if reading.phase > sequence.phase:
                sequence.phase = reading.phase
                sequence.phase_percent = percent
            elif reading.phase == sequence.phase:
                sequence.phase_percent = percent
        percents = sequence.percents
        if key in percents or len(percents) < 4096:
            percents[key] = percent
            sequence.amounts[key] = (reading.n, reading.total)
        return reading

    def sequence_overall(self) -> float | None:
        """The overall percent of the tool drawn last, when it goes through phases or
        announced items (see the module rules), else ``None``."""
        tool = self._last_tool
        if not tool or self._recognisers is None:
            return None
        sequence = self._sequences[tool]
        info = self._recognisers.tools.get(tool)
        weights = info.weights if info is not None else ()
        if weights and sequence.phase >= 0:
            done = sum(weights[: sequence.phase])
            share = weights[sequence.phase] * sequence.phase_percent / 100.0
            return min(100.0 * (done + share) / sum(weights), 100.0)
        if sequence.items:
            # The tool announces items one at a time (pip's "Collecting"): one more than
            # announced is assumed until the command exits, so a finished item never
            # reads as the end of all of them.
            percents = sequence.percents
            return sum(percents.values()) / (max(sequence.items, len(percents)) + 1)
        return None

    def sequence_amounts(self, tool: str) -> tuple[float, float | None] | None:
        """Bytes (or items) of all of ``tool``'s bars announced as a sequence, or ``None``."""
        sequence = self._sequences.get(tool)
        if sequence is None or not sequence.items:
            return None
        current = 0.0
        total: float | None = 0.0
        for n, bar_total in sequence.amounts.values():
            current += n or 0.0
            total = None if total is None or bar_total is None else total + bar_total
        return current, total

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

    @property
    def announced(self) -> bool:
        """A tool announced what its bars will measure (pip's ``Collecting``, wget's
        ``Length:``): its first bar is on its way."""
        return any(s.items or s.pending_total is not None for s in self._sequences.values())

    def followed(self) -> Bar | None:
        """The bar the task follows: the ``follow`` match, else the top unfinished bar."""
        if self.follow is not None:
            matching = [b for b in self._bars.values() if self.follow.search(b.description)]
            return max(matching, key=lambda b: b.seq) if matching else None
        on_screen = self._on_screen()
        if self._last_tool:  # a tool in sequence: the bar it drew last
            return max(on_screen, key=lambda b: b.seq) if on_screen else None
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
        if self._last_tool:
            sequenced = self.sequence_overall()
            if sequenced is not None:
                return sequenced, None
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
