"""The hot paths' shortcuts give exactly what the plain code they replace gives."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress import task as task_module
from dockprogress.core import bars, execprogress, tty
from dockprogress.core import milestones as milestones_module
from dockprogress.core.execprogress import default_recognisers
from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.milestones import DYNAMIC, MilestoneMatch, MilestoneSet
from dockprogress.core.prefilter import GuardSet, required_literals
from dockprogress.events import Kind, Operation, State, TaskEvent
from dockprogress.task import Task


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1e9),
            st.one_of(st.none(), st.floats(min_value=0, max_value=1e9)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.text(max_size=5),
        ),
        min_size=1,
        max_size=6,
    ),
    end=st.sampled_from(["finish", "fail", "cancel", None]),
)
def test_task_events_equal_the_constructor_built_ones(
    steps: list[tuple[float, float | None, float | None, str]], end: str | None
) -> None:
    task = Task("t", Operation.PULL, Kind.DOWNLOAD, clock=_Clock(), priority=3)
    events = []
    for current, total, eta, phase in steps:
        event = task.update(current=current, total=total, eta=eta, phase=phase, detail={"p": 1})
        assert event is not None
        events.append(event)
    if end == "finish":
        events.append(task.finish())  # type: ignore[arg-type]
    elif end == "fail":
        events.append(task.fail("boom"))  # type: ignore[arg-type]
    elif end == "cancel":
        events.append(task.cancel("stop"))  # type: ignore[arg-type]
    events.append(task.snapshot())
    for event in events:
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(TaskEvent)}
        built = TaskEvent(**fields)
        assert built == event
        assert type(event) is TaskEvent
        assert event.to_dict() == built.to_dict()
    assert events[-1].state in {State.RUNNING, State.DONE, State.ERROR, State.CANCELLED}


_TAIL_ALPHABET = [
    "\x1b",
    "\r",
    "\n",
    "[",
    "]",
    "P",
    "_",
    "\x07",
    "\\",
    "a",
    "1",
    ";",
    "?",
    " ",
    "/",
    "m",
    "K",
]


@settings(max_examples=500, deadline=None)
@given(
    head=st.sampled_from(["", "y" * 9000, "z" * 8190]),
    tail=st.lists(st.sampled_from(_TAIL_ALPHABET), max_size=16).map("".join),
    osc=st.sampled_from(
        ["", "\x1b]" + "x" * 8191, "\x1b]" + "x" * 8192 + "\x1b", "\x1b]" + "x" * 8300]
    ),
)
def test_open_tail_is_where_the_tail_regex_first_matches(head: str, tail: str, osc: str) -> None:
    for text in (head + tail, head + osc + tail, head + tail + osc):
        found = tty._OPEN_TAIL.search(text, max(0, len(text) - tty._OPEN_TAIL_REACH))
        assert tty._open_tail(text) == (len(text) if found is None else found.start())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["\x1b[", "0", "1", "38;5;", ";", ":", "m", "x", "\x1b"]), max_size=30)
)
def test_possessive_sgr_removes_what_the_plain_pattern_removes(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert tty._SGR.sub("", text) == re.sub(r"\x1b\[[0-9;:]{0,64}m", "", text)


class _PlainReference(tty.TtyParser):
    """The parser with ``_plain``'s per-part loop as it was before the frames of a row's
    redraws were made in one ``map`` (the plain code the shortcut replaces)."""

    def _plain(self, text: str, out: list[tty.Frame]) -> None:
        lines = text.split("\n")
        last = len(lines) - 1
        cap = self.max_line
        live = self._live
        for index, written in enumerate(lines):
            line = written
            newline = index < last
            if newline and line[-1:] == "\r":
                line = line[:-1]
            if "\r" in line:
                parts = line.split("\r")
                line = parts.pop()
                for part in parts:
                    if not self._length:
                        if part:
                            row = self.row
                            if row not in live:
                                self._mark_live(row)
                            out.append(tty.Frame(row, part[:cap], tty.FrameEnd.OVERWRITE, True))
                        continue
                    if part:
                        self._append(part)
                    self._mark_live(self.row)
                    self._commit(tty.FrameEnd.OVERWRITE, out)
            if newline:
                row = self.row
                if not self._length:
                    if line:
                        out.append(tty.Frame(row, line[:cap], tty.FrameEnd.NEWLINE, row in live))
                else:
                    if line:
                        self._append(line)
                    self._commit(tty.FrameEnd.NEWLINE, out)
                self.row = row + 1
            elif line:
                self._append(line)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["\r", "\n", "\r\n", "a", "bc", "defghij", "\x1b[A"]), max_size=12)
        .map("".join)
        .map(str.encode),
        min_size=1,
        max_size=5,
    )
)
def test_a_rows_redraws_are_the_frames_the_per_part_loop_gives(reads: list[bytes]) -> None:
    fast, plain = tty.TtyParser(max_line=5), _PlainReference(max_line=5)
    for data in reads:
        frames = fast.feed(data)
        assert frames == plain.feed(data)
        assert all(type(frame) is tty.Frame for frame in frames)
        assert (fast.row, fast._live, fast._length) == (plain.row, plain._live, plain._length)
    assert fast.feed_eof() == plain.feed_eof()


_JSON_PIECES = [
    b'{"',
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"1",
    b"-",
    b"e",
    b"NaN",
    b"Infinity",
    b"null",
    b" ",
    b"\t",
    b"\\u00e9",
    b"\\ud800",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"\xff",
    b"\x00",
    b"x",
    b'status":"Downloading',
    b'{"id":"a1","progressDetail":{"current":5,"total":9}}',
]


def _loads_or_none(line: bytes) -> object:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_JSON_PIECES), max_size=12).map(b"".join), max_size=6))
def test_json_lines_decoder_gives_what_json_loads_gives(lines: list[bytes]) -> None:
    lines = [line.replace(b"\n", b"") for line in lines]
    decoder = JsonLinesDecoder()
    got = decoder.decode(b"\n".join(lines) + b"\n")
    wanted = [
        v for v in (_loads_or_none(line.strip()) for line in lines if line.strip()) if v is not None
    ]
    # (compared as JSON text: NaN, which json.loads accepts, is not equal to itself)
    assert json.dumps(got, sort_keys=True) == json.dumps(wanted, sort_keys=True)
    # One line per chunk, as the engine sends them (the decoder's short path), and a
    # leftover line in the buffer, then one line per chunk (the general path).
    one_by_one = JsonLinesDecoder()
    got = [value for line in lines for value in one_by_one.decode(line + b"\n")]
    assert json.dumps(got, sort_keys=True) == json.dumps(wanted, sort_keys=True)
    assert (one_by_one.lines, one_by_one.junk) == (decoder.lines, decoder.junk)
    split = JsonLinesDecoder()
    got = split.decode(b"\n".join(lines)[:1])
    got += [
        value for line in [b"\n".join(lines)[1:], *lines] for value in split.decode(line + b"\n")
    ]
    both = [v for v in (_loads_or_none(x.strip()) for x in lines if x.strip()) if v is not None]
    assert json.dumps(got, sort_keys=True) == json.dumps(wanted + both, sort_keys=True)


_PATTERN_POOL = [
    r"checkpoint complete: wrote \d+ buffers",
    r"wrote (?P<value>\d+)",
    r"buffers$",
    r"^restartpoint",
    r"complete: (?:wrote|read)",
    r"(?:checkpoint|restartpoint) complete: wrote \d+ buffers.*distance=(?P<value>\d+) kB",
    r"^ready",
    r"ready$",
    r"(?i)READY now",
    r"a|bcd",
    r"(?:abc)def",
    r"x\.y",
    r"[a]bc",
    r"ab\bcd",
    r"(?x) a b c",
    r"\d+%",
    r"done!",
    r"(?<=wrote )\d+",
    r"ab(?=cd)",
    r"(?i:abc)def",
]
_LINE_PIECES = [
    "checkpoint",
    "restartpoint",
    " complete: wrote ",
    "12",
    " buffers",
    " distance=",
    "kB",
]
_LINE_PIECES += [
    " ",
    "ready",
    "READY now",
    "abc",
    "def",
    "bcd",
    "x.y",
    "xy",
    "cd",
    "ab",
    "%",
    "done!",
]


@settings(max_examples=300, deadline=None)
@given(
    patterns=st.lists(
        st.sampled_from(_PATTERN_POOL), min_size=1, max_size=len(_PATTERN_POOL), unique=True
    ),
    lines=st.lists(st.lists(st.sampled_from(_LINE_PIECES), max_size=8).map("".join), max_size=8),
)
def test_milestone_prefilter_picks_what_the_plain_loop_picks(
    patterns: list[str], lines: list[str]
) -> None:
    # (up to 8 patterns that all have a guard take the few-guards screen, others the trie)
    milestones = MilestoneSet([(p, DYNAMIC if "value" in p else 50.0) for p in patterns])
    compiled = [re.compile(p) for p in patterns]
    for line in lines:
        found = milestones.match(line)
        wanted = next((i for i, regex in enumerate(compiled) if regex.search(line)), None)
        assert (found.index if found is not None else None) == wanted, (patterns, line)
        if milestones.screen is not None:
            hit = milestones.screen(line)
            if hit is None:
                assert wanted is None, (patterns, line)  # the screen turns no match away
            else:  # and the trackers' path from its hit finds what match() finds
                assert milestones.match_screened(line, hit) == found
        if found is not None:  # built through the slots: what the constructor builds
            built = MilestoneMatch(found.index, found.milestone, found.name, line, found.value)
            assert type(found) is MilestoneMatch
            assert found == built
            value = compiled[found.index].search(line).groupdict().get("value")  # type: ignore[union-attr]
            assert found.value == (None if value is None else float(value))


def test_milestone_matches_take_the_direct_path() -> None:
    assert milestones_module._DIRECT_MATCH


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abc.", min_size=1, max_size=4), min_size=1, max_size=6),
    line=st.text(alphabet="abc.x", max_size=20),
)
def test_guard_set_finds_exactly_the_guards_in_a_line(words: list[str], line: str) -> None:
    guards = GuardSet(words)
    assert guards.present(line) == {w for w in words if w in line}
    assert (guards.search(line) is not None) == any(w in line for w in words)


def test_task_events_take_the_direct_path() -> None:
    """``Task.snapshot`` fills ``TaskEvent``'s slots directly only while its field list is
    ``TaskEvent``'s: a field added to the event (``node`` once was) must be added there too,
    or every event of every tracker silently goes through the slower constructor."""
    assert task_module._DIRECT_EVENTS
    event = Task("t", Operation.PULL, Kind.DOWNLOAD, clock=_Clock()).snapshot()
    assert event.node is None
    assert event == TaskEvent(**{f.name: getattr(event, f.name) for f in dataclasses.fields(event)})


_BAR_PATTERNS = [spec.regex.pattern for spec in default_recognisers().specs] + [
    r"(?i:abc)def",
    r"a(?:bc)+d(?:ef)?g",
    r"x(?=yz)y",
    r"(?:p|q)r{2,}s",
]
_BAR_PIECES = ["abc", "ABC", "def", "bc", "d", "g", "ef", "xyz", "y", "pr", "rr", "s", "%", "/"]
# The rows of every recorded tool output: what the shipped bar patterns meet in practice.
_BAR_ROWS = sorted(
    {
        frame.text
        for path in sorted((Path(__file__).parents[1] / "fixtures" / "tty").glob("*.bin"))
        for frame in [*tty.TtyParser().feed(path.read_bytes())]
    }
)


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.sampled_from(_PATTERN_POOL + _BAR_PATTERNS),
    lines=st.lists(
        st.lists(st.sampled_from(_LINE_PIECES + _BAR_PIECES), max_size=10).map("".join),
        max_size=8,
    ),
)
def test_required_literals_are_in_every_line_that_matches(pattern: str, lines: list[str]) -> None:
    """The bar files' test before the regex (every required literal ``in`` the row) never
    turns away a row the pattern matches."""
    required = required_literals(pattern)
    regex = re.compile(pattern)
    for line in [*lines, *_BAR_ROWS]:
        if regex.search(line) is not None:
            assert all(word in line for word in required), (pattern, line, required)


_RECORDINGS = sorted((Path(__file__).parents[1] / "fixtures" / "tty").glob("*.bin"))


class _ReadClock:
    """A clock that moves only between reads, as the wall clock does within one read."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=120, deadline=None)
