"""The dashboard under load and attack, over real sockets.

Complements ``tests/web`` (which checks the rules one by one): here every protected endpoint
is tried without and with a wrong token, clients misbehave (oversized, malformed and binary
WebSocket messages; many clients that never read), and the server is restarted under a CLI
process that publishes to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from dockprogress.events import Kind, Operation, State
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import MAX_WS_MESSAGE, ServerThread
from dockprogress.task import Task
from tests.faults.harness import free_port, observe

pytestmark = pytest.mark.timeout(120)

TOKEN = "faults-token"
PROTECTED = [
    ("GET", "/api/tasks", None),
    ("POST", "/api/publish", "[]"),
    ("POST", "/api/pull", '{"image": "127.0.0.1:5000/dp/base:1"}'),
    ("POST", "/api/exec", '{"container": "x", "cmd": ["true"]}'),
    ("POST", "/api/logs", '{"container": "x", "milestones": []}'),
    ("POST", "/api/tasks/pull:x/cancel", "{}"),
]


def _ws(server: ServerThread, query: str = "", **kwargs: object) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + "/ws" + query
    return connect(url, open_timeout=10, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def token_server() -> Iterator[ServerThread]:
    with ServerThread(EventHub(heartbeat=0.5), port=0, token=TOKEN) as running:
        yield running


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(EventHub(heartbeat=0.5), port=0) as running:
        yield running


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED, ids=[p for _, p, _ in PROTECTED])
@pytest.mark.parametrize("given", [None, "wrong", TOKEN[:-1], TOKEN + "x"])
def test_every_protected_endpoint_refuses_a_missing_or_wrong_token(
    token_server: ServerThread, method: str, path: str, body: str | None, given: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if given is not None:
        headers["Authorization"] = f"Bearer {given}"
    response = httpx.request(
        method, token_server.url + path, content=body, headers=headers, timeout=10
    )
    assert response.status_code == 401, (method, path, response.status_code, response.text)
    with pytest.raises(InvalidStatus) as refused:
        _ws(token_server, "" if given is None else f"?token={given}").close()
    assert refused.value.response.status_code in (401, 403)
    assert token_server.hub.tasks() == []  # nothing started, nothing published


def test_the_right_token_passes_and_a_cross_origin_websocket_still_fails(
    token_server: ServerThread,
) -> None:
    response = httpx.get(
        token_server.url + "/api/tasks", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    with _ws(token_server, f"?token={TOKEN}") as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
    with pytest.raises(InvalidStatus) as refused:
        _ws(token_server, f"?token={TOKEN}", origin="http://evil.example").close()
    assert refused.value.response.status_code == 403


def _publish_count(server: ServerThread, task_id: str, steps: int) -> None:
    task = Task(task_id, Operation.EXEC, Kind.COUNT, total=float(steps))
    for _ in range(steps):
        event = task.advance(1)
        if event is not None:
            server.hub.publish(event)
    end = task.finish()
    assert end is not None
    server.hub.publish(end)


def _final_states(ws: ClientConnection, want: set[str], timeout: float) -> dict[str, str]:
    states: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(states.get(t) == "done" for t in want):
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        for entry in message.get("tasks", []):
            states[entry["event"]["task"]] = entry["event"]["state"]
    return states


def test_oversized_malformed_and_binary_messages_close_only_their_own_client(
    server: ServerThread,
) -> None:
    with _ws(server) as good:
        assert json.loads(good.recv(timeout=10))["type"] == "snapshot"
        bad_outcomes = []
        for payload in [
            "x" * (MAX_WS_MESSAGE * 4),  # oversized
            "{not json",
            b"\x00\xff" * 100,  # binary junk
            json.dumps({"type": "publish", "event": {"task": "<script>"}}),  # unexpected verb
        ]:
            with _ws(server) as bad:
                bad.recv(timeout=10)
                bad.send(payload)
                try:
                    bad.recv(timeout=1.5)  # a heartbeat, if the server kept it open
                    bad_outcomes.append("kept")
                except ConnectionClosed as exc:
                    bad_outcomes.append(f"closed {exc.rcvd.code if exc.rcvd else None}")
        _publish_count(server, "exec:after-attack", 5)
        states = _final_states(good, {"exec:after-attack"}, 10)
    assert states == {"exec:after-attack": "done"}
    assert bad_outcomes[0] == "closed 1009"  # message too big
    assert [e.task for e in server.hub.tasks()] == ["exec:after-attack"]  # nothing injected
    observe("dashboard malformed ws", outcomes=bad_outcomes)


def test_a_reader_stays_on_time_among_many_stalled_clients(server: ServerThread) -> None:
    with contextlib.ExitStack() as stack:
        for _ in range(20):  # connected, never read
            stack.enter_context(_ws(server))
        with _ws(server) as reader:
            reader.recv(timeout=10)
            tasks = {f"exec:load-{i}" for i in range(50)}
            started = time.monotonic()
            publishers = [
                threading.Thread(target=_publish_count, args=(server, task, 200))
                for task in sorted(tasks)
            ]
            for thread in publishers:
                thread.start()
            for thread in publishers:
                thread.join(30)
            states = _final_states(reader, tasks, 20)
            elapsed = time.monotonic() - started
    assert states == dict.fromkeys(tasks, "done")
    assert elapsed < 20
    observe("dashboard stalled clients", stalled=20, tasks=50, events=50 * 201, seconds=elapsed)


CLI = [sys.executable, "-m", "dockprogress"]
BAR_SCRIPT = (
    "i=0; while [ $i -lt 80 ]; do i=$((i+1)); printf 'work %3d%%\\r' $((i*100/80)); "
    "sleep 0.1; done; printf '\\n'"
)


def test_server_restart_while_a_cli_process_publishes_the_task_reappears() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = ServerThread(EventHub(heartbeat=0.5), port=port).start()
    cli = subprocess.Popen(
        [*CLI, "run", "--progress", "plain", "--dashboard", url, "--", "sh", "-c", BAR_SCRIPT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    second: ServerThread | None = None
    try:
        deadline = time.monotonic() + 20
        while not first.hub.tasks():
            assert time.monotonic() < deadline, "the CLI's task never reached the first server"
            time.sleep(0.05)
        task_id = first.hub.tasks()[0].task
        first.stop()
        time.sleep(1.0)  # down while the command keeps publishing
        second = ServerThread(EventHub(heartbeat=0.5), port=port).start()
        seen_again = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            entries = {e.task: e for e in second.hub.tasks()}
            if task_id in entries:
                seen_again = seen_again or time.monotonic()
                if entries[task_id].state is State.DONE:
                    break
            time.sleep(0.05)
        _, stderr = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate(timeout=10)
        first.stop()  # a second stop is harmless
        if second is not None:
            second.stop()
    assert cli.returncode == 0, stderr
    assert seen_again is not None, "the task did not reappear on the restarted server"
    assert entries[task_id].state is State.DONE
    assert entries[task_id].percent == 100
    observe("dashboard restart", stderr=stderr.decode(errors="replace").strip()[-300:])
