"""Sizes, rates, durations and safe text, as every display shows them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockprogress import humanize


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1_000, "1.0 kB"),
        (1_234_567, "1.2 MB"),
        (9_949_999, "9.9 MB"),
        (9_960_000, "10 MB"),
        (999_999, "1.0 MB"),  # rounds into the next unit instead of "1000 kB"
        (117_000_000, "117 MB"),
        (1_200_000_000, "1.2 GB"),
        (3_100_000_000, "3.1 GB"),
        (-5, "0 B"),
        (float("nan"), "?"),
    ],
)
def test_size(num_bytes: float, text: str) -> None:
    assert humanize.size(num_bytes) == text


def test_size_pair_and_count() -> None:
    assert humanize.size_pair(1_200_000_000, 3_100_000_000) == "1.2 GB / 3.1 GB"
    assert humanize.size_pair(5_000, None) == "5.0 kB / ?"
    assert humanize.count(45, 100) == "45/100"
    assert humanize.count(45.5, None) == "45.5/?"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (0.2, "0:01"), (7, "0:07"), (62, "1:02"), (3723, "1:02:03"), (None, "")],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert humanize.duration(seconds) == text


def test_rate() -> None:
    assert humanize.rate(5_200_000) == "5.2 MB/s"
    assert humanize.rate(3.25, bytes_=False) == "3.2/s"
    assert humanize.rate(None) == ""


@given(st.floats(min_value=0, max_value=1e18, allow_nan=False))
def test_size_is_short_and_has_a_unit(num_bytes: float) -> None:
    text = humanize.size(num_bytes)
    number, unit = text.split(" ")
    assert unit in {"B", "kB", "MB", "GB", "TB", "PB", "EB"}
    assert float(number) < 1000
    assert len(text) <= 7


@given(st.floats(min_value=0, max_value=1e6), st.floats(min_value=0, max_value=1e6))
def test_duration_is_monotonic(a: float, b: float) -> None:
    low, high = sorted((a, b))

    def seconds(text: str) -> int:
        parts = [int(part) for part in text.split(":")]
        value = 0
        for part in parts:
            value = value * 60 + part
        return value

    assert seconds(humanize.duration(low)) <= seconds(humanize.duration(high))


@given(st.text())
def test_printable_gives_one_safe_line(text: str) -> None:
    line = humanize.printable(text)
    assert line.isprintable() or line == ""
    assert "\x1b" not in line
    assert humanize.printable(line) == line  # idempotent


def test_printable_drops_whole_escape_sequences() -> None:
    raw = "\x1b[31mred\x1b[0m\r\x1b[2K 45%\x1b]0;title\x07 done\x9b2J\ttab\nnext"
    assert humanize.printable(raw) == "red 45% done tab next"
    assert humanize.printable("x" * 10, limit=5) == "xxxx…"
