"""The exec tracker on real tqdm/rich recordings: any chunking gives the same updates."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockprogress.core.bars import BarBoard
from dockprogress.core.tty import FrameEnd
from tests.contract import assert_event_lines
from tests.exec.recordings import ALL, CONTAINER, HOST, TOOLS, chunks, frames, load, replay


def _events(name: str, **options: object) -> list[dict[str, object]]:
    events = replay([load(name)], **options)
    assert_event_lines([json.dumps(event) for event in events])
    return events


@pytest.mark.parametrize("name", ALL)
def test_whole_and_byte_by_byte_give_identical_updates(name: str) -> None:
    data = load(name)
    bytewise = [data[i : i + 1] for i in range(len(data))]
    assert frames(bytewise) == frames([data])
    assert replay(bytewise) == replay([data])


@pytest.mark.parametrize("name", ALL)
def test_random_splits_give_identical_updates(name: str) -> None:
    data = load(name)
    whole = replay([data])
    whole_frames = frames([data])

    @settings(
        max_examples=15 if len(data) > 100_000 else 40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.lists(st.integers(min_value=1, max_value=len(data) - 1), max_size=200))
    def check(cuts: list[int]) -> None:
        pieces = chunks(data, cuts)
        assert frames(pieces) == whole_frames
        assert replay(pieces) == whole

    check()


@pytest.mark.parametrize("name", [n for n in ALL if n != "npm_install"])  # npm: a spinner
def test_every_recording_keeps_the_promises_and_ends_done(name: str) -> None:
    events = _events(name)
    assert events[-1]["state"] == "done"
    assert events[-1]["percent"] == 100.0
    running = [e for e in events if e["state"] == "running"]
    assert running, "a recording with bars gives running events"


# (the tools' sequences are checked in test_tool_bars.py: git, apt and pip end below 99.9)
@pytest.mark.parametrize("name", [n for n in CONTAINER + HOST if "unknown" not in n])
def test_bars_reach_their_end_before_the_exit(name: str) -> None:
    percents = [e["percent"] for e in _events(name) if e["state"] == "running"]
    assert percents[-1] == pytest.approx(99.9)  # 100 belongs to done


def test_single_tqdm_bar_reports_its_own_count() -> None:
    running = [e for e in _events("tqdm_one") if e["state"] == "running"]
    assert all(e["total"] == 40 and e["phase"] == "work" for e in running)
    for event in running:
        assert event["percent"] == pytest.approx(min(100 * event["current"] / 40, 99.9))
    assert len({e["current"] for e in running}) >= 5


@pytest.mark.parametrize("name", ["tqdm_nested", "host_tqdm_nested"])
def test_nested_bars_move_the_overall_forward_when_the_inner_bar_restarts(name: str) -> None:
    data = load(name)
    board = BarBoard()
    overall: list[float] = []
    restarts = 0
    for frame in frames([data]):
        board.apply(frame)
        percent, _ = board.overall()
        if percent is not None:
            overall.append(percent)
        restarts = max([restarts, *(bar.restarts for bar in board.bars)])
    assert restarts >= 1 or any(not f.text.strip() for f in frames([data]))
    # never backwards, without the Task's clamp
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(overall))
    # smooth: no jump of a whole epoch (33 points) at once, and every epoch is seen inside
    assert max(b - a for a, b in itertools.pairwise(overall)) < 20
    for low, high in ((0, 33.4), (33.4, 66.7), (66.7, 100)):
        assert any(low < p < high for p in overall), (low, high)


def test_bytes_bar_makes_a_download_task_in_bytes() -> None:
    events = _events("tqdm_bytes")
    assert {e["kind"] for e in events} == {"download"}
    running = [e for e in events if e["state"] == "running"]
    true_total = 40 * 256_000
    assert all(e["total"] == pytest.approx(true_total, rel=0.01) for e in running)
    assert events[-1]["current"] == events[-1]["total"]
    assert running[-1]["speed"] is None  # fixed clock: no rate, and no invented one


def test_unknown_total_counts_items_without_a_percent() -> None:
    running = [e for e in _events("tqdm_unknown") if e["state"] == "running"]
    assert all(e["percent"] is None and e["total"] is None for e in running)
    currents = [e["current"] for e in running]
    assert currents == sorted(currents)
    assert currents[-1] == 40


def test_very_fast_updates_are_coalesced_by_value_not_by_time() -> None:
    data = load("tqdm_fast")
    frame_count = len(frames([data]))
    running = [e for e in _events("tqdm_fast") if e["state"] == "running"]
    assert frame_count > 3000
    assert 100 < len(running) <= 1002  # one per 0.1 point at most
    percents = [e["percent"] for e in running]
    assert len(set(percents)) == len(percents)


def test_plain_text_percentages_do_not_move_the_task() -> None:
    data = load("tqdm_text")
    plain = [f for f in frames([data]) if "Processed 100%" in f.text]
    assert plain
    assert plain[0].end is FrameEnd.NEWLINE
    assert not plain[0].live
    events = _events("tqdm_text")
    with_percent = [e for e in events if e["percent"] is not None]
    assert with_percent[0]["percent"] == 0.0  # the tqdm bar's 0%, not the text's 100%
    assert with_percent[0]["phase"] == "work"


def test_rich_single_task() -> None:
    running = [e for e in _events("rich_one") if e["state"] == "running"]
    assert {e["phase"] for e in running} == {"render"}
    assert len({e["percent"] for e in running}) >= 5


@pytest.mark.parametrize("name", ["rich_multi", "host_rich_multi"])
def test_several_rich_tasks_average_into_the_overall(name: str) -> None:
    board = BarBoard()
    checked = 0
    for frame in frames([load(name)]):
        if board.apply(frame):
            bars = board.bars
            percent, _ = board.overall()
            if len(bars) == 3:
                expected = sum(bar.percent or 0.0 for bar in bars) / 3
                assert percent == pytest.approx(expected)
                checked += 1
    assert checked > 10
    assert {bar.description for bar in board.bars} == {"fetch", "decode", "index"}
    assert {bar.row for bar in board.bars} == {0, 1, 2}


def test_bar_option_follows_one_rich_task() -> None:
    board = BarBoard()
    decode = []
    for frame in frames([load("rich_multi")]):
        board.apply(frame)
        for bar in board.bars:
            if bar.description == "decode" and bar.percent is not None:
                decode.append(bar.percent)
    followed = [
        e["percent"]
        for e in _events("rich_multi", bar="^dec")
        if e["state"] == "running" and e["percent"] is not None
    ]
    assert {e["phase"] for e in _events("rich_multi", bar="^dec")[1:-1]} == {"decode"}
    assert set(followed) <= set(decode) | {99.9}
    assert followed[-1] >= 99.9


def test_rich_task_without_total_has_no_percent_until_it_gets_one() -> None:
    running = [e for e in _events("rich_unknown") if e["state"] == "running"]
    assert running[0]["percent"] is None
    assert running[-1]["percent"] == pytest.approx(99.9)


@pytest.mark.parametrize("name", CONTAINER + TOOLS)
def test_junk_after_the_stream_only_adds_frames(name: str) -> None:
    data = load(name)
    before = frames([data])
    after = frames([data + b"\r\n\x1b[31m\xff\xfe junk \x1b]0;t"])
    assert after[: len(before) - 1] == before[:-1]
