"""Bad input fuzzed into every sans-IO parser: only documented outcomes, memory bounded.

Each parser's docstring names what it does with input it cannot use; these tests hold it to
that, with hypothesis (bounded in CI: ``max_examples`` below, no deadline on a shared CPU) and
with recordings of the real engine corrupted in the ways a broken stream is corrupted
(truncated, cut anywhere, junk appended). Set ``DOCKPROGRESS_FUZZ_EXAMPLES`` for long runs.

Documented outcomes checked here:

* ``JsonLinesDecoder``: objects out; a non-object line is skipped and counted (``junk``);
  ``StreamError`` only for a line over ``max_line``.
* ``FrameDecoder``: chunks out; ``StreamError`` for a bad header, an oversized frame, or a
  stream that ends inside a frame. Never anything else, never unbounded buffering.
* ``LogDecoder``/``LineAssembler``: lines out, each at most ``max_line`` characters (flagged
  ``truncated``), invalid UTF-8 replaced; same lines for any chunking.
* ``TtyParser``/``ExecTracker``: frames and events out for any bytes; identical for any
  chunking; text never ends the task.
* ``PullTracker``: a message it cannot use is ignored and counted in ``ignored``; the task's
  promises hold whatever it is fed.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockprogress.core.execprogress import ExecTracker
from dockprogress.core.frames import FrameDecoder, StreamChunk
from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.lines import LogDecoder
from dockprogress.core.pull import PullTracker
from dockprogress.core.tty import TtyParser
from dockprogress.errors import StreamError
from dockprogress.events import Kind, TaskEvent
from tests.contract import assert_event_lines

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXAMPLES = int(os.environ.get("DOCKPROGRESS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: What feeding 50 MB without a newline may cost above the parser's own cap (bytes).
MEMORY_SLACK = 4 << 20
BIG = 50 << 20
CHUNK = 64 << 10


def _chunks(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    """``data`` cut at the given offsets (any order, duplicates allowed)."""
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        yield data[start:cut]
        start = cut
    yield data[start:]


_LAST_PEAK = [0]


def _peak_while(feed: Callable[[], None]) -> int:
    """Peak traced memory while ``feed`` ran (also kept when it raised)."""
    tracemalloc.start()
    try:
        feed()
    finally:
        _LAST_PEAK[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return _LAST_PEAK[0]


def _no_newline_stream(byte: bytes = b"x") -> Iterator[bytes]:
    block = byte * CHUNK
    for _ in range(BIG // CHUNK):
        yield block


def _contract(events: list[TaskEvent], *, require_end: bool) -> None:
    assert_event_lines([e.to_json() for e in events], require_end=require_end)


# --------------------------------------------------------------------------- JSON lines

_json_line = st.one_of(
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4).map(
        lambda d: json.dumps(d).encode()
    ),
    st.binary(max_size=40),  # junk, invalid UTF-8 included
    st.sampled_from([b"[1, 2]", b"null", b'"text"', b"{", b'{"status": "Down', b"\xff\xfe{}"]),
)


@FUZZ
@given(lines=st.lists(_json_line, max_size=30), cuts=st.lists(st.integers(0, 4000)))
def test_json_lines_any_bytes_give_objects_or_counted_junk(
    lines: list[bytes], cuts: list[int]
) -> None:
    data = b"\n".join(lines)
    whole = JsonLinesDecoder()
    expected = whole.decode(data) + whole.flush()
    split = JsonLinesDecoder()
    got: list[dict[str, Any]] = []
    for chunk in _chunks(data, cuts):
        got += split.decode(chunk)
    got += split.flush()
    assert got == expected
    assert all(isinstance(obj, dict) for obj in got)
    non_blank = [line for line in data.split(b"\n") if line.strip()]
    assert split.lines + split.junk == len(non_blank)
    assert split.lines == len(got)


def test_json_lines_truncated_recording_is_junk_at_the_cut_not_an_error() -> None:
    data = (FIXTURES / "pull" / "fresh_layers.jsonl").read_bytes()
    complete = JsonLinesDecoder()
    every = complete.decode(data) + complete.flush()
    for cut in range(1, len(data), max(1, len(data) // 97)):
        decoder = JsonLinesDecoder()
        got = decoder.decode(data[:cut]) + decoder.flush()
        assert got == every[: len(got)]  # a prefix of the messages, nothing invented
        assert decoder.junk <= 1  # at most the half line at the cut


def test_json_lines_50_mb_without_newline_is_a_stream_error_within_the_cap() -> None:
    decoder = JsonLinesDecoder()
    fed = 0

    def feed() -> None:
        nonlocal fed
        for block in _no_newline_stream():
            fed += len(block)
            decoder.decode(block)

    with pytest.raises(StreamError, match="longer than"):
        _peak_while(feed)
    peak = _LAST_PEAK[0]
    assert fed <= decoder.max_line + CHUNK  # refused as soon as the cap was passed
    assert peak < decoder.max_line * 2 + MEMORY_SLACK
    assert decoder.decode(b'{"status": "after"}\n') == [{"status": "after"}]  # usable again


# ------------------------------------------------------------------------------ frames


def _frame(stream: int, payload: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(payload).to_bytes(4, "big") + payload


@FUZZ
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_frames_random_bytes_only_chunks_or_stream_error(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_frame=256)
    got: list[StreamChunk] = []
    try:
        for chunk in _chunks(data, cuts):
            got += decoder.decode(chunk)
            assert decoder.pending <= 8 + 256  # never more than one capped frame held
        got += decoder.flush()
    except StreamError:
        return
    assert b"".join(c.data for c in got) == b"".join(c.data for c in _reference_frames(data))


def _reference_frames(data: bytes) -> list[StreamChunk]:
    out, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 4 : offset + 8], "big")
        out.append(StreamChunk(data[offset], data[offset + 8 : offset + 8 + length]))
        offset += 8 + length
    return out


_payloads = st.lists(
    st.tuples(st.sampled_from([1, 2, 3]), st.binary(min_size=1, max_size=60)), max_size=12
)


@FUZZ
@given(frames=_payloads, cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_frames_any_split_gives_the_same_chunks(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    data = b"".join(_frame(s, p) for s, p in frames)
    decoder = FrameDecoder()
    got: list[StreamChunk] = []
    for chunk in _chunks(data, cuts):
        got += decoder.decode(chunk)
    got += decoder.flush()
    assert got == [StreamChunk(s, p) for s, p in frames]


@FUZZ
@given(frames=_payloads, index=st.integers(0, 11), delta=st.integers(-8, 8).filter(bool))
def test_frames_with_a_wrong_length_are_a_stream_error_or_a_reframing(
    frames: list[tuple[int, bytes]], index: int, delta: int
) -> None:
    """A lying length either breaks the format (error) or reads as other frames: bounded."""
    if not frames:
        return
    index %= len(frames)
    raw = [bytearray(_frame(s, p)) for s, p in frames]
    length = max(0, len(frames[index][1]) + delta)
    raw[index][4:8] = length.to_bytes(4, "big")
    data = b"".join(raw)
    decoder = FrameDecoder()
    try:
        got = decoder.decode(data) + decoder.flush()
    except StreamError:
        return
    assert sum(len(c.data) for c in got) + 8 * len(got) <= len(data)


def test_frames_header_announcing_4_gib_is_refused_before_buffering() -> None:
    decoder = FrameDecoder()
    with pytest.raises(StreamError, match="exceeds the cap"):
        decoder.decode(b"\x01\x00\x00\x00\xff\xff\xff\xff" + b"x" * 100)


def test_frames_stream_ending_inside_a_frame_is_a_stream_error() -> None:
    decoder = FrameDecoder()
    assert decoder.decode(_frame(1, b"hello\n")[:-2]) == []
    with pytest.raises(StreamError, match="inside a frame"):
        decoder.flush()


# ------------------------------------------------------------------------- log lines

_log_bytes = st.lists(
    st.one_of(
        st.binary(max_size=30),
        st.sampled_from([b"\n", b"\r\n", b"\xe2\x82\xac", b"\xe2\x82", b"\xff", b"\x1b[31m"]),
        st.text(max_size=20).map(str.encode),
    ),
    max_size=40,
).map(b"".join)


@FUZZ
@given(data=_log_bytes, cuts=st.lists(st.integers(0, 1500), max_size=20))
def test_log_lines_any_bytes_any_split_same_bounded_lines(data: bytes, cuts: list[int]) -> None:
    whole = LogDecoder(tty=True, timestamps=True, max_line=50)
    expected = whole.feed(data) + whole.feed_eof()
    split = LogDecoder(tty=True, timestamps=True, max_line=50)
    got = []
    for chunk in _chunks(data, cuts):
        got += split.feed(chunk)
    got += split.feed_eof()
    assert got == expected
    for line in got:
        assert len(line.text) <= 50
        assert "\n" not in line.text


@FUZZ
@given(frames=_payloads, cuts=st.lists(st.integers(0, 2000), max_size=20))
def test_log_frames_any_split_same_lines(frames: list[tuple[int, bytes]], cuts: list[int]) -> None:
    data = b"".join(_frame(s, p) for s, p in frames)
    whole = LogDecoder(tty=False, timestamps=False)
    expected = whole.feed(data) + whole.feed_eof()
    split = LogDecoder(tty=False, timestamps=False)
    got = []
    for chunk in _chunks(data, cuts):
        got += split.feed(chunk)
    got += split.feed_eof()
    assert got == expected


def test_log_line_of_50_mb_without_newline_stays_within_the_line_cap() -> None:
    decoder = LogDecoder(tty=True, timestamps=False)
    lines = []

    def feed() -> None:
        for block in _no_newline_stream(b"\xe2\x82\xac"[:1] + b"ab"):  # invalid UTF-8 too
            lines.extend(decoder.feed(block))
        lines.extend(decoder.feed(b"\nnext\n"))

    peak = _peak_while(feed)
    assert peak < 4 * decoder.max_line * 4 + MEMORY_SLACK  # str of max_line chars, + a chunk
    assert [(line.text[:3], len(line.text), line.truncated) for line in lines] == [
        ("\ufffdab", decoder.max_line, True),
        ("nex", 4, False),
    ]


# ------------------------------------------------------------------------ TTY parser

_tty_pieces = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"\r",
                b"\n",
                b"\r\n",
                b"\x08",
                b"\x1b[2K",
                b"\x1b[1A",
                b"\x1b[?25l",
                b"\x1b[38;5;12m",
                b"\x1b]0;title\x07",
                b"\x1b]8;;http://x\x1b\\",
                b"\x1b(B",
                b"\x1b7",
                b"\x1b8",
                b"\x1b",
                b"\x1b[",
                b"\x1b]",
                b"\xe2\x96\x88",
                b"\xe2\x96",
                b"\xff",
                b" 45%|",
                b"100%",
                b"12/100 [00:01<00:02, 3.00it/s]",
                b"\x1b[" + b"1;" * 40 + b"m",
            ]
        ),
        st.binary(max_size=12),
    ),
    max_size=50,
).map(b"".join)


@FUZZ
@given(data=_tty_pieces, cuts=st.lists(st.integers(0, 3000), max_size=25))
def test_tty_any_bytes_any_split_same_frames(data: bytes, cuts: list[int]) -> None:
    whole = TtyParser(max_line=80)
    expected = whole.feed(data) + whole.feed_eof()
    split = TtyParser(max_line=80)
    got = []
    for chunk in _chunks(data, cuts):
        got += split.feed(chunk)
    got += split.feed_eof()
    assert got == expected
    for frame in got:
        assert len(frame.text) <= 80
        assert "\x1b" not in frame.text  # no escape sequence survives into a frame's text


def test_tty_50_mb_row_without_terminator_or_escape_end_stays_bounded() -> None:
    parser = TtyParser()
    frames = []

    def feed() -> None:
        for block in _no_newline_stream():
            frames.extend(parser.feed(block))
        # An escape sequence that never ends: an OSC of 50 MB.
        frames.extend(parser.feed(b"\r\x1b]0;"))
        for block in _no_newline_stream(b"y"):
            frames.extend(parser.feed(block))
        frames.extend(parser.feed_eof())

    peak = _peak_while(feed)
    assert peak < 16 * parser.max_line * 4 + MEMORY_SLACK
    assert all(len(f.text) <= parser.max_line for f in frames)
    assert frames
    assert frames[0].text == "x" * parser.max_line


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@FUZZ
@given(data=_tty_pieces, cuts=st.lists(st.integers(0, 3000), max_size=25))
def test_exec_tracker_any_bytes_same_events_and_text_never_ends_the_task(
    data: bytes, cuts: list[int]
) -> None:
    def run(chunks: Iterator[bytes]) -> list[TaskEvent]:
        clock = _Clock()
        tracker = ExecTracker("exec:fuzz", clock=clock, kind=Kind.COUNT)
        events = [e for e in [tracker.start()] if e is not None]
        for chunk in chunks:
            events += tracker.feed(chunk)
        events += tracker.feed_eof()
        assert not tracker.task.ended
        end = tracker.exit(0)
        assert end is not None
        return [*events, end]

    whole = run(iter([data]))
    split = run(_chunks(data, cuts))
    assert [(e.state, e.percent, e.current, e.total) for e in split] == [
        (e.state, e.percent, e.current, e.total) for e in whole
    ]
    _contract(split, require_end=True)


# ----------------------------------------------------------------------- pull tracker

_numbers = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.booleans(),
)
_statuses = st.sampled_from(
    [
        "Pulling fs layer",
        "Waiting",
        "Downloading",
        "Downloading",
        "Downloading",
        "Extracting",
        "Extracting",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
        "Already exists",
        "Exists",
        "Retrying in 5 seconds",
        "Pulling from dp/layers",
        "Digest: sha256:00",
        "Status: Downloaded newer image",
        "Something new",
    ]
)
_messages = st.one_of(
    st.fixed_dictionaries(
        {
            "status": _statuses,
            "id": st.sampled_from(["aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"]),
        },
        optional={
            "progressDetail": st.one_of(
                st.fixed_dictionaries({}, optional={"current": _numbers, "total": _numbers}),
                _numbers,
            )
        },
    ),
    st.dictionaries(st.text(max_size=6), _numbers, max_size=3),
    st.fixed_dictionaries({"status": _statuses}),
)


@FUZZ
@example(
    messages=[
        {"status": "Downloading", "id": "aaaaaaaaaaaa", "progressDetail": {"current": "5"}},
        {"status": "Downloading", "id": "cccccccccccc", "progressDetail": {"total": "10"}},
        {"status": "Extracting", "id": "bbbbbbbbbbbb", "progressDetail": {"total": [1]}},
    ],
    sizes={"aaaaaaaaaaaa": 1000, "bbbbbbbbbbbb": 5},
)
@given(
    messages=st.lists(_messages, max_size=40),
    sizes=st.none() | st.just({"aaaaaaaaaaaa": 1000, "bbbbbbbbbbbb": 5}),
)
def test_pull_tracker_any_messages_keep_the_promises(
    messages: list[dict[str, Any]], sizes: dict[str, int] | None
) -> None:
    tracker = PullTracker("127.0.0.1:5000/fuzz:1", layer_sizes=sizes, clock=_Clock())
    events = [e for e in [tracker.begin()] if e is not None]
    for message in messages:
        event = tracker.feed(message)
        if event is not None:
            events.append(event)
    end = tracker.feed_eof()
    if end is not None:
        events.append(end)
    assert tracker.ended
    _contract(events, require_end=True)
