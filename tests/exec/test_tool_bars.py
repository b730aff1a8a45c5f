"""The real tools' bars (tests/fixtures/tty/, see its README) read by the shipped bar files.

Each recording is also fed whole, byte by byte and at random splits by test_recordings.py
(they are in ``recordings.ALL``); here: what each tool's events say, against the truth.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.barfiles import BarFileError, Recognisers, parse_bars
from dockprogress.core.bars import BarBoard, _base_hint
from dockprogress.core.execprogress import ExecTracker, recognisers_for
from dockprogress.core.tty import Frame, FrameEnd
from tests.contract import assert_event_lines
from tests.exec.recordings import TOOLS, frames, load, replay

MIB = 1024 * 1024


def _running(name: str, **options: Any) -> list[dict[str, Any]]:
    events = replay([load(name)], **options)
    assert_event_lines([json.dumps(event) for event in events])
    assert events[-1]["state"] == "done"
    return [e for e in events if e["state"] == "running"]


def _percents(running: list[dict[str, Any]]) -> list[float]:
    return [e["percent"] for e in running if e["percent"] is not None]


@pytest.mark.parametrize("name", TOOLS)
def test_each_tool_shows_at_least_three_live_percents_never_backwards(name: str) -> None:
    percents = _percents(_running(name))
    assert len(set(percents)) >= 3, percents
    assert all(b >= a for a, b in itertools.pairwise(percents))
    assert 0 < percents[-1] < 100  # 100 belongs to done


def test_npm_gauge_is_its_filled_share_read_to_one_cell() -> None:
    running = _running("npm_install")
    bars = [bar for e in running for bar in e["detail"]["bars"]]
    assert {bar["description"] for bar in bars} <= {"idealTree", "reify"}
    assert all(bar["approximate"] and bar["n"] is None for bar in bars)  # no figure shown
    width = 18  # the gauge's cells in the recording's 100-column terminal
    for percent in _percents(running):
        cells = percent * width / 100
        assert cells == pytest.approx(round(cells), abs=0.001), percent  # (3 decimals)
    assert all(e["detail"]["approximate"] for e in running if e["percent"] is not None)


def test_npm_gauge_ascii_and_unicode_cells_and_its_spinners() -> None:
    board = Recognisers()
    for text, percent in [
        ("(##########----------) \\ reify:lodash: timing reifyNode Completed in 5ms", 50.0),
        ("(#####⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂) ⠼ reify:a: http fetch GET 200 /a.tgz 31ms", 25.0),
        ("(⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂⠂) ⠹ idealTree: timing arborist:ctor Completed in 1ms", 0.0),
    ]:
        reading = board.read(text, True)
        assert reading is not None, text
        assert reading.tool == "npm"
        assert reading.percent == percent
        assert reading.approximate
    assert board.read("(#####⠂⠂⠂) ⠼ reify:a", False) is None  # only on a live row
    assert board.read("(a ##### b) x: y", True) is None


def test_curl_meter_is_a_download_in_binary_units() -> None:
    running = _running("curl_meter")
    assert {e["kind"] for e in running} == {"download"}
    last = running[-1]
    # the file is 25,000,000 bytes; curl shows "23.8M" (MiB): within the display's 0.05 MiB
    assert last["total"] == pytest.approx(25_000_000, abs=0.05 * MIB)
    assert last["total"] != pytest.approx(23_800_000, rel=0.01)  # not read as decimal MB
    assert last["detail"]["approximate"] is True
    assert {7, 28, 50, 71, 93} <= {round(p) for p in _percents(running)}


def test_wget_takes_the_exact_length_it_announced() -> None:
    running = _running("wget")
    assert {e["total"] for e in running} == {10_000_000}  # "Length: 10000000 (9.5M)"
    assert running[-1]["current"] == pytest.approx(10_000_000, rel=0.01)
    assert {e["kind"] for e in running} == {"download"}


def test_curl_hash_bar_reads_its_decimal_percent() -> None:
    percents = _percents(_running("curl_bar"))
    assert {6.2, 12.1, 51.4, 96.7} <= set(percents)
    assert any(p != int(p) for p in percents)


def test_git_phases_make_one_overall_that_never_goes_back() -> None:
    running = _running("git_clone")
    phases = [e["phase"] for e in running]
    order = ["Counting objects", "Compressing objects", "Receiving objects", "Resolving deltas"]
    seen = [p for p, _ in itertools.groupby(phases)]
    assert [p for p in seen if p in order] == order
    receiving = [e for e in running if e["phase"] == "Receiving objects"]
    # weights 1, 1, 6, 2, 1: receiving fills 2/11 .. 8/11 of the overall
    assert all(100 * 2 / 11 - 0.01 <= e["percent"] <= 100 * 8 / 11 + 0.01 for e in receiving)
    assert receiving[-1]["total"] == 32


def test_rsync_bytes_are_exact_and_its_total_unknown() -> None:
    running = _running("rsync_progress2")
    assert running[-1]["current"] == 12_000_000  # 6 files of 2,000,000 bytes
    assert all(e["total"] is None and e["kind"] == "download" for e in running)


def test_pip_sums_the_wheels_and_grows_its_total_as_packages_are_announced() -> None:
    running = _running("pip_install")
    assert {e["kind"] for e in running} == {"download"}
    # three wheels of the bed's index: 6.3 + 8.4 + 6.3 MB as pip shows them (6292737,
    # 8389889 and 6292713 bytes)
    assert running[-1]["current"] == pytest.approx(21_000_000)
    assert running[-1]["total"] == pytest.approx(21_000_000)
    assert {e["total"] for e in running} == {6_300_000, 14_700_000, 21_000_000}
    currents = [e["current"] for e in running]
    assert currents == sorted(currents)
    # one more package than announced is assumed until the exit: 3 done of 4
    assert running[-1]["percent"] == pytest.approx(100 * 3 / 4, abs=0.01)


def test_apt_goes_through_lists_download_database_and_dpkg() -> None:
    running = _running("apt_install")
    phases = {e["phase"] for e in running}
    assert {"Reading package lists", "download", "unpack and set up"} <= phases
    dpkg = [e["percent"] for e in running if e["phase"] == "unpack and set up"]
    assert dpkg
    assert min(dpkg) >= 60  # weights 1, 4, 1, 4: dpkg is the last 40 %


def test_ffmpeg_time_against_the_announced_duration() -> None:
    running = _running("ffmpeg_encode")
    assert {e["total"] for e in running} == {5.0}  # "Duration: 00:00:05.00"
    assert running[-1]["current"] == pytest.approx(4.96)  # the last frame's time


def test_hf_style_tqdm_bytes_are_found_binary_and_the_total_matches() -> None:
    running = _running("demo_hf")
    truth = 3_435_973_837  # 3.2 GiB, as the script set it
    assert running[-1]["total"] == pytest.approx(truth, rel=0.002)
    assert running[0]["total"] == pytest.approx(3.2e9)  # read as decimal until proven
    assert all(e["detail"]["approximate"] for e in running)


def test_rich_download_and_m_of_n_columns_without_a_percentage() -> None:
    running = _running("demo_rich")
    layer = [e for e in running if e["phase"] == "layer.tar"]
    assert {e["total"] for e in layer} == {48_000_000}
    assert {e["kind"] for e in running} == {"download"}
    board = BarBoard(recognisers=recognisers_for(None))
    counts = []
    for frame in frames([load("demo_rich")]):
        board.apply(frame)
        counts += [b.reading.n for b in board.bars if b.description == "files"]
    assert counts[-1] == 250
    assert len(set(counts)) >= 3


def test_tqdm_custom_bar_format_with_n_of_total() -> None:
    running = _running("demo_format")
    assert {e["total"] for e in running} == {60}
    assert running[-1]["current"] == 60


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=5 * 1024**3), st.integers(min_value=1, max_value=99))
def test_base_hint_never_contradicts_the_truth(total: int, share: int) -> None:
    """Whatever tqdm prints with either divisor, the hint is the right base or undecided."""
    from tqdm import tqdm

    n = total * share // 100
    for divisor in (1000, 1024):
        line = tqdm.format_meter(
            n, total, 1.0, unit="B", unit_scale=True, unit_divisor=divisor, ncols=100
        )
        from dockprogress.core.bars import _TQDM

        match = _TQDM.match(line)
        assert match is not None, line
        hint = _base_hint(
            match["n"], match["nscale"], match["total"], match["tscale"], match["pct"]
        )
        assert hint in (0, divisor), (line, hint)


# ------------------------------------------------------------------ --bars FILE

MADE_UP = """
tool = "copier"