@given(
    path=st.sampled_from(_RECORDINGS),
    size=st.integers(min_value=1, max_value=9000),
    step=st.sampled_from([0.0, 0.01, 0.03, 0.07]),
)
def test_a_redrawn_bar_read_once_per_read_gives_the_per_frame_events(
    path: Path, size: int, step: float
) -> None:
    """ExecTracker reads the wall clock once per read (its frames arrived together), in the
    shortcut for a redrawn bar and in the loop for the rest: the same events as the loop
    reading it per frame, on a clock that moves between reads."""
    data = path.read_bytes()
    trackers = []
    for shortcut in (True, False):
        clock = _ReadClock()
        tracker = execprogress.ExecTracker("exec:t", kind=None, clock=clock)
        if shortcut:
            execprogress._WALL_CLOCK = clock  # type: ignore[misc]
        try:
            events = []
            for start in range(0, len(data), size):
                events += tracker.feed(data[start : start + size])
                clock.now += step
            events += tracker.feed_eof()
        finally:
            execprogress._WALL_CLOCK = _TIME  # type: ignore[misc]
        trackers.append(([e.to_dict() for e in events], tracker.last_lines))
    assert trackers[0] == trackers[1]


_TIME = execprogress._WALL_CLOCK


_HOSTILE_PIECES = [
    *(b"\r", b"\n", b"a", b"\x01", b"\x7f", b"\x08", b"\t", b"\x1b", b"\x1b[2K", b"\x1b]0;t"),
    *(b"\x07", b"\xc3", b"\xa9", b"\xe2\x94\x81", b"\xff", b"\x1b[1A", b"9%"),
]


