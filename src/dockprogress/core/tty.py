"""Sans-IO terminal-stream parser: raw TTY bytes in any chunking → screen-row frames out.

A program that draws progress bars on a terminal (tqdm, rich, wget, …) never writes "lines":
it writes text, then moves the cursor back (``\\r``, ``ESC[A``, ``ESC[2K``) and writes over
it. :class:`TtyParser` follows just enough of that to know *what text was on which screen
row* each time a row was finished or overwritten, and hands each such **frame** out.

Contract
--------
* ``feed(data)`` takes bytes in any chunking and returns the frames completed by them;
  ``feed_eof()`` returns the rest, including the last, unterminated frame. The frames are the
  same whatever the chunking: a UTF-8 character, an escape sequence, a ``\\r\\n`` or a ``45%``
  split across two reads is handled exactly as if it had arrived whole (the tail that might
  still grow is held back until the next ``feed``).
* ``flush_partial()`` returns the text written so far on the current row *without*
  consuming it. tqdm writes ``\\r`` + line and then waits for the next update, so a completed
  frame only shows when the next update starts; an adapter calls ``flush_partial()`` when the
  stream goes idle (~0.1 s) to show the latest state without waiting. Its result depends on
  timing, so it is never part of the chunking-invariant sequence.
* A frame of only spaces is handed out too: it is how tqdm erases a finished inner bar.
* Rows are counted from the row the output started on (0), going down with each newline and
  up with cursor-up (never above 0). A row that has been redrawn (``\\r`` over text,
  ``ESC[2K``, or the cursor moving back up into it) is **live**: that is what a progress bar
  does, and what plain text printed once does not.

What is understood
------------------
* Text is decoded with an incremental UTF-8 decoder (invalid bytes become U+FFFD).
* ``\\r\\n`` (a PTY's newline) and ``\\n`` end a row and move down; a lone ``\\r`` ends the
  frame as an overwrite; backspace removes one character; other C0 controls are dropped.
* CSI sequences: ``A``/``F`` (up), ``B``/``E`` (down), ``K`` (erase in line: ``1``/``2``
  erase the row), everything else (colours, cursor shape, screen clears) is dropped.
  ``ESC 7``/``ESC 8`` save and restore the row; ``ESC M`` is cursor-up, ``ESC D``/``ESC E``
  go down. OSC/DCS strings (window titles, hyperlinks) and charset designations
  (``ESC ( B``) are dropped.
* Malformed or oversized sequences (a CSI with more than 64 parameter bytes, an OSC longer
  than 8192 characters) are not errors on a terminal either: the lone ``ESC`` is dropped and
  what follows is text. That keeps every buffer bounded.
* A row longer than ``max_line`` characters is cut at ``max_line``.
"""

from __future__ import annotations

import codecs
import re
from enum import Enum
from itertools import repeat
from typing import Final, NamedTuple

__all__ = ["DEFAULT_MAX_LINE", "Frame", "FrameEnd", "TtyParser"]

DEFAULT_MAX_LINE: Final = 4096
_MAX_ROWS_TRACKED: Final = 4096

