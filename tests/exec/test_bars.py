"""Bar recognition on lines drawn by the real tqdm and rich."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.progress import Progress
from tqdm import tqdm

from dockprogress.core.bars import BarStyle, recognise

_SGR = re.compile(r"\x1b\[[0-9;]*m")


@settings(max_examples=200, deadline=None)
# A slow byte bar shows an inverse rate with a scale prefix: "1.00/16.0 [16:40<4:10:00, 1.00ks/B]".
@example(total=16, fraction=0.0625, elapsed=1000.0, unit="B", unit_scale=True, ncols=0, desc="")
@given(
    total=st.integers(min_value=1, max_value=10**10),
    fraction=st.floats(min_value=0, max_value=1),
    elapsed=st.floats(min_value=0.001, max_value=10**5),
    unit=st.sampled_from(["it", "B", "files"]),
    unit_scale=st.booleans(),
    ncols=st.sampled_from([0, 100, 200]),
    desc=st.sampled_from(["", "work", "file: a.txt", "épreuve 2"]),
)
def test_tqdm_lines_give_their_count_and_percent(  # noqa: PLR0917
    total: int, fraction: float, elapsed: float, unit: str, unit_scale: bool, ncols: int, desc: str
) -> None:
    n = int(total * fraction)
    line = tqdm.format_meter(
        n, total, elapsed, ncols=ncols, prefix=desc, unit=unit, unit_scale=unit_scale
    )
    reading = recognise(line, live=False)
    assert reading is not None, line
    assert reading.style is BarStyle.TQDM
    assert reading.description == desc
    assert reading.is_bytes == (unit == "B")
    assert reading.n is not None
    assert reading.total is not None
    assert reading.percent is not None
    tolerance = 0.006 if unit_scale else 0.0  # 3 significant digits
    assert reading.total == pytest.approx(total, rel=tolerance)
    assert reading.n == pytest.approx(n, rel=tolerance, abs=tolerance * total)
    assert reading.percent == pytest.approx(100 * n / total, abs=1.1 if unit_scale else 1e-9)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=0, max_value=10**9), unit=st.sampled_from(["it", "B"]))
def test_tqdm_unknown_total_gives_a_count_without_percent(n: int, unit: str) -> None:
    line = tqdm.format_meter(n, None, 12.0, prefix="scan", unit=unit, unit_scale=unit == "B")
    reading = recognise(line, live=False)
    assert reading is not None, line
    assert reading.percent is None
    assert reading.total is None
    assert reading.n == pytest.approx(n, rel=0.006)


def _rich_rows(totals: list[float | None], done: list[float]) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True, color_system="truecolor")
    progress = Progress(console=console, auto_refresh=False)
    for index, (total, completed) in enumerate(zip(totals, done, strict=True)):
        progress.add_task(f"task {index}", total=total, completed=completed)
    console.print(progress.get_renderable())
    return [_SGR.sub("", row) for row in out.getvalue().splitlines()]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=4))
def test_rich_rows_give_their_description_and_percent(fractions: list[float]) -> None:
    rows = _rich_rows([100.0] * len(fractions), [100.0 * f for f in fractions])
    assert len(rows) == len(fractions)
    for index, (row, fraction) in enumerate(zip(rows, fractions, strict=True)):
        reading = recognise(row, live=False)
        assert reading is not None, row
        assert reading.style is BarStyle.RICH
        assert reading.description == f"task {index}"
        assert reading.percent == pytest.approx(100 * fraction, abs=0.51)


def test_rich_row_without_total_has_no_percent() -> None:
    (row,) = _rich_rows([None], [3.0])
    reading = recognise(row, live=False)
    assert reading is not None
    assert reading.style is BarStyle.RICH
    assert reading.percent is None


@pytest.mark.parametrize(
    "line",
    ["Processed 100% of files", "disk usage: 45% (of 2 GB)", "ok 100%"],
)
def test_plain_text_percent_is_progress_only_on_a_redrawn_row(line: str) -> None:
    assert recognise(line, live=False) is None
    reading = recognise(line, live=True)
    assert reading is not None
    assert reading.style is BarStyle.GENERIC


def test_generic_percent_ignores_values_over_100_and_version_numbers() -> None:
    assert recognise("ratio 250% then 1.5 and 30%", live=True).percent == 30.0  # type: ignore[union-attr]
    assert recognise("v1.45% nothing", live=True) is None


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=1000),
    ncols=st.integers(min_value=10, max_value=60),
    desc=st.sampled_from(["", "work", "a long description of the work"]),
)
def test_tqdm_lines_cut_by_a_narrow_terminal_are_never_misread(
    n: int, ncols: int, desc: str
) -> None:
    line = tqdm.format_meter(n, 1000, 3.0, ncols=ncols, prefix=desc)
    reading = recognise(line, live=False)
    if reading is not None and reading.style is BarStyle.TQDM:
        assert reading.n == n
        assert reading.total == 1000