class _OddReference(tty.TtyParser):
    """The parser telling the odd control characters from the decoded text by regex, as
    it did before the bytes were asked."""

    def _process(self, text: str, out: list[tty.Frame], odd: bool) -> None:
        super()._process(text, out, tty._ODD_CONTROL_BUT_ESC.search(text) is not None)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(_HOSTILE_PIECES),
            max_size=12,
        ).map(b"".join),
        min_size=1,
        max_size=6,
    )
)
def test_odd_controls_told_from_the_bytes_give_the_frames_the_text_search_gives(
    reads: list[bytes],
) -> None:
    fast, plain = tty.TtyParser(max_line=7), _OddReference(max_line=7)
    for data in reads:
        assert fast.feed(data) == plain.feed(data)
    assert fast.feed_eof() == plain.feed_eof()


class _LoopReference(tty.TtyParser):
    """The parser taking every escape sequence through its token loop: none is removed
    first (the plain code that the removal of no-op sequences shortcuts)."""

    def _without_no_ops(self, text: str) -> str:
        return text


_NO_OP_PIECES = [
    *(b"\x1b[0m", b"\x1b[38;5;197m", b"\x1b[35m", b"\x1b[1;", b"m", b"0", b";", b"\x1b["),
    *(b"\x1b", b"\x1b(", b"\x1b]8;;x", b"\x1bP", b"\x07", b"\x1b\\", b"\x1b[2K", b"\x1b[1A"),
    *(b"\x1b7", b"\x1b[?25l", b"\x1b[?25h", b"\x1b[K", b"\x1b[0K", b"\x1b[1K", b"?", b"K"),
    *(b"\x1b[ ", b"\r", b"\n", b"ab", b"\xe2\x94\x81", b"\x00", b"%"),
]


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(_NO_OP_PIECES), max_size=16).map(b"".join),
        min_size=1,
        max_size=6,
    )
)
def test_no_op_sequences_removed_first_give_the_frames_the_token_loop_gives(
    reads: list[bytes],
) -> None:
    fast, plain = tty.TtyParser(max_line=9), _LoopReference(max_line=9)
    for data in reads:
        assert fast.feed(data) == plain.feed(data)
    assert fast.feed_eof() == plain.feed_eof()


