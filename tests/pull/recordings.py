"""Loading the recorded pull streams of ``tests/fixtures/pull`` and replaying them.

A recording (see its README) is a header line then one line per chunk the engine sent, with
the time it arrived. :func:`replay` feeds a recording's bytes, cut into any pieces, through
:class:`JsonLinesDecoder` into a :class:`PullTracker` whose clock reads the arrival time of
the message being fed, so the events do not depend on how the bytes were cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.manifest import ImageManifest, parse_manifest
from dockprogress.core.pull import PullTracker
from dockprogress.events import TaskEvent

#: Recorded times are seconds since the request; events carry Unix time.
EPOCH = 1_700_000_000.0

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pull"


@dataclass
class Recording:
    name: str
    header: dict[str, Any]
    chunks: list[tuple[float, bytes]]
    refusal: dict[str, Any] | None

    @property
    def image(self) -> str:
        return str(self.header["image"])

    @property
    def raw(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)

    def messages(self) -> list[tuple[float, dict[str, Any]]]:
        """Each message with the time its last byte arrived (decoded chunk by chunk)."""
        decoder = JsonLinesDecoder(strict=True)
        out: list[tuple[float, dict[str, Any]]] = []
        for t, chunk in self.chunks:
            out.extend((t, message) for message in decoder.decode(chunk))
        last = self.chunks[-1][0] if self.chunks else 0.0
        out.extend((last, message) for message in decoder.flush())
        return out


def load(name: str) -> Recording:
    lines = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])["recording"]
    chunks: list[tuple[float, bytes]] = []
    refusal = None
    for line in lines[1:]:
        item = json.loads(line)
        if "chunk" in item:
            chunks.append((float(item["t"]), item["chunk"].encode("utf-8")))
        else:
            refusal = item
    return Recording(name, header, chunks, refusal)


def manifest(name: str) -> ImageManifest:
    found = parse_manifest((FIXTURES / "manifests" / f"{name}.json").read_bytes())
    assert isinstance(found, ImageManifest)
    return found


def replay(
    recording: Recording,
    pieces: Iterable[bytes],
    *,
    sizes: dict[str, int] | None,
    raw_percents: list[float] | None = None,
    containerd_store: bool = False,
    unpack_rate: float | None = None,
    tick: float | None = None,
    tracker_out: list[PullTracker] | None = None,
) -> list[TaskEvent]:
    """Feed ``pieces`` (the recording's bytes cut anyhow, maybe with junk) and collect events.

    ``tick`` (seconds): also call :meth:`PullTracker.tick` at every multiple of it between
    two messages' arrival times, as the adapter does while the engine is silent; the ticks
    follow the recorded times, so the events still do not depend on the cuts.
    """
    times = [EPOCH + t for t, _ in recording.messages()]
    now = [EPOCH]
    tracker = PullTracker(
        recording.image,
        layer_sizes=sizes,
        clock=lambda: now[0],
        containerd_store=containerd_store,
        unpack_rate=unpack_rate,
    )
    if tracker_out is not None:
        tracker_out.append(tracker)
    decoder = JsonLinesDecoder()
    events: list[TaskEvent] = []
    first = tracker.begin()
    assert first is not None
    events.append(first)
    index = 0

    def feed(messages: list[dict[str, Any]]) -> None:
        nonlocal index
        for message in messages:
            if _is_engine_message(message):
                arrival = times[index] if index < len(times) else now[0]
                if tick is not None:
                    step = int((now[0] - EPOCH) / tick) + 1
                    while EPOCH + step * tick < arrival:
                        now[0] = EPOCH + step * tick
                        ticked = tracker.tick()
                        if ticked is not None:
                            events.append(ticked)
                        step += 1
                now[0] = arrival
                index += 1
            event = tracker.feed(message)
            if raw_percents is not None:
                raw_percents.append(tracker._percent())
            if event is not None:
                events.append(event)

    for piece in pieces:
        feed(decoder.decode(piece))
    feed(decoder.flush())
    end = tracker.feed_eof()
    if end is not None:
        events.append(end)
    return events


#: Junk objects the tests slip between lines: valid JSON objects the engine never sends.
JUNK_OBJECTS = ({"junk": True}, {"status": 7}, {"id": "abc"})


def _is_engine_message(message: dict[str, Any]) -> bool:
    return message not in JUNK_OBJECTS
