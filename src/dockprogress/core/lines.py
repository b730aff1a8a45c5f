"""From a container's output bytes to log lines: UTF-8, line assembly, timestamps, resume.

* :class:`LineAssembler` decodes UTF-8 incrementally (a character split across two reads is
  kept whole) and cuts lines at ``\\n`` (a trailing ``\\r``, as a PTY writes, is dropped).
  A line longer than ``max_line`` characters is cut there and flagged ``truncated``; the rest
  of it, up to its ``\\n``, is discarded, so memory per stream stays bounded.
* :func:`split_timestamp` splits the engine's ``timestamps=true`` prefix (fixed-width RFC 3339
  with nanoseconds, then one space) into integer nanoseconds since the epoch (exact: a float
  would lose the nanoseconds that tell two lines apart when resuming).
* :class:`LogDecoder` is the whole sans-IO pipeline for ``GET /containers/{id}/logs``:
  frames (or raw TTY bytes) → one assembler per stream → :class:`LogLine` items.
* :class:`LogCursor` remembers the last timestamp seen so that a follow broken by a cut
  connection or a daemon restart resumes with ``since=<that time>`` and drops the lines at
  the boundary it had already delivered (``since`` is inclusive).
"""

from __future__ import annotations

import calendar
import codecs
import re
from collections import Counter
from dataclasses import dataclass
from typing import Final

from dockprogress.core.frames import (
    DAEMON_ERROR,
    FrameDecoder,
    RawDecoder,
    StreamChunk,
    StreamDecoder,
)

__all__ = [
    "MAX_LINE",
    "LineAssembler",
    "LogCursor",
    "LogDecoder",
    "LogLine",
    "format_since",
    "split_timestamp",
]

#: Default cap on one line, in characters. Milestone regexes never see more than this.
MAX_LINE: Final = 64 * 1024

_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) "
)