def test_a_parser_learns_a_bounded_number_of_no_op_sequences() -> None:
    parser = tty.TtyParser()
    for colour in range(100):  # hostile: a new colour in every read
        assert parser.feed(f"\x1b[38;5;{colour}mx{colour}\r".encode()) == (
            [] if colour == 0 else [tty.Frame(0, f"x{colour - 1}", tty.FrameEnd.OVERWRITE, True)]
        )
    assert len(parser._no_ops) == tty._MAX_KNOWN_NO_OPS


@pytest.mark.parametrize(
    "text",
    [
        b"ab\r\x1b[0m\n",
        b"ab\r\x1b[0m\x1b[35m\ncd",
        b"ab\r\x1b[K\n",
        b"ab\r\x1b[2K\n",
        b"ab\r\x1b[2K\x1b[1Acd\r\x1b[2Kef\r\n",
        b"\x07ab\r\x1b[0m\n",  # an odd control: the SGR-only path
        b"ab\r\x1b[?25l\r\n",
    ],
)
def test_a_no_op_sequence_between_cr_and_lf_gives_the_same_frames_at_every_split(
    text: bytes,
) -> None:
    """Taking the sequence out must not join \r and \n into one newline, which it would
    only do when both arrive in one read."""
    whole = _frames_of(tty.TtyParser(), [text])
    assert whole == _frames_of(_LoopReference(), [text])
    for cut in range(1, len(text)):
        assert _frames_of(tty.TtyParser(), [text[:cut], text[cut:]]) == whole, cut


