"""Pushes through a paced upload link (tests/throttle.py in front of the bed's registry), on
both engines: live progress over seconds, and a cancel from the dashboard that really stops
the engine's upload.

The bed's nginx front cannot slow a push (``limit_rate`` paces responses only), so each test
starts its own :class:`~tests.throttle.ThrottleProxy` on a free 127.0.0.1 port and pushes to
``127.0.0.1:<port>/...`` (the engines treat 127.0.0.0/8 as an insecure registry by default).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from dockprogress.docker.push import iter_push
from dockprogress.events import State, TaskEvent
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import ServerThread
from tests.build.recordings import assert_promises
from tests.conftest import Testbed as Bed
from tests.push.registries import forget_repository, registry_status, retagged
from tests.throttle import ThrottleProxy

pytestmark = pytest.mark.engine

RANDOM_BYTES = 18_000_000  # the fresh image's two random layers


def test_paced_push_shows_live_percents_of_an_exact_total(fresh_image: str, testbed: Bed) -> None:
    rate = 3_000_000  # the random layers take about 6 s
    events: list[tuple[float, TaskEvent]] = []
    with (
        ThrottleProxy(testbed.registry, rate) as proxy,
        retagged(fresh_image, proxy.address, "-paced") as name,
    ):
        try:
            for event in iter_push(name):
                events.append((time.monotonic(), event))
        finally:
            forget_repository(testbed.registry, _repository(name))  # nothing to mount later
        uploaded = proxy.uploaded
    only = [e for _, e in events]
    assert_promises(only)
    last = only[-1]
    assert last.state is State.DONE
    total = last.total
    assert total is not None
    assert total >= RANDOM_BYTES
    assert last.current == total
    assert uploaded >= RANDOM_BYTES  # every byte went through the paced link
    live = [
        (t, e)
        for t, e in events
        if e.state is State.RUNNING
        and e.detail["exact_total"]
        and e.total == total
        and 0 < e.current < total
    ]
    percents = sorted({round(e.percent or 0) for _, e in live})
    assert len(percents) >= 3, percents
    assert live[-1][0] - live[0][0] >= 2.0, "the progress is seen over seconds"


def _repository(name: str) -> str:
    return name.split("/", 1)[1].rsplit(":", 1)[0]


def _push_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("dockprogress-push ")]


def _wait_stalled(proxy: ThrottleProxy, quiet: float, timeout: float) -> bool:
    """Wait until no byte went upstream for ``quiet`` seconds; ``False`` at the timeout."""
    deadline = time.monotonic() + timeout
    seen, since = proxy.uploaded, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if proxy.uploaded != seen:
            seen, since = proxy.uploaded, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
    return False


def test_cancel_from_the_dashboard_stops_the_engine_pushing(fresh_image: str, testbed: Bed) -> None:
    rate = 1_500_000  # the whole push would take about 13 s
    with (
        ThrottleProxy(testbed.registry, rate) as proxy,
        retagged(fresh_image, proxy.address, "-cancel") as name,
        ServerThread(EventHub(), port=0) as server,
    ):
        response = httpx.post(server.url + "/api/push", json={"image": name}, timeout=30)
        assert response.status_code == 202, response.text
        task = response.json()["task"]
        assert task == f"push:{name}"
        assert proxy.wait_uploaded(2_000_000, 60), f"no push: {server.hub.get(task)}"
        running = server.hub.get(task)
        assert running is not None
        assert running.state is State.RUNNING
        cancel = httpx.post(server.url + f"/api/tasks/{task}/cancel", json={}, timeout=10)
        assert cancel.status_code == 202, cancel.text
        final = server.hub.get(task)
        assert final is not None
        assert final.state is State.CANCELLED
        cancelled_at = time.monotonic()
        # The connections that carry layers (not the engine's idle ones, which only asked).
        uploading = [
            link.client_port for link in proxy.links if link.open and link.uploaded > 256_000
        ]
        assert uploading, "no connection was sending layers"
        # The engine hangs up on the registry at once: its sockets that carried layers leave
        # ESTABLISHED (closed by the engine, FIN sent once what it had queued is through).
        hung_up = False
        while time.monotonic() - cancelled_at < 5 and not hung_up:
            states = proxy.client_states()
            hung_up = all(states.get(port) != "ESTABLISHED" for port in uploading)
            time.sleep(0.1)
        assert hung_up, f"the engine still sends: {proxy.client_states()}"
        # What it had queued in its sockets still drains through the paced link; then
        # nothing more comes, short of the image's bytes.
        assert _wait_stalled(proxy, quiet=3.0, timeout=30), "the engine kept sending"
        assert proxy.uploaded < RANDOM_BYTES, proxy.uploaded
        # The adapter's thread was woken from its read and ended.
        deadline = time.monotonic() + 10
        while _push_threads() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _push_threads() == []
        assert server.hub.get(task) == final  # nothing after the terminal event
    manifest = f"http://{testbed.registry}/v2/{_repository(name)}/manifests/1"
    assert registry_status(manifest) == 404  # the image never arrived
