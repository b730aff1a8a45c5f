"""Extraction on the containerd image store, on the bed's real Docker 26.1.

dp/many:2 is one layer of 40,000 small files (scripts/fixtures/images.json): it downloads in
half a second from the fast registry and then unpacks, silently, for several seconds. The bar
must keep moving through that silence with an ETA, never backwards, never 100 before done; a
second pull of the same image, with the rate learned by the first, predicts the silence.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import docker
import docker.errors
import pytest

from dockprogress.docker.pull import image_store, iter_pull
from dockprogress.events import State, TaskEvent
from dockprogress.profiles import load_unpack_rate
from tests.conftest import Testbed as Bed
from tests.conftest import drop_leftover_pull_leases
from tests.contract import assert_event_lines

pytestmark = [pytest.mark.engine, pytest.mark.slow]


@pytest.fixture
def modern(testbed: Bed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> docker.DockerClient:
    engine = testbed.engines.get("modern")
    if engine is None:
        pytest.fail("the bed has no modern engine (TESTBED_MODERN=0?)")
    monkeypatch.setenv("DOCKER_HOST", engine.docker_host)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no rate learned yet
    client = docker.DockerClient(base_url=engine.docker_host, timeout=120)
    yield client
    client.close()


def _forget(client: docker.DockerClient, ref: str, testbed: Bed) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(ref, force=True)
    drop_leftover_pull_leases(client, testbed)  # a cancel test's lease would pin the layer
    time.sleep(0.3)  # containerd collects the layer's content right after (deletion_threshold 1)


def _pull(client: docker.DockerClient, ref: str, testbed: Bed) -> list[TaskEvent]:
    _forget(client, ref, testbed)
    events = list(iter_pull(ref))
    assert_event_lines([e.to_json() for e in events])
    assert events[-1].state is State.DONE
    return events


def _extracting(events: list[TaskEvent]) -> list[TaskEvent]:
    return [e for e in events if e.state is State.RUNNING and e.phase == "extracting"]


def test_silent_unpacking_moves_with_an_eta_and_is_learned(
    testbed: Bed, modern: docker.DockerClient
) -> None:
    ref = testbed.images["many"]
    containerd, engine_id = image_store(modern)
    assert containerd

    first = _pull(modern, ref, testbed)
    extracting = _extracting(first)
    silence = first[-1].ts - extracting[0].ts
    assert silence > 1.5, "dp/many unpacked too fast to tell anything"
    assert len(extracting) >= 4 * silence * 0.6  # ticked about 4 times a second
    percents = [e.percent or 0.0 for e in extracting]
    assert percents == sorted(percents)
    assert percents[-1] - percents[0] > 5
    assert max(e.percent or 0 for e in first[:-1]) < 100
    assert extracting[0].eta is not None
    assert all(e.detail.get("extraction", {}).get("estimated") for e in extracting)
    rate = load_unpack_rate(engine_id, ref.rsplit(":", 1)[0])
    assert rate is not None

    second = _pull(modern, ref, testbed)
    extracting = _extracting(second)
    predicted = extracting[0].eta
    assert predicted is not None
    # Learned on this very image, the ETA at the start of the silence is what the first
    # pull's silence took (how long the disk takes this time is another matter: 6 s on an
    # idle machine, 45 s on a loaded one).
    assert abs(predicted - silence) < 0.25 * silence + 0.5, (predicted, silence)
    percents = [e.percent or 0.0 for e in extracting]
    assert percents == sorted(percents)
    assert max(percents) < 100