[[bar]]
pattern = 'copied (?P<n>\\d+) of (?P<total>\\d+) (?P<unit>blocks)'
live = true
"""


def _live(text: str, row: int = 0) -> Frame:
    return Frame(row, text, FrameEnd.OVERWRITE, True)


def test_a_made_up_bar_is_tracked_from_a_bars_file() -> None:
    board = BarBoard(recognisers=Recognisers([parse_bars(MADE_UP)]))
    assert board.apply(_live("copied 3 of 12 blocks"))
    percent, _ = board.overall()
    bar = board.bars[0]
    assert (bar.reading.n, bar.reading.total, bar.reading.unit) == (3, 12, "blocks")
    assert percent == 25.0


def test_bars_file_from_disk_goes_first(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MADE_UP, encoding="utf-8")
    recognisers = recognisers_for([str(path)])
    assert recognisers.specs[0].tool == "copier"
    assert any(spec.tool == "curl" for spec in recognisers.specs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tool = 3\n[[bar]]\npattern='(?P<n>x)'", "'tool'"),
        ("[[bar]]\npattern='(?P<n>'", "invalid pattern"),
        ("[[bar]]\npattern='done (?P<nope>\\d+)'", "group n or pct"),
        ("[[bar]]\npattern='gauge (?P<fill>#*)'", "or fill and empty"),  # the empty part too
        ("[[bar]]\npattern='(?P<n>\\d+)'", "guard"),
        ("[[bar]]\npattern='done (?P<n>\\d+)'\ncolour = 1", "unknown key"),
        ("[[bar]]\npattern='done (?P<n>(\\d+)+)'", "catastroph"),
        ("[[bar]]\npattern='done (?P<n>\\d+)'\ndivisor = 1023", "divisor"),
        ("phases = ['a']\n[[bar]]\npattern='done (?P<n>\\d+)'\nphase='b'", "not in 'phases'"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_bars_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BarFileError, match=message):
        parse_bars(text, source="x.toml")


def test_a_custom_gauge_without_figures_is_its_filled_share() -> None:
    recognisers = Recognisers(
        [parse_bars("[[bar]]\npattern='^copy \\[(?P<fill>=*)(?P<empty> *)\\]'\nlive = true")],
        with_shipped=False,
    )
    reading = recognisers.read("copy [======    ] slowly", True)
    assert reading is not None
    assert reading.percent == 60.0
    assert reading.approximate
    empty = recognisers.read("copy [] nothing to show", True)
    assert empty is not None
    assert empty.percent is None  # a gauge of no width says nothing


def test_a_plain_line_with_a_guard_but_no_bar_is_not_a_bar() -> None:
    board = BarBoard(recognisers=recognisers_for(None))
    assert not board.apply(Frame(0, "Total time: 0:00:01 elapsed", FrameEnd.NEWLINE, False))


def test_the_docs_bar_file_example_is_a_valid_bar_file() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "exec.md").read_text(encoding="utf-8")
    block = page.split('```toml\ntool = "copier"', 1)[1].split("```", 1)[0]
    compiled = parse_bars('tool = "copier"' + block, source="docs/exec.md")
    board = BarBoard(recognisers=Recognisers([compiled], with_shipped=False))
    board.apply(_live("copied 6 of 12 blocks"))
    assert board.overall()[0] == pytest.approx(100 * 3 * 0.5 / 4)  # copy weighs 3 of 4
    board.apply(_live("verified 50%", row=1))
    assert board.overall()[0] == pytest.approx(100 * (3 + 0.5) / 4)


def test_apt_download_row_takes_the_size_apt_announced() -> None:
    board = BarBoard(recognisers=recognisers_for(None))
    totals = set()
    for frame in frames([load("apt_install")]):
        board.apply(frame)
        totals |= {b.reading.total for b in board.bars if b.description == "download"}
    assert totals == {15_800_000.0}  # "Need to get 15.8 MB of archives." (15780416 bytes)


def test_the_wait_for_the_first_bar_counts_from_the_commands_start() -> None:
    """Setting up a ``docker exec`` on a busy machine took over a second (seen live): the
    tracker made then must still wait ``kind_wait`` from ``start()`` for the first bar."""
    now = [0.0]
    tracker = ExecTracker("exec:test", clock=lambda: now[0])
    now[0] = 2.0  # engine connection, exec create and start
    assert tracker.start() is None
    now[0] = 2.5  # curl's header is out, its first row not yet: output pauses
    assert tracker.flush_partial() == []
    events = tracker.feed(load("curl_meter"))
    assert events
    assert {e.kind.value for e in events} == {"download"}
    later = ExecTracker("exec:test", clock=lambda: now[0])
    assert later.start() is None
    now[0] += later.kind_wait
    started = later.flush_partial()  # no bar within kind_wait of the start: counting it is
    assert [e.kind.value for e in started] == ["count"]


def test_after_a_tools_announcement_the_first_bar_is_waited_for_longer() -> None:
    """pip announces ``Collecting dp-pad-a`` and draws its byte bar more than a second later
    on a busy machine (seen live): the task must still become a ``download``."""
    data = load("pip_install")
    first_bar = data.index("━".encode())
    now = [0.0]
    tracker = ExecTracker("exec:test", clock=lambda: now[0])
    assert tracker.start() is None
    assert tracker.feed(data[:first_bar]) == []
    now[0] = 3 * tracker.kind_wait
    assert tracker.flush_partial() == []  # "Collecting" was read: a bar is on its way
    events = tracker.feed(data[first_bar:])
    assert events
    assert {e.kind.value for e in events} == {"download"}
    silent = ExecTracker("exec:test", clock=lambda: now[0])
    assert silent.start() is None
    silent.feed(data[:first_bar])
    now[0] += silent.announced_wait
    assert [e.kind.value for e in silent.flush_partial()] == ["count"]  # not forever
