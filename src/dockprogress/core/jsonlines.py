"""Incremental decoder for newline-delimited JSON (the engine's pull/push/build streams).

Sans-IO: bytes in, JSON objects (``dict``) out, nothing read or written here.

* :meth:`JsonLinesDecoder.decode` takes any chunk of bytes (a chunk is not a line: it may hold
  half a line, several lines, or a UTF-8 character cut in two) and returns the objects of the
  lines it completed. A partial line is kept until its newline arrives ("need more data").
* :meth:`JsonLinesDecoder.flush` is the end of the stream: the last line, even without its
  newline, is decoded then.
* Lines end with ``\\n``; a ``\\r`` before it (the engine writes ``\\r\\n``) and surrounding
  blanks are stripped; empty lines are skipped.

Malformed input is a different outcome from "need more data":

* a line that is not JSON, or is JSON but not an object, is *junk*. With ``strict=False``
  (the default) it is skipped and counted in :attr:`JsonLinesDecoder.junk`, its text kept in
  :attr:`JsonLinesDecoder.last_junk` (a proxy or a daemon log line interleaved with the
  stream must not end a pull that the engine is still carrying out). With ``strict=True`` it
  raises :class:`~dockprogress.errors.StreamError`.
* a line longer than ``max_line`` bytes always raises :class:`StreamError`: the buffer has a
  cap, so a stream that never sends a newline cannot grow memory without bound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from dockprogress.errors import StreamError

__all__ = ["DEFAULT_MAX_LINE", "JsonLinesDecoder"]

#: The longest line accepted, in bytes. The engine's longest pull messages (errors naming a
#: URL) are well under 4 KiB; 1 MiB leaves room for ``aux`` payloads of other streams.
DEFAULT_MAX_LINE: Final = 1 << 20

_loads = json.loads
# json.loads(line) for a line starting with '{"' (every engine message) is exactly: decode as
# UTF-8 with surrogatepass (what its encoding detection picks for such a line), scan one value
# from 0, and fail unless it ends the line (the line is stripped). Done here without the
# detection and the wrappers: a third of the decoder's cost per message.
_DECODER: Final = json.JSONDecoder()  # json.loads' own decoder is built the same way
_scan_once: Callable[[str, int], tuple[Any, int]] = getattr(_DECODER, "scan_once")  # noqa: B009


class JsonLinesDecoder:
    """Bytes of a JSON-lines stream in, one ``dict`` per complete line out."""

    __slots__ = ("_buffer", "junk", "last_junk", "lines", "max_line", "strict")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE, strict: bool = False) -> None:
        self.max_line = max_line
        self.strict = strict
        self._buffer = b""
        #: Lines decoded into objects so far.
        self.lines = 0
        #: Lines skipped as junk so far (``strict=False``).
        self.junk = 0
        self.last_junk: str | None = None

    def decode(self, data: bytes | str) -> list[dict[str, Any]]:
        """Feed one chunk; return the objects of the lines it completed (maybe none)."""
        if isinstance(data, str):  # docker-py hands a non-chunked (error) body over as text
            data = data.encode()
        if not data:
            return []
        if not self._buffer and data.find(b"\n") == len(data) - 1:
            # The usual chunk: exactly one whole line (the engine writes one per chunk), and
            # the usual line, an object that fits: _decode_line's first case, written out.
            line = data.strip()
            if line[:2] == b'{"' and len(data) <= self.max_line:
                try:
                    text = line.decode("utf-8", "surrogatepass")
                    value, end = _scan_once(text, 0)
                except (ValueError, StopIteration):
                    value = end = None
                if end is not None and end == len(text) and isinstance(value, dict):
                    self.lines += 1
                    return [value]
            out: list[dict[str, Any]] = []
            self._decode_line(data, out)
            return out
        buffer = self._buffer + data if self._buffer else data
        if b"\n" not in data:
            self._check_cap(buffer)
            self._buffer = buffer
            return []
        *complete, rest = buffer.split(b"\n")
        self._check_cap(rest)
        self._buffer = rest
        out = []
        for line in complete:
            self._decode_line(line, out)
        return out

    def flush(self) -> list[dict[str, Any]]:
        """End of stream: decode what is left, even without a final newline."""
        rest, self._buffer = self._buffer, b""
        out: list[dict[str, Any]] = []
        self._decode_line(rest, out)
        return out

    def _check_cap(self, pending: bytes) -> None:
        if len(pending) > self.max_line:
            self._buffer = b""
            raise StreamError(
                f"JSON-lines stream sent a line longer than {self.max_line} bytes without a "
                "newline; is this really an engine stream?"
            )

    def _decode_line(self, line: bytes, out: list[dict[str, Any]]) -> None:
        # (``line`` may still end with its newline: the strip below removes it)
        if len(line) > self.max_line and len(line.rstrip(b"\n")) > self.max_line:
            raise StreamError(f"JSON-lines stream sent a line longer than {self.max_line} bytes")
        line = line.strip()
        if not line:
            return
        value: Any
        try:
            if line[:2] == b'{"':
                text = line.decode("utf-8", "surrogatepass")
                value, end = _scan_once(text, 0)
                if end != len(text):
                    value = None  # json.loads: "Extra data"
            else:
                value = _loads(line)
        except (ValueError, StopIteration):  # JSONDecodeError and UnicodeDecodeError are
            value = None  # ValueErrors; StopIteration is the scanner's "no value here"
        if isinstance(value, dict):
            self.lines += 1
            out.append(value)
            return
        text = line.decode("utf-8", "replace")
        if self.strict:
            raise StreamError(f"not a JSON object in a JSON-lines stream: {text[:200]!r}")
        self.junk += 1
        self.last_junk = text[:200]
