"""The page names each task's node and shows a silent node's running tasks as stale."""

from __future__ import annotations

import pytest

from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import ServerThread
from dockprogress.task import Task
from tests.web.conftest import PageProbe, free_port

pytestmark = pytest.mark.browser


def _on(node: str, percent: float) -> TaskEvent:
    event = Task("pull:app:1", Operation.PULL, Kind.DOWNLOAD, total=100).update(current=percent)
    assert event is not None
    return TaskEvent.from_dict({**event.to_dict(), "node": node})


def test_two_nodes_same_task_id_two_cards_each_naming_its_node(probe: PageProbe) -> None:
    hub = EventHub(heartbeat=1.0)
    hub.publish(_on("ci-runner-1", 30))
    hub.publish(_on("gpu-node-7", 60))
    with ServerThread(hub, port=free_port()) as server:
        page = probe.page
        page.goto(server.url + "/?fade=600")
        cards = page.locator('li.task[data-task="pull:app:1"]')
        cards.nth(1).wait_for()
        assert cards.count() == 2
        nodes = sorted(cards.locator(".node").all_inner_texts())
        assert nodes == ["ci-runner-1", "gpu-node-7"]
        hub.set_node_stale("gpu-node-7")
        stale = page.locator('li.task[data-node="gpu-node-7"] .state')
        page.wait_for_function(
            "() => document.querySelector('li.task[data-node=\"gpu-node-7\"] .state')"
            ".textContent === 'stale'"
        )
        assert stale.inner_text() == "stale"
        running = page.locator('li.task[data-node="ci-runner-1"] .state').inner_text()
        assert running == "running"
        assert "1 stale" in page.locator("#summary").inner_text()
    assert probe.errors == []
