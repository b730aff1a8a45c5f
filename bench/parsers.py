"""Parser throughput on recorded real streams, each against its baselines in the same run.

* pull tracker: engine messages/s, bytes in (JSON decoding included) to events out, against
  ``json.loads`` alone on the same lines (the floor) and the seed's way (decode, then sum
  ``progressDetail`` per layer);
* milestones: log lines/s with 4 and with 50 milestones, against the seed's way (every
  pattern compiled again for every line: both Python readings of it, see below) and a loop
  over precompiled patterns;
* milestone engines: the shipped profiles' patterns on the same log, each searched with
  RE2 (``core/linear.py``) against Python's ``re``, and the worst case of each engine on a
  hostile line of the line cap;
* TTY parser: MB/s on recorded tqdm and on recorded rich output, against the seed's per-read
  ``\\d+%`` scan (4 KiB reads) and the pyte terminal emulator fed the same bytes.

Inputs are the recordings under ``tests/fixtures/pull`` and ``tests/fixtures/tty`` and the
PostgreSQL load log in ``bench/data`` (see its README), replicated to a volume that takes a
measurable time. ``scale`` shrinks every volume (the smoke test uses a tiny one).
"""

from __future__ import annotations

import cProfile
import importlib
import io
import json
import pstats
import re
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from bench.harness import Comparison, Family, Target, rate_runs
from dockprogress.core.execprogress import ExecTracker
from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.linear import compile_linear
from dockprogress.core.logprogress import LogProgress
from dockprogress.core.manifest import ImageManifest, parse_manifest
from dockprogress.core.milestones import (
    MAX_MATCH_LINE,
    Milestone,
    MilestoneSet,
    parse_milestones,
)
from dockprogress.core.pull import PullTracker
from dockprogress.core.tty import TtyParser

__all__ = [
    "ROWS",
    "bench_build_tracker",
    "bench_engines",
    "bench_milestones",
    "bench_pull_tracker",
    "bench_push_tracker",
    "bench_tool_bars",
    "bench_tty",
    "milestone_sets",
    "run",
]

ROOT = Path(__file__).resolve().parents[1]
PULL_FIXTURES = ROOT / "tests" / "fixtures" / "pull"
TTY_FIXTURES = ROOT / "tests" / "fixtures" / "tty"
LOG_RECORDING = ROOT / "bench" / "data" / "postgres_load.log"
MILESTONE_FILE = ROOT / "src" / "dockprogress" / "examples" / "postgres-load.toml"

#: The seed reads the exec stream 4 KiB at a time; every TTY subject gets the same reads.
READ_SIZE = 4096

# (recording, manifest) pairs of tests/fixtures/pull replayed by the pull benchmark.
PULL_RECORDINGS = (
    ("fresh_layers", "dp_layers_1"),
    ("resumed_layers", "dp_layers_1"),
    ("cached_shared_b", "dp_shared_b"),
)


# ----------------------------------------------------------------------------- inputs