# Colours and other SGR attributes are the most frequent sequence by far (rich wraps every
# column in them); removing them in one C-level pass keeps the Python loop to what matters.
# (Possessive: backing off a run of parameter bytes can never find the ``m``, so this matches
# exactly what the plain form does, a quarter faster.)
_SGR: Final = re.compile(r"\x1b\[[0-9;:]{0,64}+m")
# The sequences that change nothing here, whatever the state: SGRs, erase to the end of the
# row (``ESC[K``, ``ESC[0K``: the row is written over anyway) and private modes such as
# hiding the cursor (``ESC[?25l``). Each matches exactly what _TOKEN matches at its ESC.
_NO_OP: Final = re.compile(r"\x1b\[(?:[0-9;:]{0,64}+m|0?K|\?[0-9;]{1,62}+[hl])")
_NO_OP_SPLIT: Final = re.compile(f"({_NO_OP.pattern})")
# An escape sequence left unfinished right before an SGR (a lone ESC, a CSI cut short, an
# OSC/DCS string without its terminator): only ever hostile or broken output.
# Or SGRs between a CR and a LF: taken out, they would join the two into a newline.
_OPEN_BEFORE_SGR: Final = re.compile(
    r"\x1b(?:\[[0-?]*+[ -/]*+|[ -/]++|[\]PX^_][^\x07\x1b]*+)?\x1b\[[0-9;:]{0,64}+m"
    r"|\r(?:\x1b\[[0-9;:]{0,64}+m)++\n"
)
# The same before a NUL, in a text whose no-op sequences were each replaced by one (see
# TtyParser._without_no_ops).
_OPEN_BEFORE_MARK: Final = re.compile(
    r"\x1b(?:\[[0-?]*+[ -/]*+|[ -/]++|[\]PX^_][^\x07\x1b\x00]*+)?\x00"
)
# (Two searches: each led by one character is three times as fast as one led by either.)
_MARK_BETWEEN_CR_LF: Final = re.compile(r"\r\x00++\n")
#: How many distinct no-op sequences a parser removes with ``str.replace`` (a program
#: writes a handful).
_MAX_KNOWN_NO_OPS: Final = 16
# What rich writes before redrawing N rows: erase the row, then N-1 times up one and erase.
_ERASE_UP: Final = re.compile(r"\x1b\[2K(?:\x1b\[1A\x1b\[2K)*+")
# rich redrawing one row (pip's download bar): the row's text, \r, erase the row. The \r
# after text has finished the row as an overwrite and marked it live; the erase then
# changes nothing, unless a \n follows (without the erase, \r\n would be a newline). With
# no escape sequence but those of _ERASE_UP in the text, the character before the \r is
# the row's text unless it is a \r, \n, or the K or A that ends an erase or a cursor-up.
_ESC_BUT_ERASE_UP: Final = re.compile(r"\x1b(?!\[2K|\[1A)")
_CR_ERASE: Final = re.compile(r"\r(?<=[^\r\nAK]\r)\x1b\[2K(?!\x1b\[1A|\n)")

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
#: Every byte but the controls other than \r, \n and ESC: what ``bytes.translate`` deletes
#: to leave only those.
_PLAIN_BYTES: Final = bytes(b for b in range(256) if (0x20 <= b != 0x7F) or b in (0x0A, 0x0D, 0x1B))
_ODD_CONTROL: Final = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
_ODD_CONTROL_BUT_ESC: Final = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")
_TOKEN: Final = re.compile(
    r"\r\n"
    r"|[\r\n\x08]"
    r"|\x1b\[(?P<params>[0-?]{0,64})[ -/]{0,8}(?P<final>[@-~])"
    r"|\x1b[\]PX^_][^\x07\x1b]{0,8192}(?:\x07|\x1b\\)"
    r"|\x1b[ -/]{1,8}[0-~]"
    r"|\x1b(?P<short>[0-~])"
    r"|[\x00-\x07\x09\x0b\x0c\x0e-\x1f\x7f]"
)

# A tail that may still become a longer token once the next bytes arrive: a lone ``\r``
# (could be a PTY's ``\r\n``) or the start of an escape sequence. Bounded like _TOKEN, so an
# oversized sequence is treated the same whether it arrived whole or in pieces.
_OPEN_TAIL: Final = re.compile(
    r"(?:\r|\x1b(?:\[[0-?]{0,64}[ -/]{0,8}|[\]PX^_][^\x07\x1b]{0,8192}\x1b?|[ -/]{1,8})?)\Z"
)
_OPEN_TAIL_REACH: Final = 8192 + 16


def _open_tail(text: str) -> int:
    """Where ``_OPEN_TAIL`` would first match in ``text``'s last ``_OPEN_TAIL_REACH``
    characters (``len(text)`` if nowhere), without trying it at every position.

    Such a tail contains no ESC but its first and, for an OSC/DCS string, its very last
    character: it can only start at the last ESC, at the ESC before a final ESC, or at a
    final ``\r``. Those few candidates are tried leftmost first, as a search would.
    """
    end = len(text)
    floor = max(0, end - _OPEN_TAIL_REACH)
    last = text.rfind("\x1b", floor)
    if last >= 0:
        if last == end - 1:
            before = text.rfind("\x1b", floor, last)
            if before >= 0 and _OPEN_TAIL.match(text, before) is not None:
                return before
        if _OPEN_TAIL.match(text, last) is not None:
            return last
    if text.endswith("\r"):
        return end - 1
    return end


