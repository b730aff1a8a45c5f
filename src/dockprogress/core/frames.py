"""Decoders for the two shapes of a container's output stream: multiplexed frames and raw TTY.

Without a TTY the engine wraps every write in an 8-byte header (``docker logs``, ``attach``,
non-TTY ``exec``)::

    [stream type: 1 byte][0, 0, 0][payload size: uint32 big endian][payload]

Stream types: 0 stdin, 1 stdout, 2 stderr, 3 = an error of the daemon itself (e.g.
"Error grabbing logs"). With a TTY the stream is raw bytes, stdout and stderr merged.

Both decoders have the same sans-IO interface: :meth:`decode` takes whatever bytes arrived
and returns the complete :class:`StreamChunk` items in order (buffering a partial frame:
"need more data"); :meth:`flush` is called at the end of the stream. A header that is not a
frame header, or a frame bigger than the cap, is *malformed* and raises
:class:`~dockprogress.errors.StreamError`; a stream that ends inside a frame raises it at
:meth:`flush`. This module is the only place the frame header is parsed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Protocol

from dockprogress.errors import StreamError

__all__ = [
    "DAEMON_ERROR",
    "HEADER_SIZE",
    "MAX_FRAME",
    "STDERR",
    "STDIN",
    "STDOUT",
    "FrameDecoder",
    "RawDecoder",
    "StreamChunk",
    "StreamDecoder",
]

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
DAEMON_ERROR: Final = 3

HEADER_SIZE: Final = 8
#: Largest payload accepted in one frame. The daemon writes at most one log line (split at
#: 16 KiB) or one read of a process's output per frame; 1 MiB leaves ample room.
MAX_FRAME: Final = 1 << 20

_HEADER: Final = struct.Struct(">BxxxL")


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """Payload bytes of one stream (``STDOUT``, ``STDERR``, or ``DAEMON_ERROR``)."""

    stream: int
    data: bytes

    @property
    def daemon_error(self) -> bool:
        return self.stream == DAEMON_ERROR


class StreamDecoder(Protocol):
    """What both decoders offer: bytes in, chunks out."""

    def decode(self, data: bytes) -> list[StreamChunk]: ...

    def flush(self) -> list[StreamChunk]: ...


class FrameDecoder:
    """Incremental decoder of the engine's 8-byte multiplexed frames."""

    __slots__ = ("_buffer", "max_frame")

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def decode(self, data: bytes) -> list[StreamChunk]:
        """Every frame completed by ``data``; raises ``StreamError`` on a malformed header."""
        buffer = self._buffer
        buffer += data
        chunks: list[StreamChunk] = []
        offset = 0
        size = len(buffer)
        while size - offset >= HEADER_SIZE:
            # The three padding bytes must be zero: anything else is not a frame stream
            # (for instance a TTY container's raw output read as frames by mistake).
            if buffer[offset + 1] or buffer[offset + 2] or buffer[offset + 3]:
                raise StreamError(
                    f"not a multiplexed frame header: {bytes(buffer[offset : offset + 8])!r}"
                )
            stream, length = _HEADER.unpack_from(buffer, offset)
            if stream > DAEMON_ERROR:
                raise StreamError(f"unknown stream type {stream} in a frame header")
            if length > self.max_frame:
                raise StreamError(f"frame of {length} bytes exceeds the cap of {self.max_frame}")
            end = offset + HEADER_SIZE + length
            if end > size:
                break
            if length:
                chunks.append(StreamChunk(stream, bytes(buffer[offset + HEADER_SIZE : end])))
            offset = end
        del buffer[:offset]
        return chunks

    def flush(self) -> list[StreamChunk]:
        """End of stream: raises ``StreamError`` if it stopped inside a frame."""
        if self._buffer:
            held = len(self._buffer)
            self._buffer.clear()
            raise StreamError(f"stream ended inside a frame ({held} bytes of it received)")
        return []


class RawDecoder:
    """Pass-through for a TTY stream: every byte is stdout, nothing is held back."""

    __slots__ = ()

    def decode(self, data: bytes) -> list[StreamChunk]:
        return [StreamChunk(STDOUT, bytes(data))] if data else []

    def flush(self) -> list[StreamChunk]:
        return []