def _pull_chunks(name: str) -> tuple[str, list[bytes]]:
    lines = (PULL_FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    image = str(json.loads(lines[0])["recording"]["image"])
    chunks = []
    for line in lines[1:]:
        item = json.loads(line)
        if "chunk" in item:
            chunks.append(item["chunk"].encode("utf-8"))
    return image, chunks


def _manifest_sizes(name: str) -> dict[str, int]:
    found = parse_manifest((PULL_FIXTURES / "manifests" / f"{name}.json").read_bytes())
    assert isinstance(found, ImageManifest)
    return found.sizes


def _tty_corpus(prefix: str) -> list[bytes]:
    """The recordings whose name (without a ``host_`` prefix) starts with ``prefix``."""
    paths = sorted(TTY_FIXTURES.glob("*.bin"))
    return [p.read_bytes() for p in paths if p.stem.removeprefix("host_").startswith(prefix)]


def _reads(blob: bytes, size: int = READ_SIZE) -> list[bytes]:
    return [blob[i : i + size] for i in range(0, len(blob), size)]


def _copies(volume: float, unit: float, minimum: int = 1) -> int:
    return max(minimum, round(volume / max(unit, 1.0)))


# ------------------------------------------------------------------------ pull tracker


def bench_pull_tracker(*, scale: float = 1.0, runs: int = 5) -> tuple[Comparison, Target, str]:
    """Messages/s of JsonLinesDecoder + PullTracker against ``json.loads`` on the same lines."""
    recordings = []
    for name, manifest in PULL_RECORDINGS:
        image, chunks = _pull_chunks(name)
        recordings.append((image, chunks, _manifest_sizes(manifest)))
    lines = [
        line
        for _, chunks, _ in recordings
        for line in b"".join(chunks).split(b"\n")
        if line.strip()
    ]
    copies = _copies(40_000 * scale, len(lines))
    messages = len(lines) * copies
    # Each recording's own messages, decoded, for the tracker-alone baseline.
    decoded = [
        [json.loads(line) for line in b"".join(chunks).split(b"\n") if line.strip()]
        for _, chunks, _ in recordings
    ]

    def subject(copies: int = copies) -> None:
        for _ in range(copies):
            for image, chunks, sizes in recordings:
                decoder = JsonLinesDecoder()
                tracker = PullTracker(image, layer_sizes=sizes)
                tracker.begin()
                for chunk in chunks:
                    for message in decoder.decode(chunk):
                        tracker.feed(message)
                for message in decoder.flush():
                    tracker.feed(message)
                tracker.feed_eof()

    def tracker_alone() -> None:
        for _ in range(copies):
            for (image, _chunks, sizes), recorded in zip(recordings, decoded, strict=True):
                tracker = PullTracker(image, layer_sizes=sizes)
                tracker.begin()
                for message in recorded:
                    tracker.feed(message)
                tracker.feed_eof()

    loads = json.loads

    def floor() -> None:
        for _ in range(copies):
            for line in lines:
                loads(line)

    def seed_way() -> None:
        # The seed's pullImageWithProgress: decode each message, keep current/total per layer.
        for _ in range(copies):
            current: dict[str, int] = {}
            total: dict[str, int] = {}
            for line in lines:
                message = loads(line)
                detail = message.get("progressDetail")
                if detail and message.get("status") == "Downloading":
                    layer = message.get("id", "")
                    current[layer] = detail.get("current", 0)
                    total[layer] = detail.get("total", 0)
                    _ = sum(current.values()), sum(total.values())

    unit = "msg/s"
    comparison = Comparison(
        "Pull tracker: engine messages/s, bytes in to events out",
        rate_runs("JsonLinesDecoder + PullTracker (manifest sizes)", unit, messages, subject, runs),
        [
            rate_runs("json.loads alone (the floor)", unit, messages, floor, runs),
            rate_runs("seed's way: json.loads + per-layer sums", unit, messages, seed_way, runs),
            rate_runs("PullTracker.feed alone (pre-decoded)", unit, messages, tracker_alone, runs),
        ],
        input=(
            f"{', '.join(n for n, _ in PULL_RECORDINGS)} ({len(lines)} messages) "
            f"x {copies} = {messages} messages, a fresh tracker per recording copy"
        ),
    )
    slowdown = comparison.baselines[0].median / comparison.subject.median
    target = Target(
        "pull tracker within 2x of json.loads alone",
        slowdown,
        2.0,
        "x json.loads time",
        at_least=False,
    )
    profile = _profile(lambda: subject(max(1, copies // 4)), top=8)
    return comparison, target, profile


# -------------------------------------------------------------------------- milestones


def _filler_milestones(count: int) -> list[dict[str, Any]]:
    """``count`` realistic milestones that never match the PostgreSQL log (other services')."""
    shapes = (
        r"applying migration {i:04d}_\w+",
        r"^step {i} of \d+: (?:copy|index|analyse) done",
        r"loaded \d+ rows into table t{i}\b",
        r"(?:created|dropped) index idx_{i}_\w+",
        r"worker-{i} ready after \d+(?:\.\d+)? ?ms",
        r"^\[{i:02d}/\d+\] fetching shard",
    )
    out = []
    for i in range(count):
        out.append(
            {
                "pattern": shapes[i % len(shapes)].format(i=i),
                "progress": round(10 + 69 * i / max(count - 1, 1), 2),
                "description": f"extra stage {i}",
                "name": f"extra-{i}",
            }
        )
    return out


def milestone_sets() -> dict[int, MilestoneSet]:
    """The 4- and 50-milestone sets: the shipped PostgreSQL load file, trimmed or padded."""
    shipped = parse_milestones(MILESTONE_FILE.read_text(encoding="utf-8"))
    by_name = dict(zip(shipped.names, shipped.milestones, strict=True))
    four = [by_name[n] for n in ("start", "server-ready", "loading", "ready")]
    tables: list[Milestone | dict[str, Any]] = []
    for name, milestone in by_name.items():
        if name == "loading":  # the checkpoint line has to get past every other stage first
            tables.extend(_filler_milestones(50 - len(by_name)))
        tables.append(milestone)
    return {
        4: MilestoneSet(four, name="bench-4"),
        50: MilestoneSet(tables, name="bench-50"),
    }


def _seed_search(patterns: list[str]) -> Callable[[Iterable[str]], None]:
    """The seed's loop read as Python would: ``re.search(pattern, line)`` (cache hit path)."""
    search = re.search

    def work(lines: Iterable[str]) -> None:
        for line in lines:
            for pattern in patterns:
                if search(pattern, line):
                    break

    return work


def _seed_compile(patterns: list[str]) -> Callable[[Iterable[str]], None]:
    """The seed's loop as Go ran it: every pattern really compiled again for every line."""
    purge, compile_ = re.purge, re.compile

    def work(lines: Iterable[str]) -> None:
        for line in lines:
            purge()  # Python caches compiled patterns; Go's regexp.Compile does not
            for pattern in patterns:
                if compile_(pattern).search(line):
                    break

    return work


def _precompiled(patterns: list[str]) -> Callable[[Iterable[str]], None]:
    compiled = [re.compile(p) for p in patterns]

    def work(lines: Iterable[str]) -> None:
        for line in lines:
            for regex in compiled:
                if regex.search(line):
                    break

    return work


def _precompiled_linear(milestones: MilestoneSet) -> Callable[[Iterable[str]], None]:
    """The same loop, each pattern on the engine MilestoneSet gives it (issue 18: RE2 for a
    pattern Python's engine could take polynomial time on), without the guards."""
    compiled = [
        (compile_linear(m.pattern) if engine == "re2" else re.compile(m.pattern)).search
        for m, engine in zip(milestones.milestones, milestones.engines, strict=True)
    ]

    def work(lines: Iterable[str]) -> None:
        for line in lines:
            for search in compiled:
                if search(line):
                    break

    return work


def _required_literal(pattern: str) -> str:
    """The longest run of plain characters every match of ``pattern`` must contain ('' if
    none): the top-level sequence's literals, case-sensitive patterns only."""
    parser: Any = importlib.import_module("re._parser")
    try:
        items = parser.parse(pattern)
    except re.error:
        return ""
    if items.state.flags & re.IGNORECASE:
        return ""
    best, run_ = "", []
    for op, arg in items:
        if str(op) == "LITERAL":
            run_.append(chr(arg))
            continue
        best = max(best, "".join(run_), key=len)
        run_ = []
    return max(best, "".join(run_), key=len)


def _literal_guarded(patterns: list[str]) -> Callable[[Iterable[str]], None]:
    """The simple form of MilestoneSet's guards, for comparison: before each pattern's
    search, a C-level ``in`` test for a literal every match must contain."""
    guarded = [(_required_literal(p), re.compile(p)) for p in patterns]
    guarded = [(lit if len(lit) >= 3 else "", rx) for lit, rx in guarded]

    def work(lines: Iterable[str]) -> None:
        for line in lines:
            for literal, regex in guarded:
                if literal and literal not in line:
                    continue
                if regex.search(line):
                    break

    return work


def bench_milestones(
    *, scale: float = 1.0, runs: int = 5
) -> tuple[list[Comparison], list[Target], str]:
    """Lines/s of LogProgress (match + events) with 4 and 50 milestones, and the baselines."""
    log = LOG_RECORDING.read_text(encoding="utf-8").splitlines()
    comparisons: list[Comparison] = []
    targets: list[Target] = []
    profile = ""
    unit = "lines/s"
    for size, milestones in milestone_sets().items():
        patterns = [m.pattern for m in milestones.milestones]
        copies = _copies((100_000 if size == 4 else 25_000) * scale, len(log))
        lines = log * copies
        # Recompiling 50 patterns per line costs about a millisecond: fewer lines for that one.
        slow_copies = _copies((4_000 if size == 4 else 240) * scale, len(log))
        slow_lines = log * slow_copies

        def subject(milestones: MilestoneSet = milestones, copies: int = copies) -> None:
            # A fresh tracker per copy: the recording ends with the final milestone.
            for _ in range(copies):
                tracker = LogProgress(milestones, clock=time.time)
                for line in log:
                    tracker.feed_line(line)

        def match_only(milestones: MilestoneSet = milestones, lines: list[str] = lines) -> None:
            match = milestones.match
            for line in lines:
                match(line)

        precompiled = _precompiled(patterns)
        linear = _precompiled_linear(milestones)
        guarded = _literal_guarded(patterns)
        seed_search = _seed_search(patterns)
        seed_compile = _seed_compile(patterns)
        n, n_slow = len(lines), len(slow_lines)
        comparison = Comparison(
            f"Milestones ({size}): log lines/s, line in to events out",
            rate_runs(f"LogProgress.feed_line, {size} milestones", unit, n, subject, runs),
            [
                rate_runs(
                    "seed's way, faithful: re.compile per line, cache purged",
                    unit,
                    n_slow,
                    partial(seed_compile, slow_lines),
                    max(3, runs - 2),
                    warmup=0,  # every run is cold anyway: the cache is purged per line
                ),
                rate_runs(
                    "seed's way, Python idiom: re.search(pattern, line)",
                    unit,
                    n,
                    partial(seed_search, lines),
                    runs,
                ),
                rate_runs(
                    "loop over precompiled patterns",
                    unit,
                    n,
                    partial(precompiled, lines),
                    runs,
                ),
                rate_runs(
                    "loop over precompiled patterns, each on its linear-time engine (RE2 "
                    f"for {milestones.engines.count('re2')} of {size})",
                    unit,
                    n,
                    partial(linear, lines),
                    runs,
                ),
                rate_runs("MilestoneSet.match alone", unit, n, match_only, runs),
                rate_runs(
                    "per-pattern literal 'in' guard before each search",
                    unit,
                    n,
                    partial(guarded, lines),
                    runs,
                ),
            ],
            input=(
                f"bench/data/postgres_load.log ({len(log)} lines) x {copies} = {n} lines "
                f"({n_slow} for the purged-cache baseline); {size} milestones"
            ),
        )
        comparisons.append(comparison)
        if size == 4:
            # The target for a small set (it was not a row before): the whole tracker,
            # events included, at least as fast as the plain loop over precompiled patterns.
            targets.append(
                Target(
                    "milestones (4): LogProgress at least the precompiled loop's speed",
                    comparison.ratio(comparison.baselines[2]),
                    1.0,
                    "x the loop's lines/s",
                    at_least=True,
                    note=(
                        f"{comparison.ratio(comparison.baselines[3]):.2f}x the same loop with "
                        "each pattern on its linear-time engine"
                    ),
                )
            )
        if size == 50:
            subject_rate = comparison.subject.median
            targets.append(
                Target(
                    "milestones >= 500k lines/s with 50 milestones",
                    subject_rate,
                    500_000,
                    "lines/s",
                    at_least=True,
                )
            )
            targets.append(
                Target(
                    "milestones >= 10x the seed's way (faithful: recompiled), 50 milestones",
                    comparison.ratio(comparison.baselines[0]),
                    10.0,
                    "x",
                    at_least=True,
                    note=(
                        f"{comparison.ratio(comparison.baselines[1]):.2f}x the cache-hit "
                        "reading re.search(pattern, line)"
                    ),
                )
            )
            profile = _profile(partial(subject, copies=max(1, copies // 5)), top=8)
    return comparisons, targets, profile


# ------------------------------------------------------------------ milestone engines

#: The polynomial pattern of issue 18 and the line that makes ``re`` backtrack on it.
HOSTILE_PATTERN = r".*a.*b"


def bench_engines(*, scale: float = 1.0, runs: int = 5) -> tuple[Comparison, Target]:
    """RE2 against ``re`` on every pattern of the shipped milestone files, same lines."""
    log = LOG_RECORDING.read_text(encoding="utf-8").splitlines()
    examples = sorted(MILESTONE_FILE.parent.glob("*.toml"))
    patterns = [m.pattern for f in examples for m in parse_milestones(f.read_text()).milestones]
    copies = _copies(20_000 * scale, len(log))
    lines = log * copies
    n = len(lines) * len(patterns)
    linear = [compile_linear(p).search for p in patterns]
    backtracking = [re.compile(p).search for p in patterns]

    def every(searches: list[Callable[[str], object]]) -> None:
        for line in lines:
            for search in searches:
                search(line)

    # The worst case of the line cap: 2,048 characters of "a" (no "b"), cubic for re.
    hostile = "a" * MAX_MATCH_LINE
    start = time.perf_counter()
    compile_linear(HOSTILE_PATTERN).search(hostile)
    re2_worst = time.perf_counter() - start
    short = "a" * 256  # re takes seconds on the full line: timed on an eighth of it
    start = time.perf_counter()
    re.compile(HOSTILE_PATTERN).search(short)
    re_worst = time.perf_counter() - start
    comparison = Comparison(
        "Milestone engines: RE2 against re, searches/s over the shipped profiles' patterns",
        rate_runs(
            "RE2 (core/linear.py), every pattern", "searches/s", n, partial(every, linear), runs
        ),
        [
            rate_runs(
                "Python re, every pattern", "searches/s", n, partial(every, backtracking), runs
            )
        ],
        input=(
            f"bench/data/postgres_load.log ({len(log)} lines) x {copies}, each line searched "
            f"with the {len(patterns)} patterns of {', '.join(f.name for f in examples)} "
            "(no prefilter: every pattern on every line). Worst case, "
            f"{HOSTILE_PATTERN!r} on 'a' x {MAX_MATCH_LINE}: RE2 {re2_worst * 1e3:.2f} ms; "
            f"re {re_worst * 1e3:.0f} ms on 'a' x 256 already (cubic: x512 on the full line)"
        ),
    )
    target = Target(
        "a polynomial milestone pattern <= 5 ms on a worst-case line of the line cap (RE2)",
        re2_worst * 1e3,
        5.0,
        "ms",
        at_least=False,
    )
    return comparison, target


# ------------------------------------------------------------------------- TTY parser

_SEED_PERCENT = re.compile(rb"(\d+)%")


def _seed_scan(reads: list[bytes], callback: Callable[[int], object]) -> None:
    """The seed's parseProgressPercent on every 4 KiB read: no state kept between reads."""
    findall = _SEED_PERCENT.findall
    for data in reads:
        found = findall(data)
        if found:
            callback(int(found[-1]))


def bench_tty(*, scale: float = 1.0, runs: int = 5) -> tuple[list[Comparison], list[Target], str]:
    """MB/s of TtyParser and of ExecTracker on tqdm and rich recordings, and the baselines."""
    import pyte

    comparisons: list[Comparison] = []
    targets: list[Target] = []
    profile = ""
    unit = "MB/s"
    for corpus in ("tqdm", "rich"):
        files = _tty_corpus(corpus)
        one = sum(len(f) for f in files)
        copies = _copies(8e6 * scale, one)
        blob = b"".join(files) * copies
        reads = _reads(blob)
        megabytes = len(blob) / 1e6
        # pyte runs near 1 MB/s: measured on fewer copies of the same bytes.
        pyte_copies = _copies(0.5e6 * scale, one)
        pyte_reads = _reads(b"".join(files) * pyte_copies)
        pyte_mb = sum(len(r) for r in pyte_reads) / 1e6
        file_reads = [_reads(f) for f in files]
        # The whole tracker (frames coalesced per 50 ms, see ExecTracker): the same volume.
        tracker_copies = copies
        tracker_mb = tracker_copies * one / 1e6

        def parser(reads: list[bytes] = reads) -> None:
            tty = TtyParser()
            feed = tty.feed
            for data in reads:
                feed(data)
            tty.feed_eof()

        def tracker(
            file_reads: list[list[bytes]] = file_reads, copies: int = tracker_copies
        ) -> None:
            # One command per recording: a fresh tracker each, as the exec adapter makes.
            for _ in range(copies):
                for pieces in file_reads:
                    exec_tracker = ExecTracker("exec:bench", kind=None)
                    for data in pieces:
                        exec_tracker.feed(data)
                    exec_tracker.feed_eof()
                    exec_tracker.exit(0)

        def seed(reads: list[bytes] = reads) -> None:
            seen: list[int] = []
            _seed_scan(reads, seen.append)

        def emulator(reads: list[bytes] = pyte_reads) -> None:
            screen = pyte.Screen(100, 30)
            stream = pyte.ByteStream(screen)
            for data in reads:
                stream.feed(data)

        comparison = Comparison(
            f"TTY parser on {corpus}: MB/s of raw exec output, 4 KiB reads",
            rate_runs("TtyParser (rows/frames out)", unit, megabytes, parser, runs),
            [
                rate_runs(
                    "pyte Screen(100x30) + ByteStream",
                    unit,
                    pyte_mb,
                    emulator,
                    max(3, runs - 2),
                    warmup=0,
                ),
                rate_runs("seed's per-read \\d+% scan", unit, megabytes, seed, runs),
                rate_runs(
                    "ExecTracker (parser + bar recognition + events)",
                    unit,
                    tracker_mb,
                    tracker,
                    runs,
                ),
            ],
            input=(
                f"{len(files)} {corpus} recordings ({one / 1e3:.0f} kB) x {copies} = "
                f"{megabytes:.1f} MB ({tracker_mb:.1f} MB for ExecTracker, "
                f"{pyte_mb:.1f} MB for pyte); "
                "a fresh ExecTracker per recording copy"
            ),
        )
        comparisons.append(comparison)
        rate = comparison.subject.median
        targets.append(Target(f"TTY parser >= 50 MB/s ({corpus})", rate, 50.0, unit, True))
        targets.append(
            Target(
                f"TTY parser >= 20x pyte ({corpus})",
                comparison.ratio(comparison.baselines[0]),
                20.0,
                "x",
                True,
            )
        )
        tracker_rate = comparison.baselines[2].median
        targets.append(
            Target(
                f"whole exec tracker >= 50 MB/s ({corpus}; the parser target applied to "
                "bytes-to-events)",
                tracker_rate,
                50.0,
                unit,
                True,
                note=f"{tracker_rate / comparison.baselines[0].median:.0f}x pyte",
            )
        )
        targets.append(
            Target(
                f"whole exec tracker within 1.5x of the TTY parser ({corpus})",
                rate / tracker_rate,
                1.5,
                "x parser time",
                False,
            )
        )
        if corpus == "rich":
            profile += "\nTtyParser alone on rich:\n" + _profile(
                partial(parser, reads[: max(1, len(reads) // 4)]), top=6
            )
        if corpus == "tqdm":
            profile += (
                "TtyParser alone on tqdm:\n"
                + _profile(partial(parser, reads[: max(1, len(reads) // 4)]), top=6)
                + "\nExecTracker on tqdm (parser + bars + events):\n"
                + _profile(partial(tracker, copies=max(1, tracker_copies // 3)), top=8)
            )
    return comparisons, targets, profile


def bench_tool_bars(*, scale: float = 1.0, runs: int = 5) -> tuple[Comparison, Target]:
    """MB/s of TtyParser + BarBoard with every recogniser (shipped bar files and built-in
    shapes) on a mix of every recording in tests/fixtures/tty, each once per copy."""
    from dockprogress.core.bars import BarBoard
    from dockprogress.core.execprogress import default_recognisers

    unit = "MB/s"
    files = [p.read_bytes() for p in sorted(TTY_FIXTURES.glob("*.bin"))]
    one = sum(len(f) for f in files)
    copies = _copies(4e6 * scale, one)
    file_reads = [_reads(f) for f in files] * copies
    megabytes = copies * one / 1e6
    recognisers = default_recognisers()

    def parse(pieces_list: list[list[bytes]] = file_reads) -> None:
        for pieces in pieces_list:
            tty = TtyParser()
            for data in pieces:
                tty.feed(data)
            tty.feed_eof()

    def recognise_all(with_files: bool, pieces_list: list[list[bytes]] = file_reads) -> None:
        for pieces in pieces_list:  # a fresh parser and board per recording, as per command
            tty = TtyParser()
            apply = BarBoard(recognisers=recognisers if with_files else None).apply
            for data in pieces:
                for frame in tty.feed(data):
                    apply(frame)
            for frame in tty.feed_eof():
                apply(frame)

    def tracker(pieces_list: list[list[bytes]] = file_reads) -> None:
        for pieces in pieces_list:  # one command per recording, as the exec adapter runs it
            exec_tracker = ExecTracker("exec:bench", kind=None, bars=recognisers)
            for data in pieces:
                exec_tracker.feed(data)
            exec_tracker.feed_eof()
            exec_tracker.exit(0)

    comparison = Comparison(
        "Whole exec tracker with every bar recogniser on a mix of every recording: MB/s, "
        "4 KiB reads",
        rate_runs(
            "ExecTracker (parser + shipped bar files + events)", unit, megabytes, tracker, runs
        ),
        [
            rate_runs("TtyParser alone", unit, megabytes, parse, runs),
            rate_runs(
                "TtyParser + BarBoard on every frame, shipped bar files",
                unit,
                megabytes,
                partial(recognise_all, True),
                runs,
            ),
            rate_runs(
                "TtyParser + BarBoard on every frame, built-in shapes only (tqdm, rich, N%)",
                unit,
                megabytes,
                partial(recognise_all, False),
                runs,
            ),
        ],
        input=(
            f"{len(files)} recordings of tqdm, rich, curl, wget, git, rsync, pip, apt, npm, "
            f"ffmpeg ({one / 1e3:.0f} kB) x {copies} = {megabytes:.1f} MB; a fresh tracker "
            "(or parser and board) per recording copy"
        ),
    )
    target = Target(
        "whole exec tracker with every bar recogniser >= 50 MB/s (mix of every recording)",
        comparison.subject.median,
        50.0,
        unit,
        True,
        note=(
            f"{comparison.baselines[0].median / comparison.subject.median:.2f}x the "
            "TTY parser's time"
        ),
    )
    return comparison, target


# ------------------------------------------------------------------ build and push trackers

BUILD_FIXTURES = ROOT / "tests" / "fixtures" / "build"
CLASSIC_BUILD_RECORDINGS = ("classic_multistage", "classic_cached", "classic_fail")
BUILDKIT_RECORDINGS = ("buildkit_multistage", "buildkit_fail")
PUSH_RECORDINGS = ("push_fresh", "push_exists", "push_modern_fresh", "push_modern_exists")


def _build_plan() -> tuple[list[str], list[str], dict[str, int]]:
    """The multistage context's planned steps (classic, BuildKit) and its stage order."""
    from dockprogress.core.dockerfile import parse_dockerfile

    text = (BUILD_FIXTURES / "contexts" / "multistage" / "Dockerfile").read_text()
    plan = parse_dockerfile(text)
    order = {s.name: s.index for s in plan.stages if s.name}
    order.update({f"stage-{s.index}": s.index for s in plan.stages})
    return (
        [i.text for i in plan.steps("final")],
        [i.text for i in plan.steps("final", builder="buildkit")],
        order,
    )


def _json_texts(blob: bytes) -> list[str]:
    """Each JSON value of a stream of concatenated (indented) values, as its own text."""
    text = blob.decode("utf-8")
    decoder = json.JSONDecoder()
    out, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return out
        if text[at] != "{":  # buildx's plain ERROR lines after the objects: not JSON
            newline = text.find("\n", at)
            at = len(text) if newline < 0 else newline + 1
            continue
        _, end = decoder.raw_decode(text, at)
        out.append(text[at:end])
        at = end


def _tracker_comparison(
    title: str,
    *,
    unit_input: str,
    messages: int,
    subject: Callable[[], None],
    floor: Callable[[], None],
    runs: int,
) -> Comparison:
    """The tracker against ``json.loads`` on the same messages. No target: the issue asks
    for the comparison only (a build or a push is a few thousand messages; what a message
    costs is in the table)."""
    return Comparison(
        title,
        rate_runs("decoder + tracker, bytes in to events out", "msg/s", messages, subject, runs),
        [rate_runs("json.loads alone (the floor)", "msg/s", messages, floor, runs)],
        input=unit_input,
    )


def bench_build_tracker(*, scale: float = 1.0, runs: int = 5) -> list[Comparison]:
    """The classic build stream (JsonLinesDecoder + ClassicBuildTracker) and BuildKit's
    rawjson (RawJsonDecoder + BuildKitTracker), each against ``json.loads`` on its messages."""
    from dockprogress.core.build import ClassicBuildTracker
    from dockprogress.core.buildkit import BuildKitTracker, RawJsonDecoder

    classic_steps, buildkit_steps, order = _build_plan()
    comparisons: list[Comparison] = []

    classic = [(BUILD_FIXTURES / f"{n}.jsonl").read_bytes() for n in CLASSIC_BUILD_RECORDINGS]
    lines = [line for blob in classic for line in blob.split(b"\n") if line.strip()]
    copies = _copies(20_000 * scale, len(lines))
    loads = json.loads

    def classic_subject() -> None:
        for _ in range(copies):
            for blob in classic:
                decoder = JsonLinesDecoder()
                tracker = ClassicBuildTracker("bench", steps=classic_steps)
                tracker.begin()
                for message in decoder.decode(blob):
                    tracker.feed(message)
                for message in decoder.flush():
                    tracker.feed(message)
                tracker.feed_eof()

    def classic_floor() -> None:
        for _ in range(copies):
            for line in lines:
                loads(line)

    comparison = _tracker_comparison(
        "Classic build tracker: engine messages/s",
        unit_input=f"{', '.join(CLASSIC_BUILD_RECORDINGS)} ({len(lines)} messages) x {copies}",
        messages=len(lines) * copies,
        subject=classic_subject,
        floor=classic_floor,
        runs=runs,
    )
    comparisons.append(comparison)

    rawjson = [(BUILD_FIXTURES / f"{n}.rawjson").read_bytes() for n in BUILDKIT_RECORDINGS]
    texts = [t for blob in rawjson for t in _json_texts(blob)]
    copies = _copies(5_000 * scale, len(texts))

    def buildkit_subject() -> None:
        for _ in range(copies):
            for blob in rawjson:
                decoder = RawJsonDecoder()
                tracker = BuildKitTracker("bench", steps=buildkit_steps, stage_order=order)
                tracker.begin()
                for item in decoder.decode(blob):
                    tracker.feed(item)
                for item in decoder.flush():
                    tracker.feed(item)
                tracker.feed_eof(0, decoder.junk)

    def buildkit_floor() -> None:
        for _ in range(copies):
            for text in texts:
                loads(text)

    comparison = _tracker_comparison(
        "BuildKit tracker: rawjson SolveStatus objects/s",
        unit_input=f"{', '.join(BUILDKIT_RECORDINGS)} ({len(texts)} objects) x {copies}",
        messages=len(texts) * copies,
        subject=buildkit_subject,
        floor=buildkit_floor,
        runs=runs,
    )
    comparisons.append(comparison)
    return comparisons


def bench_push_tracker(*, scale: float = 1.0, runs: int = 5) -> Comparison:
    """JsonLinesDecoder + PushTracker on the push recordings against ``json.loads`` alone."""
    from dockprogress.core.push import PushTracker

    blobs = [(BUILD_FIXTURES / f"{n}.jsonl").read_bytes() for n in PUSH_RECORDINGS]
    lines = [line for blob in blobs for line in blob.split(b"\n") if line.strip()]
    copies = _copies(20_000 * scale, len(lines))
    loads = json.loads

    def subject() -> None:
        for _ in range(copies):
            for blob in blobs:
                decoder = JsonLinesDecoder()
                tracker = PushTracker("127.0.0.1:5000/dp/bench:1")
                tracker.begin()
                for message in decoder.decode(blob):
                    tracker.feed(message)
                for message in decoder.flush():
                    tracker.feed(message)
                tracker.feed_eof()

    def floor() -> None:
        for _ in range(copies):
            for line in lines:
                loads(line)

    return _tracker_comparison(
        "Push tracker: engine messages/s",
        unit_input=f"{', '.join(PUSH_RECORDINGS)} ({len(lines)} messages) x {copies}",
        messages=len(lines) * copies,
        subject=subject,
        floor=floor,
        runs=runs,
    )


# ---------------------------------------------------------------------------- profile


def _profile(work: Callable[[], None], *, top: int) -> str:
    """cProfile of one call of ``work``: the ``top`` functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    lines = []
    for (filename, line, name), (_cc, calls, own, _cum, _callers) in rows[:top]:
        where = Path(filename).name if filename != "~" else "builtin"
        share = 100.0 * own / total if total else 0.0
        lines.append(f"{share:5.1f}%  {calls:>9}  {where}:{line} {name}")
    return "\n".join(lines)


#: The rows of this family, for ``python -m bench --only ROW``.
ROWS = (
    "pull_tracker",
    "milestones",
    "engines",
    "tty",
    "tool_bars",
    "build_tracker",
    "push_tracker",
)


def run(*, scale: float = 1.0, runs: int = 5, only: tuple[str, ...] = ROWS) -> Family:
    """Every parser benchmark (or the ``only`` rows), as one family."""
    start = time.perf_counter()
    family = Family("Parser throughput")
    if "pull_tracker" in only:
        pull, pull_target, pull_profile = bench_pull_tracker(scale=scale, runs=runs)
        family.comparisons.append(pull)
        family.targets.append(pull_target)
        family.notes.append("Profile, pull tracker (own time):\n" + pull_profile)
    if "milestones" in only:
        milestone_comparisons, milestone_targets, milestone_profile = bench_milestones(
            scale=scale, runs=runs
        )
        family.comparisons.extend(milestone_comparisons)
        family.targets.extend(milestone_targets)
        family.notes.append(
            "Profile, LogProgress with 50 milestones (own time):\n" + milestone_profile
        )
    if "engines" in only:
        engines, engines_target = bench_engines(scale=scale, runs=runs)
        family.comparisons.append(engines)
        family.targets.append(engines_target)
    if "tty" in only:
        tty_comparisons, tty_targets, tty_profile = bench_tty(scale=scale, runs=runs)
        family.comparisons.extend(tty_comparisons)
        family.targets.extend(tty_targets)
        family.notes.append("Profile, TTY parser and tracker (own time):\n" + tty_profile)
    if "tool_bars" in only:
        tool_bars, tool_bars_target = bench_tool_bars(scale=scale, runs=runs)
        family.comparisons.append(tool_bars)
        family.targets.append(tool_bars_target)
    if "build_tracker" in only:
        family.comparisons.extend(bench_build_tracker(scale=scale, runs=runs))
    if "push_tracker" in only:
        family.comparisons.append(bench_push_tracker(scale=scale, runs=runs))
    family.seconds = time.perf_counter() - start
    return family