class FrameEnd(Enum):
    """Why a frame was handed out."""

    OVERWRITE = "overwrite"  # a lone \r, an erase of the row, or the cursor leaving the row
    NEWLINE = "newline"  # \n or \r\n: the row scrolled into history (or the cursor moved down)
    EOF = "eof"  # the last, unterminated frame
    PARTIAL = "partial"  # flush_partial(): the row as it is now, still being written


class Frame(NamedTuple):
    """The text of screen row ``row`` at one moment, escape sequences removed.

    (A named tuple: one is made per frame, and it is three times cheaper than a dataclass.)
    """

    row: int
    text: str
    end: FrameEnd
    live: bool  # the row has been redrawn in place at least once (see module docstring)


_OVERWRITE: Final = FrameEnd.OVERWRITE
_tuple_new: Final = tuple.__new__  # what a named tuple's own __new__ calls
_NEWLINE: Final = FrameEnd.NEWLINE


class TtyParser:
    """Raw terminal bytes in, :class:`Frame` out. Does no I/O."""

    __slots__ = (
        "_buffer",
        "_decoder",
        "_length",
        "_live",
        "_no_ops",
        "_pending",
        "_saved_row",
        "max_line",
        "row",
    )

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError("max_line must be positive")
        self.max_line = max_line
        self.row = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._buffer: list[str] = []
        self._length = 0
        self._live: set[int] = set()
        self._saved_row = 0
        self._no_ops: list[str] = []  # those seen so far, up to _MAX_KNOWN_NO_OPS

    # ----------------------------------------------------------------- public

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data`` (possibly none)."""
        text = self._decoder.decode(data)
        # A control character other than \r, \n and ESC is a byte below 0x20 (or 0x7f) of
        # ``data`` (UTF-8 puts none inside a character): told from the bytes in one C pass,
        # where a regex over the decoded text takes ten times as long.
        odd = bool(data.translate(None, _PLAIN_BYTES))
        pending = self._pending
        if pending:
            text = pending + text
            self._pending = ""
            odd = odd or _ODD_CONTROL_BUT_ESC.search(pending) is not None
        if not text:
            return []
        held = _open_tail(text)
        if held < len(text):
            self._pending = text[held:]
            text = text[:held]
        out: list[Frame] = []
        self._process(text, out, odd)
        return out

    def feed_eof(self) -> list[Frame]:
        """The remaining frames, the last unterminated one included. The parser is reset."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        out: list[Frame] = []
        if text:
            self._process(text, out, _ODD_CONTROL_BUT_ESC.search(text) is not None)
        self._commit(FrameEnd.EOF, out)
        return out

    def flush_partial(self) -> Frame | None:
        """The current row as written so far (not consumed), or ``None`` if it is blank."""
        if not self._length:
            return None
        text = "".join(self._buffer)
        self._buffer = [text]
        if not text.strip():
            return None
        return Frame(self.row, text, FrameEnd.PARTIAL, self.row in self._live)

    # -------------------------------------------------------------- internals

    def _process(self, text: str, out: list[Frame], odd: bool) -> None:
        """``odd``: ``text`` may hold a control character other than CR, LF and ESC."""
        # (One character: a search for ESC alone runs at memchr speed, where "\x1b[" takes
        # ten times as long on text with wide characters.)
        if "\x1b" in text:
            # (Not where an SGR follows an unfinished sequence: its ESC ends that sequence
            # on a terminal, and taking the SGR out would join the two.)
            if not odd:
                text = self._without_no_ops(text)
                if "\r\x1b[2K" in text:  # one row's redraws: one segment
                    collapsed = _CR_ERASE.sub("\r", text)
                    if len(collapsed) < len(text) and _ESC_BUT_ERASE_UP.search(text) is None:
                        text = collapsed
            elif _OPEN_BEFORE_SGR.search(text) is None:
                text = _SGR.sub("", text)
        # Text between escape sequences with only \r and \n in it (all of tqdm's and rich's
        # output) goes through str.split; the rest through the token loop. Same frames
        # either way. ``odd`` tells whether any segment may need the loop.
        pos = 0
        end = len(text)
        find = text.find
        startswith = text.startswith
        while pos < end:
            esc = find("\x1b", pos)
            stop = end if esc < 0 else esc
            if stop > pos:
                segment = text[pos:stop]
                if not odd or _ODD_CONTROL.search(segment) is None:
                    self._plain(segment, out)
                else:
                    self._tokens(segment, out)
            if esc < 0:
                return
            # rich redraws every row with ESC[2K (erase the row) and ESC[1A (up one): those
            # two go straight to their effect; any other sequence through the token regex.
            if startswith("\x1b[2K", esc):
                run = _ERASE_UP.match(text, esc)
                assert run is not None
                row = self.row
                live = self._live
                if row not in live:
                    self._mark_live(row)
                if self._length:
                    self._commit(_OVERWRITE, out)
                pos = run.end()
                for _ in range((pos - esc - 4) // 8):  # each ESC[1A ESC[2K: up, live row
                    if row:
                        row -= 1
                    if row not in live:
                        self._mark_live(row)
                self.row = row
                continue
            if startswith("\x1b[1A", esc):
                self._move(-1, out)
                pos = esc + 4
                continue
            match = _TOKEN.match(text, esc)
            if match is None:  # a lone or malformed ESC: dropped, what follows is text
                pos = esc + 1
                continue
            self._escape(match, out)
            pos = match.end()

    def _without_no_ops(self, text: str) -> str:
        """``text`` without its no-op sequences (``_NO_OP``), or as it is when one follows
        an unfinished sequence (its ESC ends that sequence on a terminal, and taking it out
        would join the two). ``text`` holds no NUL.

        A program writes the same few over and over (rich: ``ESC[0m`` and four colours,
        300 in a 4 KiB read). Each one already seen is replaced by a NUL in one
        ``str.replace`` pass, and a regex replaces the rest. The search for an unfinished
        sequence before a NUL then only tries the ESCs left (a few erases and cursor
        moves, not 300 colours), and the NULs go in one more pass. Such a sequence holds
        one ESC, its first character, so the matches never overlap and the order of the
        passes changes none; a NUL ends every run of parameter bytes, so none makes a new
        sequence. The result is what one ``_NO_OP.sub`` pass gives.
        """
        marked = text
        known = self._no_ops
        for sequence in known:
            marked = marked.replace(sequence, "\x00")
        if "\x1b" in marked:
            if len(known) < _MAX_KNOWN_NO_OPS:
                parts = _NO_OP_SPLIT.split(marked)  # text, sequence, text, …: one pass
                if len(parts) > 1:
                    for sequence in set(parts[1::2]):  # replaced from the next read on
                        if len(known) < _MAX_KNOWN_NO_OPS:
                            known.append(sequence)
                    marked = "\x00".join(parts[::2])
            else:
                marked = _NO_OP.sub("\x00", marked)
        if (
            marked is text
            or _OPEN_BEFORE_MARK.search(marked) is not None
            or _MARK_BETWEEN_CR_LF.search(marked) is not None
        ):
            return text
        return marked.replace("\x00", "")

    def _plain(self, text: str, out: list[Frame]) -> None:
        """``text`` has no control characters but ``\r`` and ``\n``.

        While nothing is buffered, a finished row becomes its frame directly (the same frame
        ``_append`` + ``_commit`` would give, without the buffer round trip).
        """
        lines = text.split("\n")
        last = len(lines) - 1
        cap = self.max_line
        live = self._live
        for index, written in enumerate(lines):
            line = written
            newline = index < last
            if newline and line[-1:] == "\r":
                line = line[:-1]  # a PTY's \r\n: not an overwrite
            if "\r" in line:
                parts = line.split("\r")
                line = parts.pop()
                # Each part is ended by a lone \r: an overwrite. The first completes what is
                # buffered; the rest are whole frames of this row (tqdm's every redraw).
                if self._length:
                    first = parts.pop(0)
                    if first:
                        self._append(first)
                    self._mark_live(self.row)
                    self._commit(_OVERWRITE, out)
                if len(parts) == 1:
                    part = parts[0]
                    if part:
                        row = self.row
                        if row not in live:
                            self._mark_live(row)
                        out.append(Frame(row, part[:cap], _OVERWRITE, True))
                    parts = []
                elif "" in parts:
                    parts = [part for part in parts if part]
                if parts:
                    row = self.row
                    if row not in live:
                        self._mark_live(row)
                    # (each part is a piece of the row as written: none is longer)
                    if len(written) > cap and max(map(len, parts)) > cap:
                        parts = [part[:cap] for part in parts]
                    count = len(parts)
                    out.extend(  # Frame(row, part, _OVERWRITE, True) each, made in C
                        map(
                            _tuple_new,
                            repeat(Frame, count),
                            zip(repeat(row, count), parts, repeat(_OVERWRITE), repeat(True)),
                        )
                    )
            if newline:
                row = self.row
                if not self._length:
                    if line:
                        if len(line) > cap:
                            line = line[:cap]
                        out.append(Frame(row, line, _NEWLINE, row in live))
                else:
                    if line:
                        self._append(line)
                    self._commit(_NEWLINE, out)
                self.row = row + 1
            elif line:
                self._append(line)

    def _tokens(self, text: str, out: list[Frame]) -> None:
        """The general path: every control character and escape sequence in ``text``."""
        search = _CONTROL.search
        token_at = _TOKEN.match
        pos = 0
        end = len(text)
        while pos < end:
            found = search(text, pos)
            if found is None:
                break
            start = found.start()
            if start > pos:
                self._append(text[pos:start])
            match = token_at(text, start)
            if match is None:  # a lone or malformed ESC: dropped, what follows is text
                pos = start + 1
                continue
            pos = match.end()
            token = match.group()
            first = token[0]
            if first == "\r":
                if len(token) == 2:
                    self._commit(FrameEnd.NEWLINE, out)
                    self.row += 1
                elif self._length:
                    self._mark_live(self.row)
                    self._commit(FrameEnd.OVERWRITE, out)
            elif first == "\n":
                self._commit(FrameEnd.NEWLINE, out)
                self.row += 1
            elif first == "\x08":
                self._backspace()
            elif first == "\x1b":
                self._escape(match, out)
            # anything else (BEL, TAB) is dropped
        if pos < end:
            self._append(text[pos:])

    def _escape(self, match: re.Match[str], out: list[Frame]) -> None:
        """A whole escape sequence matched by ``_TOKEN``."""
        final = match.group("final")
        if final is not None:
            self._csi(match.group("params"), final, out)
        else:
            short = match.group("short")
            if short is not None:
                self._short_escape(short, out)
        # anything else (OSC strings, charsets) is dropped

    def _append(self, piece: str) -> None:
        room = self.max_line - self._length
        if room <= 0:
            return
        if len(piece) > room:
            piece = piece[:room]
        self._buffer.append(piece)
        self._length += len(piece)

    def _backspace(self) -> None:
        if self._length:
            text = "".join(self._buffer)[:-1]
            self._buffer = [text] if text else []
            self._length = len(text)

    def _commit(self, end: FrameEnd, out: list[Frame]) -> None:
        if not self._length:
            return
        text = "".join(self._buffer)
        self._buffer = []
        self._length = 0
        out.append(Frame(self.row, text, end, self.row in self._live))

    def _move(self, delta: int, out: list[Frame]) -> None:
        self._commit(FrameEnd.NEWLINE if delta > 0 else FrameEnd.OVERWRITE, out)
        self.row = max(0, self.row + delta)
        if delta <= 0:
            self._mark_live(self.row)

    def _mark_live(self, row: int) -> None:
        live = self._live
        if row not in live:
            if len(live) >= _MAX_ROWS_TRACKED:
                live.discard(min(live))
            live.add(row)

    def _csi(self, params: str, final: str, out: list[Frame]) -> None:
        if final in "ABEFK":
            try:
                count = int(params.split(";", 1)[0] or 0)
            except ValueError:  # private/odd parameters (e.g. ``?``): not a movement we know
                return
            if final == "K":
                if count in (1, 2):
                    self._mark_live(self.row)
                    self._commit(FrameEnd.OVERWRITE, out)
                return
            count = max(count, 1)
            self._move(-count if final in "AF" else count, out)

    def _short_escape(self, code: str, out: list[Frame]) -> None:
        if code == "M":
            self._move(-1, out)
        elif code in "DE":
            self._move(1, out)
        elif code == "7":
            self._saved_row = self.row
        elif code == "8":
            self._move(self._saved_row - self.row, out)
