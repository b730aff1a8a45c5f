"""The recorded TTY streams of tests/fixtures/tty/ and helpers to replay them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dockprogress.core.execprogress import ExecTracker
from dockprogress.core.tty import Frame, TtyParser

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tty"

#: Recordings made in the python fixture container (Debian tqdm 4.64.1, rich 13.3.1) ...
CONTAINER = (
    "tqdm_one",
    "tqdm_nested",
    "tqdm_bytes",
    "tqdm_unknown",
    "tqdm_fast",
    "tqdm_text",
    "rich_one",
    "rich_multi",
    "rich_unknown",
)
#: ... and on the host (PyPI tqdm 4.70, rich 15), where the shapes differ slightly.
HOST = ("host_tqdm_nested", "host_rich_multi")
#: The real tools' bars, recorded by tests/fixtures/tty/record_tools.sh (host, 100x30 pty) and
#: tests/fixtures/tty/bars_demo.py (real tqdm/rich in the python fixture container).
TOOLS = (
    "curl_meter",
    "curl_bar",
    "wget",
    "git_clone",
    "rsync_progress2",
    "pip_install",
    "apt_install",
    "ffmpeg_encode",
    "npm_install",
    "demo_hf",
    "demo_format",
    "demo_rich",
)
ALL = CONTAINER + HOST + TOOLS


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def chunks(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` split at the (sorted, deduplicated) offsets ``cuts``."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def frames(pieces: Sequence[bytes]) -> list[Frame]:
    parser = TtyParser()
    out: list[Frame] = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    out.extend(parser.feed_eof())
    return out


def replay(pieces: Sequence[bytes], **options: Any) -> list[dict[str, Any]]:
    """The tracker's events for ``pieces`` then EOF and exit 0, with a fixed clock.

    Unless ``min_interval`` is given, the board reads every frame (``min_interval=0``), as
    it does when the tool redraws less often than ``MIN_INTERVAL``: with the fixed clock all
    frames would otherwise come "at once" (tests/exec/test_coalescing.py covers that).
    """
    options.setdefault("min_interval", 0.0)
    tracker = ExecTracker("exec:test", description="demo", clock=lambda: 1000.0, **options)
    events = []
    started = tracker.start()
    if started is not None:
        events.append(started)
    for piece in pieces:
        events.extend(tracker.feed(piece))
    events.extend(tracker.feed_eof())
    end = tracker.exit(0)
    assert end is not None
    events.append(end)
    return [event.to_dict() for event in events]