def _frames_of(parser: tty.TtyParser, reads: list[bytes]) -> list[tty.Frame]:
    frames = [frame for data in reads for frame in parser.feed(data)]
    return frames + parser.feed_eof()


# Fewer, likelier neighbours: a CR, then a sequence, then a LF or more text.
_BOUNDARY_PIECES = [
    *(b"\r", b"\n", b"ab", b"\x1b[0m", b"\x1b[K", b"\x1b[2K", b"\x1b[1A", b"\x1b[?25l"),
    *(b"\x1b", b"\x1b[", b"\x1b]0;t", b"\x07", b"\x00", b"\xe2\x94\x81", b"7%"),
]


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.sampled_from(_BOUNDARY_PIECES), max_size=30).map(b"".join),
    st.lists(st.integers(min_value=1, max_value=120), max_size=10),
)
def test_frames_with_no_op_sequences_are_the_same_whatever_the_read_boundaries(
    text: bytes, cuts: list[int]
) -> None:
    """The shortcuts see one read at a time: none may make a frame depend on where a read
    ends (a CR and a LF joined only when they come together, say)."""
    bounds = sorted({cut for cut in cuts if cut < len(text)})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)], strict=True)]
    whole = _frames_of(tty.TtyParser(max_line=9), [text])
    assert _frames_of(tty.TtyParser(max_line=9), pieces) == whole
    assert _frames_of(_LoopReference(max_line=9), [text]) == whole


def _tqdm_as_before(text: str) -> object:
    """recognise's tqdm step as it was before its literal guards ("%" for the known-total
    shape, a rate's "/s" or "s/" for the other)."""
    if "[" in text and ("%" in text or "/" in text):
        match = bars._TQDM.match(text)
        if match is not None:
            return bars._tqdm_reading(match, known_total=True)
        match = bars._TQDM_UNKNOWN.match(text)
        if match is not None and ("/s" in match["rate"] or "s/" in match["rate"]):
            return bars._tqdm_reading(match, known_total=False)
    return None


_TQDM_LINE = st.builds(
    "{}{}{}{}{}{}{}".format,
    st.sampled_from(["", "desc: ", "a:b: ", "  "]),
    st.sampled_from(["", " 45%|###  | ", "100%|#####| ", "7%", " 45% "]),
    st.sampled_from(["4.5M/10.0M", "12/40", "3", "0.98k/1.00M", "4.5", "12it"]),
    st.sampled_from([" [", " ", "["]),
    st.sampled_from(["00:01<00:02", "00:01", "1:00:01<?", "x"]),
    st.sampled_from([", 3.2MB/s]", ", 1.00s/it]", ", ?it/s]", ", 5.00MB/s", ",]", "]"]),
    st.sampled_from(["", " Get:1 http://x/y [3 kB]", "%", "/s"]),
)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_TQDM_LINE, st.text(alphabet="[]%/s:<,. 0123456789kMB|#", max_size=40)))
def test_tqdm_guards_read_what_the_regexes_alone_read(text: str) -> None:
    before = _tqdm_as_before(text)
    reading = bars.recognise(text)
    if before is not None:
        assert reading == before
    else:
        assert reading is None or reading.style is not bars.BarStyle.TQDM


def test_tqdm_guards_read_every_recorded_frame_as_before() -> None:
    for path in sorted((Path(__file__).parents[1] / "fixtures" / "tty").glob("*.bin")):
        parser = tty.TtyParser()
        frames = parser.feed(path.read_bytes()) + parser.feed_eof()
        for frame in frames:
            before = _tqdm_as_before(frame.text)
            if before is not None:
                assert bars.recognise(frame.text) == before, (path.name, frame.text)
