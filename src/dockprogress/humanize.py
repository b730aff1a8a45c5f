"""Numbers and text for people: byte sizes, rates, durations, and safe one-line text.

Every display (terminal, plain lines, the ``MessageHandler`` adapter, the web page's server
side) formats with these functions, so that "1.2 GB" means the same thing everywhere.

* Byte sizes use decimal (SI) units, as the docker CLI does: ``1 MB = 1000**2 bytes``.
* Durations read like a clock: ``0:07``, ``1:02``, ``1:02:03``.
* :func:`printable` turns text that came from a container (log lines, tool output,
  engine messages) into one line with no control characters, so it can never move the
  cursor, change colours or clear the screen of whoever reads it.
"""

from __future__ import annotations

import math
import re
import unicodedata

__all__ = [
    "amount",
    "count",
    "duration",
    "printable",
    "rate",
    "size",
    "size_pair",
]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")

# ESC-introduced sequences (CSI, OSC, two-byte escapes) are dropped whole, so that the
# parameters of a colour code do not survive as stray text such as "[31m".
_ESCAPES = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]             # CSI: ESC [ params intermediates final
  | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?  # OSC: ESC ] ... BEL or ST
  | \x1b[@-Z\\-_]                       # two-byte escape (Fe)
  | \x9b[0-?]*[ -/]*[@-~]               # 8-bit CSI
    """,
    re.VERBOSE,
)


def size(num_bytes: float) -> str:
    """A byte count as ``"950 B"``, ``"1.2 MB"``, ``"31 GB"`` (decimal units).

    One decimal below 10 of a unit, none above, which keeps the width steady.
    """
    if not math.isfinite(num_bytes):
        return "?"
    value = float(max(num_bytes, 0.0))
    unit = 0
    # Round before choosing the unit, so 999_999 shows as "1.0 MB", not "1000 kB".
    while unit < len(_UNITS) - 1 and _round_for_display(value) >= 1000:
        value /= 1000
        unit += 1
    if unit == 0:
        return f"{int(value)} B"
    if value < 9.95:
        return f"{value:.1f} {_UNITS[unit]}"
    return f"{value:.0f} {_UNITS[unit]}"


def size_pair(current: float, total: float | None) -> str:
    """Bytes done over bytes in all: ``"1.2 GB / 3.1 GB"``; ``"1.2 GB / ?"`` while unknown."""
    return f"{size(current)} / {'?' if total is None else size(total)}"


def rate(units_per_second: float | None, *, bytes_: bool = True) -> str:
    """A speed: ``"5.2 MB/s"`` for bytes, ``"3.1/s"`` for counts; ``""`` when unknown."""
    if units_per_second is None or not math.isfinite(units_per_second):
        return ""
    if bytes_:
        return f"{size(units_per_second)}/s"
    return f"{amount(units_per_second)}/s"


def duration(seconds: float | None) -> str:
    """Seconds as ``"0:07"``, ``"1:02"`` or ``"1:02:03"``; ``""`` when unknown.

    Rounded up, so an ETA shows ``0:01`` until the work is really done, never ``0:00`` early.
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    whole = math.ceil(seconds - 1e-9)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def amount(value: float) -> str:
    """A count without noise: ``"45"`` for 45.0, ``"45.5"`` for 45.5, ``"3.3"`` for 3.333."""
    if not math.isfinite(value):
        return "?"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def count(current: float, total: float | None) -> str:
    """Items done over items in all: ``"45/100"``; ``"45/?"`` while unknown."""
    return f"{amount(current)}/{'?' if total is None else amount(total)}"


def printable(text: str, *, limit: int = 400) -> str:
    """``text`` as one safe line: escape sequences and control characters removed.

    Tabs, line breaks and other separators become spaces (then runs of spaces shrink to
    one); every other character Python does not call printable (C0, DEL, C1, format and bidi
    characters, unassigned and private-use code points) is dropped. The result is cut to
    ``limit`` characters with a trailing ``…``.
    """
    text = _ESCAPES.sub("", text)
    out: list[str] = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char in "\t\n\r\v\f" or unicodedata.category(char)[0] == "Z":
            out.append(" ")  # line breaks and odd spaces (NBSP, U+2028) separate words
        # Anything else (controls, format and bidi characters, unassigned or private-use
        # code points, lone surrogates) is dropped.
    line = " ".join("".join(out).split())
    if len(line) > limit:
        line = line[: max(limit - 1, 0)] + "…"
    return line


def _round_for_display(value: float) -> float:
    return round(value, 1) if value < 9.95 else round(value)
