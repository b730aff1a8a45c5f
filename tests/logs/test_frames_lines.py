"""The frame decoder, line assembly, timestamps and the resume cursor (sans-IO)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockprogress.core.frames import DAEMON_ERROR, STDERR, STDOUT, FrameDecoder, RawDecoder
from dockprogress.core.lines import (
    LineAssembler,
    LogCursor,
    LogDecoder,
    LogLine,
    format_since,
    split_timestamp,
)
from dockprogress.errors import StreamError


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def decode_all(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    out = []
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        out += [(c.stream, c.data) for c in decoder.decode(data[last:cut])]
        last = cut
    out += [(c.stream, c.data) for c in decoder.flush()]
    return out


def test_frames_whole_and_byte_by_byte() -> None:
    data = frame(STDOUT, b"one\n") + frame(STDERR, b"two\n") + frame(DAEMON_ERROR, b"boom")
    expected = [(STDOUT, b"one\n"), (STDERR, b"two\n"), (DAEMON_ERROR, b"boom")]
    assert decode_all(FrameDecoder(), data, []) == expected
    assert decode_all(FrameDecoder(), data, list(range(1, len(data)))) == expected


def test_daemon_error_chunk_is_flagged() -> None:
    (chunk,) = FrameDecoder().decode(frame(DAEMON_ERROR, b"Error grabbing logs: x"))
    assert chunk.daemon_error
    assert chunk.data == b"Error grabbing logs: x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00\x01\x00\x00\x00\x00\x01x", "not a multiplexed frame header"),
        (b"\x07\x00\x00\x00\x00\x00\x00\x01x", "unknown stream type 7"),
        (struct.pack(">BxxxL", 1, 1 << 30), "exceeds the cap"),
    ],
)
def test_malformed_header_is_an_error(data: bytes, message: str) -> None:
    with pytest.raises(StreamError, match=message):
        FrameDecoder().decode(data)


def test_partial_frame_waits_then_fails_at_eof() -> None:
    decoder = FrameDecoder()
    assert decoder.decode(frame(STDOUT, b"hello")[:7]) == []
    assert decoder.pending == 7
    with pytest.raises(StreamError, match="inside a frame"):
        decoder.flush()


def test_raw_decoder_passes_bytes_through() -> None:
    decoder = RawDecoder()
    assert [(c.stream, c.data) for c in decoder.decode(b"\x01\x00abc")] == [
        (STDOUT, b"\x01\x00abc")
    ]
    assert decoder.decode(b"") == []
    assert decoder.flush() == []


@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 3]), st.binary(min_size=1, max_size=40)), max_size=12
    ),
    st.lists(st.integers(min_value=0, max_value=600), max_size=20),
)
def test_any_split_gives_the_same_frames(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = b"".join(frame(s, p) for s, p in frames)
    cuts = [c for c in cuts if c <= len(data)]
    assert decode_all(FrameDecoder(), data, cuts) == frames


def test_utf8_split_across_reads_stays_whole() -> None:
    assembler = LineAssembler()
    data = "héllo wörld\r\nsecond".encode()
    lines = []
    for i in range(len(data)):
        lines += assembler.feed(data[i : i + 1])
    lines += assembler.feed_eof()
    assert lines == [("héllo wörld", False), ("second", False)]


def test_line_cap_truncates_and_discards_the_rest() -> None:
    assembler = LineAssembler(max_line=10)
    lines = assembler.feed(b"x" * 25 + b"\nshort\n")
    assert lines == [("x" * 10, True), ("short", False)]
    assert assembler.truncated == 1
    # the cap holds while the long line is still arriving
    assembler.feed(b"y" * 1000)
    assert assembler._size <= 10


def test_split_timestamp_exact_nanoseconds() -> None:
    ns, rest = split_timestamp("2026-11-28T13:18:38.060515870Z Starting DB init!")
    assert rest == "Starting DB init!"
    assert ns == 1795871918060515870
    assert format_since(ns) == "1795871918.060515870"
    assert split_timestamp("no timestamp here") == (None, "no timestamp here")
    offset_ns, _ = split_timestamp("2026-11-28T14:18:38.06051587+01:00 x")
    assert offset_ns == ns


def test_log_decoder_frames_with_timestamps() -> None:
    data = frame(STDOUT, b"2026-11-28T13:18:38.000000001Z a\n2026-11-28T13:18:38.000000002Z b")
    data += frame(STDOUT, b"c\n") + frame(STDERR, b"2026-11-28T13:18:39.000000000Z err\n")
    decoder = LogDecoder(tty=False)
    lines = decoder.feed(data) + decoder.feed_eof()
    assert [(x.stream, x.text) for x in lines] == [(1, "a"), (1, "bc"), (2, "err")]
    assert lines[1].time_ns == 1795871918000000002


def test_log_decoder_daemon_error_line() -> None:
    decoder = LogDecoder(tty=False)
    (line,) = decoder.feed(frame(DAEMON_ERROR, b"Error grabbing logs: bad\n"))
    assert line.daemon_error
    assert line.text == "Error grabbing logs: bad"


def test_cursor_drops_only_the_boundary_duplicates() -> None:
    cursor = LogCursor()
    first = [LogLine(1, "a", 10), LogLine(1, "b", 20), LogLine(1, "c", 20)]
    assert [cursor.accept(x) for x in first] == [True, True, True]
    assert cursor.resume() == format_since(20)
    # since=20 is inclusive: the engine sends b and c again, then a new line at 20 and later
    again = [LogLine(1, "b", 20), LogLine(1, "c", 20), LogLine(1, "d", 20), LogLine(1, "e", 30)]
    assert [cursor.accept(x) for x in again] == [False, False, True, True]
    assert cursor.last_ns == 30


def test_cursor_without_history_asks_from_the_start() -> None:
    assert LogCursor().resume() is None
