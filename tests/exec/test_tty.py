"""The TTY parser's traps, each fed whole and split at every point."""

from __future__ import annotations

import pytest

from dockprogress.core.tty import Frame, FrameEnd, TtyParser
from tests.exec.recordings import frames


def _every_split(data: bytes) -> list[Frame]:
    """Frames for ``data`` whole; asserts every two-piece split and byte-by-byte agree."""
    whole = frames([data])
    for cut in range(1, len(data)):
        assert frames([data[:cut], data[cut:]]) == whole, cut
    assert frames([data[i : i + 1] for i in range(len(data))]) == whole
    return whole


def _texts(found: list[Frame]) -> list[tuple[int, str, FrameEnd]]:
    return [(f.row, f.text, f.end) for f in found]


def test_percent_split_across_reads_is_read_whole() -> None:
    found = _every_split(b"\rcopy 4\rcopy 45%\rcopy 100%\r\n")
    assert _texts(found) == [
        (0, "copy 4", FrameEnd.OVERWRITE),
        (0, "copy 45%", FrameEnd.OVERWRITE),
        (0, "copy 100%", FrameEnd.NEWLINE),
    ]
    assert all(f.live for f in found[1:])


def test_pty_newline_is_not_an_overwrite() -> None:
    found = _every_split(b"Processed 100% of files\r\nnext line\r\n")
    assert _texts(found) == [
        (0, "Processed 100% of files", FrameEnd.NEWLINE),
        (1, "next line", FrameEnd.NEWLINE),
    ]
    assert not any(f.live for f in found)


def test_utf8_characters_split_across_reads() -> None:
    found = _every_split("\rbar ▏▎▍▌▋▊▉█ ━╸ é 45%\r".encode())
    assert found[0].text == "bar ▏▎▍▌▋▊▉█ ━╸ é 45%"


def test_escape_sequences_are_removed_whatever_the_split() -> None:
    data = (
        b"\x1b[?25l\x1b]0;window title\x07\x1b(B\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mtext"
        b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b[K\r\n\x1b[?25h"
    )
    assert _texts(_every_split(data)) == [(0, "red textlink", FrameEnd.NEWLINE)]


def test_cursor_up_and_erase_line_track_rows() -> None:
    data = b"one\r\ntwo\r\nthree\r\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2Kone'\r\ntwo'\r\nthree'"
    found = _every_split(data)
    assert [(f.row, f.text) for f in found] == [
        (0, "one"),
        (1, "two"),
        (2, "three"),
        (0, "one'"),
        (1, "two'"),
        (2, "three'"),
    ]
    assert [f.live for f in found] == [False, False, True, True, True, True]
    assert found[-1].end is FrameEnd.EOF


def test_tqdm_nested_moves_are_followed() -> None:
    data = b"\router 0%\r\n\rinner 50%\x1b[A\router 50%\r\n\r          \x1b[A\router 100%\r\n"
    found = _every_split(data)
    assert [(f.row, f.text.strip()) for f in found] == [
        (0, "outer 0%"),
        (1, "inner 50%"),
        (0, "outer 50%"),
        (1, ""),
        (0, "outer 100%"),
    ]


def test_last_unterminated_frame_comes_at_eof() -> None:
    parser = TtyParser()
    assert parser.feed(b"\rdone 99%") == []
    assert [f.text for f in parser.feed_eof()] == ["done 99%"]


def test_trailing_carriage_return_waits_for_the_next_byte() -> None:
    parser = TtyParser()
    assert parser.feed(b"line\r") == []
    assert [f.end for f in parser.feed(b"\n")] == [FrameEnd.NEWLINE]
    parser = TtyParser()
    assert parser.feed(b"45%\r") == []
    assert [f.end for f in parser.feed_eof()] == [FrameEnd.OVERWRITE]


def test_flush_partial_shows_the_row_without_consuming_it() -> None:
    parser = TtyParser()
    parser.feed(b"\rwork 45%|###")
    partial = parser.flush_partial()
    assert partial is not None
    assert (partial.text, partial.end) == ("work 45%|###", FrameEnd.PARTIAL)
    assert [f.text for f in parser.feed(b"   |\rwork 46%")] == ["work 45%|###   |"]
    partial = parser.flush_partial()
    assert partial is not None
    assert partial.text == "work 46%"


def test_line_length_is_capped() -> None:
    parser = TtyParser(max_line=10)
    found = parser.feed(b"x" * 100_000 + b"\r\n" + b"y" * 5 + b"\n")
    assert [f.text for f in found] == ["x" * 10, "y" * 5]


@pytest.mark.parametrize(
    "junk",
    [
        b"\x1b",
        b"\x1b[",
        b"\x1b[" + b"1;" * 40,
        b"\x1b]" + b"t" * 9000,
        b"\xff\xfe\xc3",
        b"\x00\x07\x08",
    ],
)
def test_malformed_input_is_bounded_and_never_raises(junk: bytes) -> None:
    parser = TtyParser()
    for piece in (junk, b"after 5%\r\n"):
        parser.feed(piece)
    assert len(parser._pending) <= 8300
    parser.feed_eof()


def test_backspace_removes_a_character() -> None:
    assert [f.text for f in _every_split(b"50%\x08\x08\x0860%\r\n")] == ["60%"]
