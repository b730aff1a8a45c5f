"""The pull adapter and ``dockprogress pull`` against the real engine and registry.

Pulls go through the test bed's bandwidth-limited front (:5001) or a private nginx of our
own (tests/pull/nginx_proxy.py, started and stopped by pid) when a test must cut the
registry mid-pull. Only dp/layers and dp/shared are removed and pulled again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import docker
import pytest
import requests

from dockprogress.cli.main import main
from dockprogress.core.manifest import ACCEPT, short_id
from dockprogress.docker.pull import AGGREGATE_TASK, PullSession, apull, iter_pull, pull
from dockprogress.errors import PullError
from dockprogress.events import State, TaskEvent
from tests.conftest import Engine
from tests.conftest import Testbed as Bed
from tests.contract import assert_event_lines, assert_event_output
from tests.pull.nginx_proxy import ThrottledProxy

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("on_engine")]


def _layer_sizes(registry: str, ref: str) -> dict[str, int]:
    """The manifest's layers, asked of the registry directly (not through our client)."""
    repo, _, tag = ref.removeprefix(registry + "/").rpartition(":")
    answer = requests.get(
        f"http://{registry}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10
    )
    answer.raise_for_status()
    return {short_id(layer["digest"]): layer["size"] for layer in answer.json()["layers"]}


def _forget(remove_image: Callable[[str], None], testbed: Bed, ref: str) -> None:
    """Remove the image whatever name it was pulled under (:5000, :5001), so it is fresh."""
    remove_image(ref)
    remove_image(testbed.slow(ref))


def _by_task(events: list[TaskEvent]) -> dict[str, list[TaskEvent]]:
    out: dict[str, list[TaskEvent]] = {}
    for event in events:
        out.setdefault(event.task, []).append(event)
    return out


def _run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, list[dict[str, Any]], str]:
    status = main(["pull", *argv, "--progress", "json"])
    captured = capsys.readouterr()
    return status, assert_event_output(captured.out), captured.err


@pytest.mark.slow
def test_fresh_pull_has_the_manifest_total_before_any_byte(
    testbed: Bed, remove_image: Callable[[str], None]
) -> None:
    _forget(remove_image, testbed, testbed.layers)
    sizes = _layer_sizes(testbed.registry, testbed.layers)
    assert len(sizes) >= 5
    events = list(iter_pull(testbed.slow(testbed.layers)))
    assert_event_lines([e.to_json() for e in events])
    first = events[0]
    assert first.state is State.RUNNING
    assert first.current == 0
    assert first.total == sum(sizes.values())
    assert first.detail["exact_total"] is True
    # dp/base:1 stays on the bed, so its layer is reported present before any byte (other
    # sessions sharing the engine may hold more of these layers: the stream says which).
    base = next(iter(sizes))
    first_byte = next(e for e in events if e.current > 0)
    present = {k for k, v in first_byte.detail["layers"].items() if v["state"] == "present"}
    assert base in present
    assert len(present) < len(sizes)
    expected = sum(sizes.values()) - sum(sizes[k] for k in present)
    assert first_byte.total == expected
    assert sum(1 for e in events if e.current > 0 and e.state is State.RUNNING) > 5
    done = events[-1]
    assert done.state is State.DONE
    assert done.current == done.total == expected
    assert done.detail["counts"] == {"present": len(present), "complete": len(sizes) - len(present)}


def test_shared_base_layers_are_excluded_from_the_total(
    testbed: Bed,
    remove_image: Callable[[str], None],
    docker_client: docker.DockerClient,
) -> None:
    _forget(remove_image, testbed, testbed.shared_a)
    _forget(remove_image, testbed, testbed.shared_b)
    docker_client.images.pull(testbed.shared_a)
    sizes_a = _layer_sizes(testbed.registry, testbed.shared_a)
    sizes_b = _layer_sizes(testbed.registry, testbed.shared_b)
    own = {k: v for k, v in sizes_b.items() if k not in sizes_a}
    assert len(own) == 1
    increments: list[tuple[str, int, int | None]] = []

    class Handler:
        def increment_progress(self, *args: Any) -> None:
            raise AssertionError("a pull is download progress")

        def increment_download_progress(
            self, task_id: str, increment: int, total: int | None, *rest: Any
        ) -> None:
            increments.append((task_id, increment, total))

        def remove_progress(self, task_id: str) -> None:
            raise AssertionError(f"{task_id} removed: the pull failed")

        def reset_progress(self, task_id: str) -> None:
            raise AssertionError("downloaded bytes went back")

    seen: list[TaskEvent] = []
    finals = pull(testbed.slow(testbed.shared_b), on_event=seen.append, handler=Handler())
    assert_event_lines([e.to_json() for e in seen])
    first_byte = next(e for e in seen if e.current > 0)
    assert first_byte.total == sum(own.values())
    [done] = finals
    assert done.state is State.DONE
    assert done.current == done.total == sum(own.values())
    assert sum(inc for _, inc, _ in increments) == sum(own.values())
    assert increments[-1][2] == sum(own.values())