class LineAssembler:
    """Bytes of one stream in, complete lines (without terminator) out."""

    __slots__ = ("_decoder", "_discarding", "_parts", "_size", "max_line", "truncated")

    def __init__(self, *, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._size = 0
        self._discarding = False
        #: How many lines were cut at ``max_line`` so far.
        self.truncated = 0

    def feed(self, data: bytes) -> list[tuple[str, bool]]:
        """``(line, truncated)`` for every line that ``data`` completes."""
        return self._split(self._decoder.decode(data))

    def feed_eof(self) -> list[tuple[str, bool]]:
        """The last line, if the stream ended without a ``\\n``."""
        out = self._split(self._decoder.decode(b"", final=True))
        if self._parts or self._discarding:
            out.append(self._take())
        return out

    def _split(self, text: str) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        start = 0
        while True:
            end = text.find("\n", start)
            if end < 0:
                self._hold(text[start:])
                return out
            self._hold(text[start:end])
            out.append(self._take())
            start = end + 1

    def _hold(self, piece: str) -> None:
        if not piece or self._discarding:
            return
        room = self.max_line - self._size
        if len(piece) > room:
            piece = piece[:room]
            self._discarding = True
        self._parts.append(piece)
        self._size += len(piece)

    def _take(self) -> tuple[str, bool]:
        line = "".join(self._parts)
        truncated = self._discarding
        if truncated:
            self.truncated += 1
        elif line.endswith("\r"):
            line = line[:-1]
        self._parts.clear()
        self._size = 0
        self._discarding = False
        return line, truncated


def split_timestamp(line: str) -> tuple[int | None, str]:
    """``(nanoseconds since the epoch, rest of the line)``; ``(None, line)`` without a prefix."""
    match = _TIMESTAMP.match(line)
    if match is None:
        return None, line
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    seconds = calendar.timegm(
        (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
    )
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos, line[match.end() :]


def format_since(time_ns: int) -> str:
    """The engine's ``since`` parameter for an exact time: ``"<seconds>.<nanoseconds>"``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One log line: its stream, text, engine timestamp (ns) when asked for, and whether cut."""

    stream: int
    text: str
    time_ns: int | None = None
    truncated: bool = False

    @property
    def ts(self) -> float | None:
        """The engine's timestamp in Unix seconds (float), or ``None``."""
        return None if self.time_ns is None else self.time_ns / 1e9

    @property
    def daemon_error(self) -> bool:
        return self.stream == DAEMON_ERROR


class LogDecoder:
    """Sans-IO decoder of a logs response: ``feed(bytes)`` → :class:`LogLine` list.

    ``tty`` selects raw bytes instead of frames; ``timestamps`` splits the prefix the engine
    adds with ``timestamps=true``. A daemon-error frame becomes one ``LogLine`` of stream 3
    (its text is the daemon's message). Raises ``StreamError`` on malformed frames.
    """

    __slots__ = ("_assemblers", "_frames", "max_line", "timestamps")

    def __init__(self, *, tty: bool, timestamps: bool = True, max_line: int = MAX_LINE) -> None:
        self._frames: StreamDecoder = RawDecoder() if tty else FrameDecoder()
        self.timestamps = timestamps
        self.max_line = max_line
        self._assemblers: dict[int, LineAssembler] = {}

    def feed(self, data: bytes) -> list[LogLine]:
        return self._lines(self._frames.decode(data))

    def feed_eof(self) -> list[LogLine]:
        """End of stream: the unterminated last lines; ``StreamError`` inside a frame."""
        out = self._lines(self._frames.flush())
        for stream, assembler in sorted(self._assemblers.items()):
            out.extend(self._line(stream, text, cut) for text, cut in assembler.feed_eof())
        return out

    def _lines(self, chunks: list[StreamChunk]) -> list[LogLine]:
        out: list[LogLine] = []
        for chunk in chunks:
            if chunk.daemon_error:
                message = chunk.data.decode("utf-8", "replace").strip()
                out.append(LogLine(DAEMON_ERROR, message[: self.max_line]))
                continue
            assembler = self._assemblers.get(chunk.stream)
            if assembler is None:
                assembler = self._assemblers[chunk.stream] = LineAssembler(max_line=self.max_line)
            out.extend(
                self._line(chunk.stream, text, cut) for text, cut in assembler.feed(chunk.data)
            )
        return out

    def _line(self, stream: int, text: str, truncated: bool) -> LogLine:
        if not self.timestamps:
            return LogLine(stream, text, None, truncated)
        time_ns, rest = split_timestamp(text)
        return LogLine(stream, rest, time_ns, truncated)


class LogCursor:
    """The last engine timestamp delivered, and the lines delivered at exactly that time.

    Call :meth:`accept` for every line in stream order; it says whether the line is new.
    After a break, :meth:`resume` gives the ``since`` value to ask from and arms the boundary
    filter: lines older than the last time are dropped, and lines at the last time are
    dropped once for each identical line already delivered at that time.
    """

    __slots__ = ("_at_last", "_boundary", "last_ns")

    def __init__(self) -> None:
        self.last_ns: int | None = None
        self._at_last: list[str] = []
        self._boundary: Counter[str] | None = None

    def accept(self, line: LogLine) -> bool:
        time_ns = line.time_ns
        if time_ns is None:
            return True
        boundary = self._boundary
        if boundary is not None and self.last_ns is not None:
            if time_ns < self.last_ns:
                return False
            if time_ns == self.last_ns and boundary[line.text] > 0:
                boundary[line.text] -= 1
                return False
            if time_ns > self.last_ns:
                self._boundary = None
        if self.last_ns is None or time_ns > self.last_ns:
            self.last_ns = time_ns
            self._at_last = [line.text]
        else:
            self._at_last.append(line.text)
        return True

    def resume(self) -> str | None:
        """The ``since`` parameter for the next request (``None``: from the beginning)."""
        if self.last_ns is None:
            return None
        self._boundary = Counter(self._at_last)
        return format_since(self.last_ns)
