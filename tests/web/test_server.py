"""The server over real sockets: API, WebSocket stream, and the security rules."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from dockprogress.errors import UsageError
from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.runner import Run, TaskRunner
from dockprogress.sinks.web.server import ServerThread, resolve_token, run_server
from dockprogress.task import Task
from tests.web.conftest import count_events, download_events, free_port

TOKEN = "s3cret-token-for-tests"


def _ws_url(server: ServerThread, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/ws" + query


def _publish(server: ServerThread, events: list[TaskEvent], **headers: str) -> httpx.Response:
    body = "\n".join(e.to_json() for e in events)
    return httpx.post(
        server.url + "/api/publish",
        content=body,
        headers={"Content-Type": "application/x-ndjson", **headers},
    )


@pytest.fixture
def token_server() -> Iterator[ServerThread]:
    with ServerThread(EventHub(heartbeat=0.5), port=0, token=TOKEN) as running:
        yield running


# ------------------------------------------------------------------------ API


def test_published_events_are_listed_as_json_lines_or_array(server: ServerThread) -> None:
    pull = download_events("pull:img", 2_000_000, 3)
    exec_ = count_events("exec:c", 3)
    assert _publish(server, pull).json() == {"accepted": len(pull)}
    response = httpx.post(server.url + "/api/publish", json=[e.to_dict() for e in exec_[:2]])
    assert response.json() == {"accepted": 2}
    listed = httpx.get(server.url + "/api/tasks").json()
    assert [e["event"] for e in listed] == [pull[-1].to_dict(), exec_[1].to_dict()]
    assert all(e["cancellable"] is False for e in listed)


def test_invalid_events_are_refused_whole(server: ServerThread) -> None:
    good = count_events("exec:good", 2)[0].to_dict()
    bad = {**good, "state": "exploded"}
    response = httpx.post(server.url + "/api/publish", json=[good, bad])
    assert response.status_code == 400
    assert "event 1" in response.text
    assert httpx.get(server.url + "/api/tasks").json() == []
    response = httpx.post(
        server.url + "/api/publish",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_bodies_are_capped_and_must_be_json(server: ServerThread) -> None:
    event = count_events("exec:big", 2)[0].to_dict()
    huge = [{**event, "description": "x" * 1000} for _ in range(1200)]  # about 1.5 MB
    assert httpx.post(server.url + "/api/publish", json=huge).status_code == 413
    form = httpx.post(
        server.url + "/api/publish",
        content=json.dumps([event]),
        headers={"Content-Type": "text/plain"},
    )
    assert form.status_code == 415  # what a cross-site form could send


def test_start_endpoints_validate_their_bodies(server: ServerThread) -> None:
    assert httpx.post(server.url + "/api/pull", json={}).status_code == 400
    assert (
        httpx.post(server.url + "/api/exec", json={"container": "c", "cmd": []}).status_code == 400
    )
    response = httpx.post(server.url + "/api/logs", json={"container": "c"})
    assert response.status_code == 400
    assert "milestones" in response.text
    unknown = httpx.post(server.url + "/api/tasks/exec:nobody/cancel", json={})
    assert unknown.status_code == 404


def test_build_and_push_endpoints_refuse_what_cannot_start(
    server: ServerThread, tmp_path: Path
) -> None:
    def post(path: str, body: object) -> httpx.Response:
        return httpx.post(server.url + path, json=body, timeout=30)

    assert post("/api/build", {}).status_code == 400
    missing = post("/api/build", {"path": str(tmp_path / "nowhere")})
    assert missing.status_code == 400
    assert "not a directory" in missing.text
    (tmp_path / "Dockerfile").write_text("FROM 127.0.0.1:5000/dp/base:1\nRUN true\n")
    target = post("/api/build", {"path": str(tmp_path), "target": "nosuchstage"})
    assert target.status_code == 400
    assert "nosuchstage" in target.text
    assert post("/api/build", {"path": str(tmp_path), "tags": "one"}).status_code == 400
    assert post("/api/build", {"path": str(tmp_path), "no_cache": "yes"}).status_code == 400
    assert post("/api/build", {"path": str(tmp_path), "build_args": {"A": 1}}).status_code == 400
    builder = post("/api/build", {"path": str(tmp_path), "builder": "kaniko"})
    assert builder.status_code == 400
    assert "unknown builder" in builder.text
    assert post("/api/push", {}).status_code == 400
    assert post("/api/push", {"image": "a", "images": ["b"]}).status_code == 400
    assert post("/api/push", {"images": []}).status_code == 400
    bad = post("/api/push", {"image": "Not An Image"})
    assert bad.status_code == 400
    assert "not an image reference" in bad.text
    assert server.hub.entries_json() == "[]"  # nothing was started


def test_websocket_sends_snapshot_updates_and_heartbeats(server: ServerThread) -> None:
    events = download_events("pull:ws", 5_000_000, 4)
    server.hub.publish(events[0])

    async def scenario() -> list[dict[str, object]]:
        received = []
        async with websockets.connect(_ws_url(server)) as ws:
            received.append(json.loads(await ws.recv()))
            for event in events[1:]:
                server.hub.publish(event)
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                received.append(message)
                if message["type"] == "heartbeat":
                    break
        return received

    received = asyncio.run(scenario())
    snapshot = received[0]
    assert snapshot["type"] == "snapshot"
    assert snapshot["heartbeat"] == 0.5
    assert [t["event"] for t in snapshot["tasks"]] == [events[0].to_dict()]  # type: ignore[attr-defined]
    updates = [t["event"] for m in received[1:-1] for t in m["tasks"]]  # type: ignore[attr-defined]
    assert updates[-1] == events[-1].to_dict()
    assert received[-1]["type"] == "heartbeat"
    deadline = time.monotonic() + 5
    while server.hub.subscriber_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.hub.subscriber_count == 0  # the subscription was cleaned up


# ------------------------------------------------------------------- security


def test_cross_origin_websocket_is_refused(server: ServerThread) -> None:
    async def connect(origin: str) -> str:
        async with websockets.connect(_ws_url(server), origin=origin) as ws:  # type: ignore[arg-type]
            return json.loads(await ws.recv())["type"]  # type: ignore[no-any-return]

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(connect("http://evil.example"))
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        asyncio.run(connect(f"http://localhost:{server.port + 1}"))  # same host, other port
    assert asyncio.run(connect(server.url)) == "snapshot"


def test_cross_origin_post_and_foreign_host_are_refused(server: ServerThread) -> None:
    event = count_events("exec:x", 2)[0].to_dict()
    response = httpx.post(
        server.url + "/api/publish", json=[event], headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: refused by the Host check.
    rebound = httpx.get(server.url + "/api/tasks", headers={"Host": f"evil.example:{server.port}"})
    assert rebound.status_code == 400
    assert httpx.get(server.url + "/api/tasks").status_code == 200


def test_token_is_required_for_publish_api_and_websocket(token_server: ServerThread) -> None:
    server = token_server
    events = count_events("exec:t", 2)
    assert _publish(server, events).status_code == 401
    assert _publish(server, events, Authorization="Bearer wrong").status_code == 401
    assert httpx.get(server.url + "/api/tasks").status_code == 401
    assert httpx.post(server.url + "/api/tasks/exec:t/cancel", json={}).status_code == 401
    assert server.hub.tasks() == []
    assert _publish(server, events, Authorization=f"Bearer {TOKEN}").status_code == 200
    assert _publish(server, events, **{"X-DockProgress-Token": TOKEN}).status_code == 200
    # The page itself is public: it holds no data.
    assert httpx.get(server.url + "/").status_code == 200

    async def connect(query: str) -> str:
        async with websockets.connect(_ws_url(server, query)) as ws:
            return json.loads(await ws.recv())["type"]  # type: ignore[no-any-return]

    with pytest.raises(InvalidStatus):
        asyncio.run(connect(""))
    with pytest.raises(InvalidStatus):
        asyncio.run(connect("?token=wrong"))
    assert asyncio.run(connect(f"?token={TOKEN}")) == "snapshot"


def test_page_is_served_with_a_strict_content_security_policy(server: ServerThread) -> None:
    page = httpx.get(server.url + "/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/app.js"' in page.text
    assert httpx.get(server.url + "/static/app.js").status_code == 200


def test_non_loopback_bind_needs_a_token() -> None:
    assert resolve_token("127.0.0.1", None) == (None, False)
    assert resolve_token("::1", None) == (None, False)
    assert resolve_token("0.0.0.0", "given") == ("given", False)
    token, generated = resolve_token("0.0.0.0", None)
    assert generated
    assert token is not None
    assert len(token) >= 24
    with pytest.raises(UsageError):
        run_server("0.0.0.0", free_port(), None)


def test_serve_command_generates_and_enforces_a_token_on_a_wide_bind() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DOCKPROGRESS_TOKEN"}
    process = subprocess.Popen(
        [sys.executable, "-m", "dockprogress", "serve", "--host", "0.0.0.0", "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(2)]
        assert lines[0].startswith("dockprogress: generated token: ")
        token = lines[0].split(": ")[-1].strip()
        assert f"#token={token}" in lines[1]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(url + "/api/tasks")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert response.status_code == 401
        authorised = httpx.get(url + "/api/tasks", headers={"Authorization": f"Bearer {token}"})
        assert authorised.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == 0


# ---------------------------------------------------------------------- runner


def _waiting_operation(task_id: str, stop: threading.Event) -> Iterator[TaskEvent]:
    """A blocking operation the way adapters are: events until told to stop."""
    task = Task(task_id, Operation.RUN, Kind.COUNT, total=100)
    step = 0
    while not stop.wait(0.05):
        step = min(step + 1, 99)
        event = task.update(current=step, description="working")
        assert event is not None
        yield event


def test_cancel_through_the_api_ends_a_server_task(server: ServerThread) -> None:
    run = server.runner.start("wait", lambda run: _waiting_operation("run:wait", run.stop))
    assert run.first.wait(5)
    listed = httpx.get(server.url + "/api/tasks").json()
    assert listed[0]["cancellable"] is True
    response = httpx.post(server.url + "/api/tasks/run:wait/cancel", json={})
    assert response.status_code == 202
    final = server.hub.get("run:wait")
    assert final is not None
    assert final.state.value == "cancelled"
    assert run.finished.wait(5)
    assert server.hub.get("run:wait") == final  # nothing after the terminal event
    again = httpx.post(server.url + "/api/tasks/run:wait/cancel", json={})
    assert again.status_code == 409


def test_an_operation_that_fails_ends_its_task_in_error() -> None:
    hub = EventHub()
    runner = TaskRunner(hub)

    def failing(run: Run) -> Iterator[TaskEvent]:
        task = Task("run:fails", Operation.RUN, Kind.COUNT, total=10)
        event = task.update(current=3)
        assert event is not None
        yield event
        raise OSError("the engine went away")

    run = runner.start("fails", failing)
    assert run.finished.wait(5)
    final = hub.get("run:fails")
    assert final is not None
    assert final.state.value == "error"
    assert final.error == "the engine went away"
