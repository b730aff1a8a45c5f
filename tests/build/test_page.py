"""The dashboard shows a build's steps and a push's layers (real Chromium, recorded streams).

The events come from the recorded classic build and push streams (tests/fixtures/build) fed
to the real trackers, published into the page's hub as the commands would publish them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from dockprogress.core.build import ClassicBuildTracker
from dockprogress.core.push import PushTracker
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import ServerThread
from tests.build.recordings import feed_jsonlines, recording
from tests.build.test_recordings import CLASSIC_STEPS
from tests.web.conftest import PageProbe, chromium, hub, probe, server

__all__ = ["chromium", "hub", "probe", "server"]  # fixtures, imported to be found here

pytestmark = pytest.mark.browser


def _card(probe: PageProbe, task: str) -> Any:
    return probe.page.locator(f'li.task[data-task="{task}"]')


def test_build_steps_and_push_layers_on_the_page(
    probe: PageProbe, server: ServerThread, hub: EventHub
) -> None:
    build = ClassicBuildTracker("demo/app:1", steps=CLASSIC_STEPS, clock=time.time)
    built = feed_jsonlines(build, [recording("classic_multistage.jsonl")])
    push = PushTracker("127.0.0.1:5001/dp/recpush:1", clock=time.time, min_interval=0)
    pushed = feed_jsonlines(push, [recording("push_fresh.jsonl")])
    page = probe.page
    page.goto(server.url + "/?fade=600")
    page.locator('#status[data-state="live"]').wait_for()
    # A build still running, in its RUN step with output: its last output line is shown.
    cut = next(i for i, e in enumerate(built) if "step 3 for me" in e.detail["last_lines"])
    for event in built[: cut + 1]:
        hub.send(event)
    row = _card(probe, "build:demo/app:1")
    row.wait_for()
    row.locator(".line").filter(has_text="step 3 for me").wait_for()
    for event in [*built[cut + 1 :], *pushed]:
        hub.send(event)
    row.and_(page.locator('[data-state="done"]')).wait_for()
    assert row.locator(".layers summary").text_content() == "10 steps"
    row.locator(".layers summary").click()
    steps = row.locator(".layers tbody tr")
    steps.nth(9).wait_for()
    assert steps.count() == 10
    assert (steps.nth(1).locator("td").nth(0).text_content() or "").startswith("2. RUN echo base")
    assert steps.nth(1).locator("td").nth(1).text_content() == "done"
    assert row.locator(".layers thead th").nth(0).text_content() == "step"

    card = _card(probe, "push:127.0.0.1:5001/dp/recpush:1")
    card.and_(page.locator('[data-state="done"]')).wait_for()
    assert card.locator(".layers summary").text_content() == "3 layers (1 already in the registry)"
    card.locator(".layers summary").click()
    layers = card.locator(".layers tbody tr")
    layers.nth(2).wait_for()
    states = sorted(layers.nth(i).locator("td").nth(1).text_content() or "" for i in range(3))
    assert states == ["mounted", "pushed", "pushed"]
    assert card.locator(".layers thead th").nth(2).text_content() == "sent"
    assert probe.errors == []
