"""The page in real headless Chromium: live bars, text never HTML, reconnects, cancel.

Each test starts a real server on a free loopback port and drives the page as a person
would. The pull test also writes ``docs/dashboard.png``, the screenshot of the site's
dashboard page (``docs/dashboard.md``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import ServerThread
from tests.web.conftest import DOCS, PageProbe, count_events, download_events, free_port

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


def card(probe: PageProbe, task: str) -> Any:
    return probe.page.locator(f'li.task[data-task="{task}"]')


def wait_state(probe: PageProbe, task: str, state: str, timeout: float = 60.0) -> None:
    card(probe, task).and_(probe.page.locator(f'[data-state="{state}"]')).wait_for(
        timeout=timeout * 1000
    )


def _percent(text: str) -> float | None:
    return float(text.rstrip("%")) if text else None


@pytest.mark.engine
@pytest.mark.slow
def test_a_real_pull_moves_to_done_with_humanized_sizes(
    probe: PageProbe, server: ServerThread, testbed: Any, remove_image: Callable[[str], None]
) -> None:
    image = testbed.slow(testbed.shared_a)
    remove_image(image)
    page = probe.page
    page.goto(server.url + "/?fade=600")
    page.locator('#status[data-state="live"]').wait_for()

    response = httpx.post(server.url + "/api/pull", json={"image": image}, timeout=30)
    assert response.status_code == 202
    task = response.json()["task"]
    assert task.startswith("pull:")
    row = card(probe, task)
    row.wait_for()

    # Sample the bar while the throttled pull runs: it must move, never back.
    seen: list[float] = []
    amounts: list[str] = []
    shot = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = row.get_attribute("data-state")
        value = _percent(row.locator(".percent").text_content() or "")
        if value is not None and (not seen or value != seen[-1]):
            seen.append(value)
            amounts.append(row.locator(".amount").text_content() or "")
        if not shot and value is not None and 20 < value < 70:
            row.locator(".layers summary").click()
            row.locator(".layers tbody tr").first.wait_for()
            DOCS.mkdir(exist_ok=True)
            page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
            shot = True
        if state in ("done", "error", "cancelled"):
            break
        time.sleep(0.1)
    assert row.get_attribute("data-state") == "done", row.locator(".error").text_content()
    assert shot, f"no screenshot mid-pull; percents seen: {seen}"
    running = [p for p in seen if p < 100]
    assert len(running) >= 3, f"the bar did not move: {seen}"
    assert running == sorted(running)
    size = r"\d+(?:\.\d)? (?:B|kB|MB)"
    assert any(re.fullmatch(f"{size} / {size}", a) for a in amounts), amounts
    final = row.locator(".amount").text_content() or ""
    done, total = final.split(" / ")
    assert done == total
    assert total.endswith("MB")
    assert row.locator(".percent").text_content() == "100%"
    assert row.locator(".cancel").is_hidden()
    layers = row.locator(".layers tbody tr")
    assert layers.count() >= 3
    assert probe.errors == []


@pytest.mark.engine
def test_a_container_log_line_is_shown_as_text_and_runs_nothing(
    probe: PageProbe, server: ServerThread, testbed: Any, docker_client: Any
) -> None:
    line = f"loading {XSS} part 1"
    container = docker_client.containers.run(
        testbed.base, ["sh", "-c", f"echo '{line}'; sleep 600"], detach=True
    )
    try:
        page = probe.page
        page.goto(server.url + "/")
        page.locator('#status[data-state="live"]').wait_for()
        response = httpx.post(
            server.url + "/api/logs",
            json={
                "container": container.id,
                "milestones": [
                    {"pattern": "loading", "progress": 10, "description": f"Loading {XSS}"},
                    {"pattern": "ready", "progress": 100, "description": "Ready"},
                ],
            },
            timeout=30,
        )
        assert response.status_code == 202, response.text
        row = card(probe, response.json()["task"])
        row.locator(".line", has_text="onerror").wait_for()
        assert line in (row.locator(".line").text_content() or "")
        assert row.locator(".desc").text_content() == f"Loading {XSS}"
        assert page.locator("#tasks img").count() == 0
        page.wait_for_timeout(500)  # time for an injected handler to fire, were there one
        assert probe.dialogs == []
        assert probe.errors == []
        # Cancel from the page: the follow stops, the card says so.
        row.locator(".cancel").click()
        wait_state(probe, response.json()["task"], "cancelled", 15)
    finally:
        container.remove(force=True)


def test_the_page_reconnects_after_a_server_restart(probe: PageProbe) -> None:
    port = free_port()
    first = download_events("pull:before-restart", 3_100_000_000, 8)
    second = count_events("exec:after-restart", 10, description="epoch 2")
    server = ServerThread(EventHub(heartbeat=1.0), port=port).start()
    try:
        for event in first[:5]:
            server.hub.publish(event)
        page = probe.page
        page.goto(server.url + "/")
        row = card(probe, "pull:before-restart")
        row.wait_for()
        assert row.locator(".amount").text_content() == (f"{_size(first[4].current)} / 3.1 GB")
    finally:
        server.stop()
    page.locator('#status[data-state="reconnecting"]').wait_for(timeout=10_000)

    # The same port again, a new process state: the tasks are published anew.
    server = ServerThread(EventHub(heartbeat=1.0), port=port).start()
    try:
        for event in first:
            server.hub.publish(event)
        for event in second[:4]:
            server.hub.publish(event)
        page.locator('#status[data-state="live"]').wait_for(timeout=20_000)
        wait_state(probe, "pull:before-restart", "done", 10)
        assert row.locator(".amount").text_content() == "3.1 GB / 3.1 GB"
        count_row = card(probe, "exec:after-restart")
        count_row.wait_for()
        assert count_row.locator(".amount").text_content() == "4 / 10"
        assert count_row.locator(".desc").text_content() == "epoch 2"
        assert probe.errors == []
    finally:
        server.stop()


def test_tasks_are_ordered_by_priority_then_start_and_finished_ones_fade(
    probe: PageProbe, server: ServerThread
) -> None:
    late_urgent = download_events("pull:urgent", 10**8, 2, priority=-1)
    early = count_events("exec:early", 3)
    later = count_events("exec:later", 3)
    server.hub.publish(early[0])
    server.hub.publish(later[0])
    server.hub.publish(late_urgent[0])
    page = probe.page
    page.goto(server.url + "/?fade=1")
    page.locator("li.task").nth(2).wait_for()
    order = page.locator("li.task").evaluate_all("els => els.map(e => e.dataset.task)")
    assert order == ["pull:urgent", "exec:early", "exec:later"]
    for event in early[1:]:
        server.hub.publish(event)
    wait_state(probe, "exec:early", "done", 10)
    page.locator('li.task.faded[data-task="exec:early"]').wait_for(timeout=5_000)
    assert card(probe, "exec:later").get_attribute("class") == "task"


def _size(value: float) -> str:
    from dockprogress.humanize import size

    return size(value)


TQDM_LOOP = (
    "import time\nfrom tqdm import tqdm\n"
    "for _ in tqdm(range(600), desc='epoch'):\n    time.sleep(0.3)\n"
)


@pytest.mark.engine
def test_cancel_from_the_page_stops_an_exec(
    probe: PageProbe, server: ServerThread, testbed: Any, docker_client: Any
) -> None:
    container = docker_client.containers.run(testbed.python, ["sleep", "600"], detach=True)
    try:
        page = probe.page
        page.goto(server.url + "/")
        page.locator('#status[data-state="live"]').wait_for()
        response = httpx.post(
            server.url + "/api/exec",
            json={"container": container.id, "cmd": ["python3", "-c", TQDM_LOOP]},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        task = response.json()["task"]
        row = card(probe, task)
        row.locator(".amount", has_text="/ 600").wait_for()  # the tqdm bar is being read
        assert "python3" in _processes(container)
        row.locator(".cancel").click()
        wait_state(probe, task, "cancelled", 15)
        assert row.locator(".cancel").is_hidden()
        deadline = time.monotonic() + 15
        while "python3" in _processes(container) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "python3" not in _processes(container), "the exec'd command still runs"
        assert probe.errors == []
    finally:
        container.remove(force=True)


def _processes(container: Any) -> str:
    """The container's command lines, from the engine's ``top`` (no exec of our own)."""
    top = container.top()
    return "\n".join(" ".join(map(str, row)) for row in top["Processes"] or [])


@pytest.mark.engine
def test_cancel_from_the_page_stops_a_build(
    probe: PageProbe, server: ServerThread, testbed: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    import uuid

    from tests.build.test_dashboard_cancel import processes_with

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_HOST", testbed.docker_host)
    marker = f"dp-marker-{uuid.uuid4().hex[:10]}"
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM 127.0.0.1:5000/dp/base:1\n"
        f"RUN i=0; while [ $i -lt 120 ]; do echo tick $i; sleep 1; i=$((i+1)); done; "
        f"echo {marker}\n"
    )
    page = probe.page
    page.goto(server.url + "/")
    page.locator('#status[data-state="live"]').wait_for()
    response = httpx.post(
        server.url + "/api/build",
        json={"path": str(context), "network": "none", "builder": "classic"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    task = response.json()["task"]
    row = card(probe, task)
    row.locator(".desc", has_text="step 2/2").wait_for(timeout=60_000)
    deadline = time.monotonic() + 60
    while not processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker), "the build's long step never ran"
    row.locator(".cancel").click()
    wait_state(probe, task, "cancelled", 15)
    assert row.locator(".cancel").is_hidden()
    deadline = time.monotonic() + 20
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == [], "the build's step still runs on the engine"
    assert probe.errors == []
