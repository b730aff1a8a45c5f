"""Property tests: any classic-builder-shaped stream keeps the promises.

Streams are generated as the engine 20.10 writes them (REFERENCE.md §8, the recordings):
``Step N/M : TEXT`` then ``\\n`` apart; each step either `` ---> Using cache`` or
`` ---> Running in …``, output lines (some in stderr colours), ``Removing intermediate
container``; then `` ---> <id>``, an ``aux`` ID after each stage; at the end
``Successfully built``, or an ``errorDetail`` at a random step. The ``stream`` texts are cut
at random places, as the engine may.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.build import ClassicBuildTracker
from dockprogress.events import State
from tests.build.recordings import StepClock, assert_promises

Message = dict[str, Any]


@st.composite
def build_stream(draw: st.DrawFn) -> tuple[list[Message], int, int | None]:
    steps = draw(st.integers(min_value=1, max_value=12))
    fail_at = draw(st.one_of(st.none(), st.integers(1, steps)))
    text = ""
    messages: list[Message] = []
    for n in range(1, steps + 1):
        messages += [{"stream": f"Step {n}/{steps} : RUN step {n}"}, {"stream": "\n"}]
        if draw(st.booleans()) and fail_at != n:
            text = " ---> Using cache\n ---> 0123456789ab\n"
        else:
            text = " ---> Running in 0123456789ab\n"
            for line in draw(st.lists(st.text("abc xyz", max_size=20), max_size=4)):
                red = draw(st.booleans())
                text += f"\x1b[91m{line}\n\x1b[0m" if red else f"{line}\n"
            if fail_at == n:
                messages += _cut(draw, text + "Removing intermediate container 0123456789ab\n")
                messages.append(
                    {"errorDetail": {"code": 2, "message": "returned a non-zero code: 2"}}
                )
                return messages, steps, n
            text += "Removing intermediate container 0123456789ab\n ---> 0123456789ab\n"
        messages += _cut(draw, text)
        if draw(st.integers(0, 3)) == 0:
            messages.append({"aux": {"ID": "sha256:" + "0" * 64}})
    messages += [{"aux": {"ID": "sha256:" + "1" * 64}}]
    messages += [{"stream": "Successfully built 111111111111\n"}]
    return messages, steps, None


def _cut(draw: st.DrawFn, text: str) -> list[Message]:
    points = sorted(set(draw(st.lists(st.integers(1, max(len(text) - 1, 1)), max_size=3))))
    edges = [0, *points, len(text)]
    return [{"stream": text[a:b]} for a, b in itertools.pairwise(edges) if a < b]


@settings(max_examples=150, deadline=None)
@given(build_stream(), st.booleans())
def test_any_build_stream_keeps_the_promises(
    stream: tuple[list[Message], int, int | None], planned: bool
) -> None:
    messages, steps, fail_at = stream
    plan = [f"RUN step {n}" for n in range(1, steps + 1)] if planned else None
    tracker = ClassicBuildTracker("t", steps=plan, clock=StepClock())
    events = [tracker.begin(), *(tracker.feed(m) for m in messages), tracker.feed_eof()]
    kept = [e for e in events if e is not None]
    assert_promises(kept)
    last = kept[-1]
    if fail_at is None:
        assert last.state is State.DONE
        assert last.current == last.total == steps
    else:
        assert last.state is State.ERROR
        assert tracker.error is not None
        assert tracker.error.exit_code == 2
        assert f"step {fail_at}/{steps}" in (last.error or "")
        assert all("Removing" not in line for line in tracker.error.last_lines)
        assert all("\x1b" not in line for line in tracker.error.last_lines)
