"""Engine and registry faults during a pull, on a registry and front of our own.

The image is built here from random layers and pushed to our own registry, so its layers are
in no other cache; the pull goes through our own bandwidth-limited nginx, which is the
"registry" the engine sees and the one these cases stop and start (by pid).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import docker
import pytest

from dockprogress.docker.pull import iter_pull
from dockprogress.errors import DockProgressError, PullError
from dockprogress.events import State, TaskEvent
from tests.contract import assert_event_lines
from tests.faults.harness import (
    OwnFront,
    OwnRegistry,
    build_unique_image,
    observe,
    push,
    remove_everywhere,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(240)]

LAYERS_MB = (12, 12)


@pytest.fixture(scope="module")
def registry(docker_client: docker.DockerClient) -> Iterator[tuple[OwnRegistry, str]]:
    """Our registry, holding one image of random layers; yields (registry, repository:tag)."""
    own = OwnRegistry()
    own.start()
    ref = build_unique_image(docker_client, f"{own.address}/dpfaults/pull", LAYERS_MB)
    try:
        push(docker_client, ref)
        remove_everywhere(docker_client, ref)
        yield own, ref.removeprefix(own.address + "/")
    finally:
        remove_everywhere(docker_client, ref)
        own.close()


@pytest.fixture
def front(registry: tuple[OwnRegistry, str]) -> Iterator[OwnFront]:
    own = OwnFront(registry[0].address, rate="3m")
    own.start()
    yield own
    own.close()


def _pull_cutting(
    client: docker.DockerClient, ref: str, cut: threading.Thread | None, at: float
) -> tuple[list[TaskEvent], BaseException | None]:
    """Pull ``ref``; start ``cut`` once ``at`` of the total is downloaded."""
    events: list[TaskEvent] = []
    failure: BaseException | None = None
    try:
        for event in iter_pull(ref, client=client):
            events.append(event)
            total = event.total or 0
            if cut is not None and not cut.is_alive() and total and event.current >= at * total:
                cut.start()
                cut = None
    except DockProgressError as exc:
        failure = exc
    return events, failure


def test_registry_stopped_mid_pull_and_back_within_the_retry_window(
    docker_client: docker.DockerClient, registry: tuple[OwnRegistry, str], front: OwnFront
) -> None:
    ref = f"{front.address}/{registry[1]}"

    def outage() -> None:
        front.stop()
        time.sleep(1.5)  # the engine's first retry comes after 5 s
        front.start()

    cut = threading.Thread(target=outage, daemon=True)
    started = time.monotonic()
    try:
        events, failure = _pull_cutting(docker_client, ref, cut, 0.25)
    finally:
        remove_everywhere(docker_client, ref)
    cut.join(20)
    assert failure is None, failure
    assert_event_lines([e.to_json() for e in events])  # percent never regressed, one end
    first, last = events[0], events[-1]
    assert last.state is State.DONE
    assert first.total == last.total  # the manifest's total, from the first event on
    assert last.total is not None
    # Bytes not counted twice: the total is the layers' compressed size, reached exactly.
    assert last.current == last.total
    assert last.total >= sum(LAYERS_MB) << 20
    assert last.detail["retries"] >= 1, "the outage did not hit a download"
    elapsed = time.monotonic() - started
    assert elapsed < 120
    observe(
        "registry back within retry window",
        seconds=round(elapsed, 1),
        retries=last.detail["retries"],
        total=last.total,
        current=last.current,
        events=len(events),
    )


@pytest.mark.usefixtures("on_engine")
def test_registry_gone_for_good_mid_pull_is_a_clear_error_in_bounded_time(
    engine_client: docker.DockerClient, registry: tuple[OwnRegistry, str], front: OwnFront
) -> None:
    # Both engines: 20.10 retries 5 times, 26.1 (containerd) gives up at once.
    ref = f"{front.address}/{registry[1]}"
    cut = threading.Thread(target=front.stop, daemon=True)
    started = time.monotonic()
    try:
        events, failure = _pull_cutting(engine_client, ref, cut, 0.25)
    finally:
        remove_everywhere(engine_client, ref)
    elapsed = time.monotonic() - started
    assert isinstance(failure, PullError)
    assert_event_lines([e.to_json() for e in events])
    last = events[-1]
    assert last.state is State.ERROR
    assert last.error
    words = (front.address, "connection refused", "unexpected EOF")
    assert any(w in last.error for w in words), last.error
    assert elapsed < 180  # the engine's own retries (5, 10, 15, 20 s) bound it
    observe(
        f"registry gone for good ({engine_client.version()['Version']})",
        seconds=round(elapsed, 1),
        error=last.error,
    )


@pytest.mark.usefixtures("on_engine")
def test_registry_not_there_at_all_is_a_clear_error_at_once(
    engine_client: docker.DockerClient,
) -> None:
    from tests.faults.harness import free_port

    ref = f"127.0.0.1:{free_port()}/dpfaults/none:1"
    started = time.monotonic()
    events, failure = _pull_cutting(engine_client, ref, None, 1.0)
    elapsed = time.monotonic() - started
    assert isinstance(failure, PullError)
    assert events[-1].state is State.ERROR
    assert "connection refused" in (events[-1].error or "")
    assert events[-1].detail.get("manifest_error")  # the registry was asked first, and said so
    assert elapsed < 30
    observe(
        f"registry not there ({engine_client.version()['Version']})",
        seconds=round(elapsed, 1),
        error=events[-1].error,
    )
