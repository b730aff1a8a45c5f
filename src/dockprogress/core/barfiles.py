"""Bars as data: TOML files of patterns with named groups, for tools' own progress bars.

A **bar file** describes the bars one tool draws (``--bars FILE``, and the shipped ones in
``dockprogress/bars/*.toml``, which use the same format). :class:`Recognisers` holds the
compiled patterns of several files and reads one frame's text into a
:class:`~dockprogress.core.bars.BarReading`, or ``None``.

Format (every key but ``pattern`` optional; any other key is an error, exit status 2)::

    tool = "mytool"                 # name of the tool (default: the file's stem)
    phases = ["fetch", "unpack"]    # the order the tool goes through them ...
    weights = [3, 1]                # ... and each one's share of the overall (default 1 each)

    [[bar]]
    pattern = 'fetched (?P<n>[\\d.]+)/(?P<total>[\\d.]+) (?P<unit>[kMG]?B)'
    guard = "fetched "              # literal every match contains (default: from the pattern)
    phase = "fetch"                 # which phase this bar fills (default: none)
    description = "fetch"          # when the pattern has no (?P<desc>...) group
    unit = "B"                      # unit of n/total when the text shows none; "B" = bytes
    divisor = 1024                  # what k/M/G mean in this tool's text (default 1000)
    live = true                     # only on a row redrawn in place (default false)

    [[announce]]                    # a line that announces work to come
    pattern = '^Collecting '        # each match is one more item (a bar) of the sequence
    items = 1
    [[announce]]
    pattern = 'Length: (?P<total>\\d+)'   # or the total of the next bar, in ``unit``
    unit = "B"

Named groups of a bar pattern: ``n`` (done), ``total``, ``pct`` (0..100), ``unit`` (the unit
text shown beside the numbers: ``MB``, ``MiB``, ``kB``, ``B``), ``rate`` (``3.8 MB/s``; its own
unit inside), ``desc``, and ``fill`` with ``empty`` for a gauge that shows no figure (npm's
``(#########⠂⠂⠂⠂⠂⠂⠂⠂⠂)``: the percent is the filled share of the gauge's width, approximate
to one cell). A number may carry its own suffix (``15.0M``) and digit separators
(``1,234``). Units are read honestly: ``MiB``/``KiB`` are powers of 1024, ``MB``/``kB``
powers of 1000 unless the file says ``divisor = 1024`` (curl and wget print ``M`` for MiB);
a figure read from a rounded display (a suffix, or a fraction) is ``approximate``.

Speed: every pattern has a **guard** (derived as for milestones by
:func:`~dockprogress.core.prefilter.guard`, or given): one search of all guards at once tells
which patterns can match a row, so a row of plain text costs one regex search, not one per
pattern. A pattern without a usable guard must give one (``guard = ":"``).
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dockprogress.core.bars import BarReading, BarStyle
from dockprogress.core.prefilter import GuardSet, guard, required_literals
from dockprogress.errors import UsageError

_TOOL_STYLE: Final = BarStyle.TOOL
_tuple_new: Final = tuple.__new__  # what a named tuple's own __new__ calls

__all__ = [
    "Announcement",
    "BarFileError",
    "BarSpec",
    "Recognisers",
    "load_bars",
    "parse_bars",
    "read_bar_file",
    "shipped",
]

_FILE_KEYS: Final = frozenset({"tool", "phases", "weights", "bar", "announce"})
_BAR_KEYS: Final = frozenset(
    {"pattern", "guard", "phase", "description", "unit", "divisor", "live"}
)
_ANNOUNCE_KEYS: Final = frozenset({"pattern", "guard", "items", "unit", "divisor"})
_GROUPS: Final = frozenset({"n", "total", "pct", "unit", "rate", "desc", "fill", "empty"})
_AMOUNT: Final = re.compile(r"\s*(\d[\d,]*(?:\.\d+)?)\s*([kKMGTPE]?)(i?)(B|bytes?)?\s*$")
_SCALES: Final = " kMGTPE"
_BYTE_UNITS: Final = frozenset({"B", "iB", "bytes", "byte"})


class BarFileError(UsageError):
    """A bar file that cannot be used (bad TOML, unknown key, invalid pattern)."""


@dataclass(frozen=True, slots=True)
class BarSpec:
    """One ``[[bar]]`` of a file, compiled."""

    tool: str
    regex: re.Pattern[str]
    guard: str
    phase: int  # index in the file's phases, -1 for none
    description: str
    unit: str
    divisor: float
    live: bool
    #: Other text every match contains (beyond ``guard``), tested before the regex runs.
    required: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Announcement:
    """One ``[[announce]]`` of a file, compiled."""

    tool: str
    regex: re.Pattern[str]
    guard: str
    items: int
    unit: str
    divisor: float

    def total(self, match: re.Match[str]) -> float | None:
        if "total" not in self.regex.groupindex or match["total"] is None:
            return None
        return amount(match["total"], "", self.divisor)[0]


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """A tool's sequence: its phases' weights (empty when it declares none)."""

    name: str
    weights: tuple[float, ...]


def amount(text: str, unit: str, divisor: float) -> tuple[float | None, str, bool]:
    """``(value, unit, approximate)`` of a shown number like ``15.0M``, ``1,234`` or ``4.2``.

    ``unit`` is the unit shown beside it (``MB``), used when the number has no suffix.
    """
    if ":" in text:  # a clock, HH:MM:SS(.cc): seconds
        seconds = 0.0
        try:
            for part in text.strip().split(":"):
                seconds = seconds * 60.0 + float(part)
        except ValueError:
            return None, unit, True
        return seconds, "s", "." in text
    match = _AMOUNT.match(text)
    if match is None:
        return None, unit, True
    number, scale, binary, base = match.groups()
    if not scale and not base and unit:  # the unit is written apart: "4.2/62.9 MB"
        unit_match = _AMOUNT.match("0" + unit)
        if unit_match is not None:
            _, scale, binary, base = unit_match.groups()
    value = float(number.replace(",", ""))
    approximate = "." in number
    if scale:
        scale = scale.replace("K", "k")
        factor = (1024.0 if binary else divisor) ** _SCALES.index(scale)
        value *= factor
        approximate = True
    shown = "B" if (base or (binary and scale)) else unit
    return value, shown, approximate


def rate_of(text: str | None, divisor: float) -> float | None:
    if not text or "/s" not in text:
        return None
    value, _, _ = amount(text.split("/s", 1)[0], "", divisor)
    return value


@dataclass(slots=True)
class _Compiled:
    specs: list[BarSpec]
    announcements: list[Announcement]
    tools: dict[str, ToolInfo]


def _compile(source: str, where: str, pattern: Any, given: Any) -> tuple[re.Pattern[str], str]:
    if not isinstance(pattern, str) or not pattern:
        raise BarFileError(f"{source}: {where}: 'pattern' must be a non-empty string")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise BarFileError(f"{source}: {where} ({pattern!r}): invalid pattern: {exc}") from exc
    from dockprogress.core.milestones import _has_nested_repeat, _sre_parse

    if _has_nested_repeat(_sre_parse.parse(pattern), inside_repeat=False):
        raise BarFileError(
            f"{source}: {where} ({pattern!r}): nested unbounded repeats can backtrack "
            "catastrophically; rewrite the pattern without them"
        )
    if given is not None:
        if not isinstance(given, str) or not given:
            raise BarFileError(f"{source}: {where}: 'guard' must be a non-empty string")
        found = given
    else:
        found = guard(pattern)
        if not found:
            raise BarFileError(
                f"{source}: {where} ({pattern!r}): no literal text every match must contain;"
                " add guard = '<text every matching row contains>'"
            )
    return regex, found


def _divisor(source: str, where: str, value: Any) -> float:
    if value is None:
        return 1000.0
    if value not in (1000, 1024):
        raise BarFileError(f"{source}: {where}: 'divisor' must be 1000 or 1024")
    return float(value)


def parse_bars(text: str, *, source: str = "<bars>", tool: str = "bars") -> _Compiled:
    """Compile the TOML ``text`` of a bar file; :class:`BarFileError` says what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BarFileError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise BarFileError(f"{source}: unknown key(s) {', '.join(unknown)}")
    name = data.get("tool", tool)
    phases = data.get("phases", [])
    weights = data.get("weights", [1] * len(phases))
    if not isinstance(name, str) or not name:
        raise BarFileError(f"{source}: 'tool' must be a non-empty string")
    if not isinstance(phases, list) or not all(isinstance(p, str) for p in phases):
        raise BarFileError(f"{source}: 'phases' must be a list of names")
    if (
        not isinstance(weights, list)
        or len(weights) != len(phases)
        or not all(isinstance(w, int | float) and w > 0 for w in weights)
    ):
        raise BarFileError(f"{source}: 'weights' must be one positive number per phase")
    bars = data.get("bar", [])
    if not isinstance(bars, list) or not bars:
        raise BarFileError(f"{source}: no [[bar]] tables")
    specs: list[BarSpec] = []
    for index, raw in enumerate(bars):
        where = f"bar #{index + 1}"
        if not isinstance(raw, dict):
            raise BarFileError(f"{source}: {where}: not a table")
        unknown = sorted(set(raw) - _BAR_KEYS)
        if unknown:
            raise BarFileError(f"{source}: {where}: unknown key(s) {', '.join(unknown)}")
        regex, found = _compile(source, where, raw.get("pattern"), raw.get("guard"))
        groups = set(regex.groupindex)
        if not groups & {"n", "pct"} and not {"fill", "empty"} <= groups:
            raise BarFileError(
                f"{source}: {where}: the pattern needs a group n or pct, or fill and empty"
            )
        extra = sorted(groups - _GROUPS)
        if extra:
            raise BarFileError(
                f"{source}: {where}: unknown group(s) {', '.join(extra)} "
                f"(known: {', '.join(sorted(_GROUPS))})"
            )
        phase = raw.get("phase")
        if phase is not None and phase not in phases:
            raise BarFileError(f"{source}: {where}: phase {phase!r} is not in 'phases'")
        for key in ("description", "unit"):
            if not isinstance(raw.get(key, ""), str):
                raise BarFileError(f"{source}: {where}: {key!r} must be a string")
        if not isinstance(raw.get("live", False), bool):
            raise BarFileError(f"{source}: {where}: 'live' must be true or false")
        specs.append(
            BarSpec(
                name,
                regex,
                found,
                -1 if phase is None else phases.index(phase),
                str(raw.get("description", phase or "")),
                raw.get("unit", ""),
                _divisor(source, where, raw.get("divisor")),
                raw.get("live", False),
                tuple(w for w in required_literals(regex.pattern) if w not in found),
            )
        )
    announcements: list[Announcement] = []
    for index, raw in enumerate(data.get("announce", [])):
        where = f"announce #{index + 1}"
        if not isinstance(raw, dict):
            raise BarFileError(f"{source}: {where}: not a table")
        unknown = sorted(set(raw) - _ANNOUNCE_KEYS)
        if unknown:
            raise BarFileError(f"{source}: {where}: unknown key(s) {', '.join(unknown)}")
        regex, found = _compile(source, where, raw.get("pattern"), raw.get("guard"))
        items = raw.get("items", 0)
        if not isinstance(items, int) or items < 0:
            raise BarFileError(f"{source}: {where}: 'items' must be a whole number")
        announcements.append(
            Announcement(
                name,
                regex,
                found,
                items,
                raw.get("unit", ""),
                _divisor(source, where, raw.get("divisor")),
            )
        )
    info = ToolInfo(name, tuple(float(w) for w in weights))
    return _Compiled(specs, announcements, {name: info})


