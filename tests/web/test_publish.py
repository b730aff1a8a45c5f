"""DashboardPublisher: another process's events reach the server; the tracker never waits."""

from __future__ import annotations

import io
import time

from dockprogress.sinks.publish import DashboardPublisher
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import ServerThread
from tests.web.conftest import count_events, download_events, free_port


def _states(server: ServerThread) -> dict[str, dict[str, object]]:
    """The server's latest state of each task, in wire form (timestamps rounded as sent)."""
    return {e.task: e.to_dict() for e in server.hub.tasks()}


def _wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_every_task_reaches_the_server_with_its_final_state(server: ServerThread) -> None:
    streams = [download_events(f"pull:{i}", 10**8, 50) for i in range(3)]
    streams.append(count_events("exec:bar", 40, description="epoch 1"))
    publisher = DashboardPublisher(server.url)
    for step in range(51):
        for stream in streams:
            if step < len(stream):
                publisher.send(stream[step])
    publisher.close()
    assert _states(server) == {s[-1].task: s[-1].to_dict() for s in streams}
    assert publisher.sent + publisher.dropped == sum(len(s) for s in streams)
    assert publisher.failures == 0


def test_an_unreachable_server_never_blocks_nor_raises_and_warns_once() -> None:
    stderr = io.StringIO()
    publisher = DashboardPublisher(
        f"http://127.0.0.1:{free_port()}", max_buffer=50, close_timeout=2, stderr=stderr
    )
    streams = [download_events(f"pull:{i}", 10**9, 1000) for i in range(20)]
    started = time.perf_counter()
    for step in range(1001):
        for stream in streams:
            publisher.send(stream[step])
    per_send = (time.perf_counter() - started) / (1001 * 20)
    assert per_send < 0.001
    assert _wait_for(lambda: publisher.failures >= 1)
    started = time.perf_counter()
    publisher.close()
    assert time.perf_counter() - started < 2.5
    warning = stderr.getvalue()
    assert warning.count("warning") == 1
    assert "cannot publish to the dashboard" in warning
    assert publisher.dropped > 0  # compacted to the latest state of each task


def test_a_late_server_gets_the_latest_state_of_every_task() -> None:
    port = free_port()
    stderr = io.StringIO()
    publisher = DashboardPublisher(
        f"http://127.0.0.1:{port}", max_buffer=30, max_backoff=0.5, stderr=stderr
    )
    streams = [download_events(f"pull:{i}", 10**9, 300) for i in range(10)]
    for step in range(301):
        for stream in streams:
            publisher.send(stream[step])
    assert _wait_for(lambda: publisher.failures >= 1)
    with ServerThread(EventHub(), port=port) as server:
        assert _wait_for(lambda: len(server.hub.tasks()) == 10)
        publisher.close()
        assert _states(server) == {s[-1].task: s[-1].to_dict() for s in streams}
    assert "cannot publish" in stderr.getvalue()


def test_a_refused_token_is_reported_once_and_publishing_stops() -> None:
    stderr = io.StringIO()
    with ServerThread(EventHub(), port=0, token="right") as server:
        publisher = DashboardPublisher(server.url, token="wrong", stderr=stderr)
        for event in count_events("exec:t", 30):
            publisher.send(event)
        assert _wait_for(lambda: "refused the token" in stderr.getvalue())
        publisher.close()
        assert server.hub.tasks() == []
    assert stderr.getvalue().count("warning") == 1