def test_missing_tag_is_an_error_with_the_engines_message(
    testbed: Bed, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = testbed.slow_registry + "/dp/layers:no-such-tag"
    status, events, err = _run_cli(capsys, ref)
    assert status == 1
    end = events[-1]
    assert end["state"] == "error"
    # 20.10: "manifest for … not found"; 26.1 (containerd): "failed to resolve reference …"
    assert ("failed to resolve" if engine.containerd_store else "manifest for") in end["error"]
    assert "not found" in end["error"]
    assert end["error"] in err
    assert "manifest_error" in end["detail"]  # the registry said 404 first, too


def test_unreachable_registry_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, events, _ = _run_cli(capsys, "127.0.0.1:5999/dp/layers:1")
    assert status == 1
    assert events[-1]["state"] == "error"
    assert "127.0.0.1:5999" in events[-1]["error"]
    assert "connection refused" in events[-1]["error"]
    with pytest.raises(PullError, match="connection refused") as caught:
        list(iter_pull("127.0.0.1:5999/dp/layers:1"))
    assert caught.value.image == "127.0.0.1:5999/dp/layers:1"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_registry_stopped_mid_pull_for_longer_than_the_retries(
    testbed: Bed,
    engine: Engine,
    remove_image: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _forget(remove_image, testbed, testbed.layers)
    proxy = ThrottledProxy(testbed.registry, rate="2m")
    proxy.start()
    try:
        ref = f"{proxy.address}/dp/layers:1"
        events: list[TaskEvent] = []

        def consume() -> None:
            for event in iter_pull(ref):
                events.append(event)
                if event.current > 3 * 2**20 and proxy.process is not None:
                    proxy.stop()  # by pid; never started again

        with pytest.raises(PullError) as caught:
            consume()
        assert_event_lines([e.to_json() for e in events])
        end = events[-1]
        assert end.state is State.ERROR
        assert end.error == caught.value.message
        if engine.containerd_store:
            # containerd gives up on the broken layer at once, with its own words.
            assert "unexpected EOF" in (end.error or "") or "refused" in (end.error or "")
        else:  # the classic puller retries 5 times first
            assert "connection refused" in (end.error or "")
            assert end.detail["retries"] >= 4
        # The CLI says the same and exits 1.
        status, lines, _ = _run_cli(capsys, ref)
        assert status == 1
        assert lines[-1]["state"] == "error"
        assert "connection refused" in lines[-1]["error"]
    finally:
        proxy.close()
        _forget(remove_image, testbed, testbed.layers)


@pytest.mark.slow
def test_two_images_at_once_each_keep_the_promises(
    testbed: Bed,
    remove_image: Callable[[str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _forget(remove_image, testbed, testbed.layers)
    _forget(remove_image, testbed, testbed.shared_b)
    refs = [testbed.slow(testbed.layers), testbed.slow(testbed.shared_b)]
    status, lines, _ = _run_cli(capsys, *refs)
    assert status == 0
    tasks: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        tasks.setdefault(line["task"], []).append(line)
    assert set(tasks) == {f"pull:{ref}" for ref in refs} | {AGGREGATE_TASK}
    for ref in refs:
        mine = tasks[f"pull:{ref}"]
        assert mine[-1]["state"] == "done"
        assert mine[-1]["current"] == mine[-1]["total"] > 0
        assert sum(1 for e in mine if 0 < e["current"] < e["total"]) > 3  # really concurrent
    total = tasks[AGGREGATE_TASK][-1]
    assert total["state"] == "done"
    assert total["current"] == sum(tasks[f"pull:{r}"][-1]["total"] for r in refs)
    # Both were in flight together: image events interleave.
    order = [line["task"] for line in lines if line["task"] != AGGREGATE_TASK]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches > 4


def test_async_form_and_up_to_date_image(testbed: Bed) -> None:
    async def collect() -> list[TaskEvent]:
        return [event async for event in apull(testbed.base)]

    events = asyncio.run(collect())
    assert_event_lines([e.to_json() for e in events])
    done = events[-1]
    assert done.state is State.DONE
    assert done.current == done.total == 0  # nothing to download: it is all there
    assert done.detail["status"].startswith("Image is up to date")
    assert json.loads(done.to_json())["percent"] == 100


def test_cancel_mid_pull_ends_the_task_cancelled(
    testbed: Bed, remove_image: Callable[[str], None]
) -> None:
    # What `dockprogress pull` does on Ctrl-C: cancel the session, send its events, stop.
    _forget(remove_image, testbed, testbed.shared_b)
    session = PullSession(testbed.slow(testbed.shared_b))
    events: list[TaskEvent] = []
    for event in session:
        events.append(event)
        if event.current > 0:
            events.extend(session.cancel("cancelled by Ctrl-C"))
            break
    assert_event_lines([e.to_json() for e in events])
    end = events[-1]
    assert end.state is State.CANCELLED
    assert 0 < end.current < (end.total or 0)
    assert session.cancel() == []  # one terminal event per task, never two


def test_cancel_from_another_thread_ends_the_iteration(
    testbed: Bed, remove_image: Callable[[str], None]
) -> None:
    # What the dashboard's cancel button does: cancel() from a thread that does not iterate.
    _forget(remove_image, testbed, testbed.shared_b)
    session = PullSession(testbed.slow(testbed.shared_b))
    events: list[TaskEvent] = []
    cancelled: list[TaskEvent] = []
    finished = threading.Event()

    def iterate() -> None:
        for event in session:
            events.append(event)
            if event.current > 0 and not cancelled:
                canceller = threading.Thread(target=lambda: cancelled.extend(session.cancel()))
                canceller.start()
                canceller.join()
        finished.set()

    worker = threading.Thread(target=iterate, daemon=True)
    worker.start()
    assert finished.wait(60), "the iteration never ended after cancel() from another thread"
    assert [e.state for e in cancelled] == [State.CANCELLED]
    assert all(not e.terminal for e in events)  # the cancelled event came from cancel() only
    assert_event_lines([e.to_json() for e in [*events, *cancelled]])