def load_bars(*paths: str | Path) -> Recognisers:
    """The bar files at ``paths`` (``--bars FILE``), tried before the shipped ones.

    An unreadable or unusable file is a :class:`BarFileError` (CLI exit status 2).
    """
    return Recognisers([read_bar_file(path) for path in paths])


def read_bar_file(path: str | Path) -> _Compiled:
    """Read and compile one bar file; an unreadable one is a :class:`BarFileError` too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BarFileError(f"cannot read bar file {path}: {exc}") from exc
    return parse_bars(text, source=str(path), tool=path.stem)


def shipped() -> list[_Compiled]:
    """The bar files shipped in ``dockprogress/bars/``, by name."""
    folder = importlib.resources.files("dockprogress") / "bars"
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            stem = entry.name[: -len(".toml")]
            found.append(
                parse_bars(entry.read_text(encoding="utf-8"), source=entry.name, tool=stem)
            )
    return found


_SHIPPED: list[_Compiled] = []


class Recognisers:
    """The compiled bar files, tried in order (user files before shipped ones)."""

    __slots__ = (
        "_announce_guards",
        "_by_guard",
        "_guards",
        "announcements",
        "shipped_specs",
        "specs",
        "tools",
        "user_specs",
    )

    def __init__(self, files: Iterable[_Compiled] = (), *, with_shipped: bool = True) -> None:
        compiled = list(files)
        self.user_specs = [spec for c in compiled for spec in c.specs]
        if with_shipped:
            if not _SHIPPED:
                _SHIPPED.extend(shipped())
            compiled += _SHIPPED
        self.specs = [spec for c in compiled for spec in c.specs]
        self.shipped_specs = self.specs[len(self.user_specs) :]
        self.announcements = [a for c in compiled for a in c.announcements]
        self.tools: dict[str, ToolInfo] = {}
        for c in compiled:
            for key, value in c.tools.items():
                self.tools.setdefault(key, value)
        self._by_guard: dict[str, list[BarSpec]] = {}
        for spec in self.specs:
            self._by_guard.setdefault(spec.guard, []).append(spec)
        self._guards = GuardSet(self._by_guard) if self.specs else None
        self._announce_guards = (
            GuardSet(a.guard for a in self.announcements) if self.announcements else None
        )

    def read(self, text: str, live: bool, *, user: bool | None = None) -> BarReading | None:
        """The first spec (in file order) that matches ``text``, as a reading.

        ``user``: only the user's files (``True``), only the shipped ones (``False``), or all.
        """
        guards = self._guards
        if guards is None or guards.search(text) is None:
            return None
        specs = self.specs if user is None else self.user_specs if user else self.shipped_specs
        for spec in specs:
            # (a substring test in C per spec: cheaper than asking the trie which guards;
            # then the rest of the text a match needs, before the regex)
            if spec.guard in text and (live or not spec.live):
                for word in spec.required:
                    if word not in text:
                        break
                else:
                    match = spec.regex.search(text)
                    if match is not None:
                        return _reading(spec, match)
        return None

    def announced(self, text: str) -> list[tuple[Announcement, re.Match[str]]]:
        """The announcements ``text`` makes (usually none: one regex search says so)."""
        guards = self._announce_guards
        if guards is None or guards.search(text) is None:
            return []
        present = guards.present(text)
        found = []
        for item in self.announcements:
            if item.guard in present:
                match = item.regex.search(text)
                if match is not None:
                    found.append((item, match))
        return found


def _reading(spec: BarSpec, match: re.Match[str]) -> BarReading:
    groups = match.groupdict()
    unit_text = groups.get("unit") or spec.unit
    divisor = spec.divisor
    n = total = None
    unit = unit_text
    approximate = False
    if groups.get("n") is not None:
        n, unit, approx = amount(groups["n"], unit_text, divisor)
        approximate |= approx
    if groups.get("total") is not None:
        total, total_unit, approx = amount(groups["total"], unit_text, divisor)
        approximate |= approx
        unit = unit or total_unit
    percent: float | None = None
    pct = groups.get("pct")
    if n is not None and total:
        percent = min(100.0 * n / total, 100.0)
    elif pct is not None:
        percent = min(float(pct.replace(",", ".")), 100.0)
    elif groups.get("fill") is not None:
        filled = len(groups["fill"])
        width = filled + len(groups["empty"] or "")
        if width:
            percent = 100.0 * filled / width
            approximate = True  # to one cell of the gauge
    if percent is not None and pct is not None and approximate:
        # a rounded n/total says less than the tool's own percentage column
        percent = min(float(pct.replace(",", ".")), 100.0)
    desc = groups.get("desc")
    is_bytes = unit in _BYTE_UNITS or (unit.endswith("B") and len(unit) <= 3)
    # BarReading(...) with every field in order, made in C (one per frame).
    return _tuple_new(
        BarReading,
        (
            _TOOL_STYLE,
            (desc.strip() if desc else spec.description) or spec.tool,
            percent,
            n,
            total,
            "B" if is_bytes else unit,
            is_bytes,
            rate_of(groups.get("rate"), divisor),
            None,  # elapsed
            None,  # remaining
            spec.tool,
            spec.phase,
            approximate,
            0,  # base_hint
            None,  # binary
        ),
    )
