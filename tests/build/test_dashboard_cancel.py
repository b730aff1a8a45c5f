"""A build started and cancelled through the dashboard's API stops on the engine.

On both engines of the bed (``on_engine``), with the classic builder and, where the engine
has buildx, BuildKit. The build's long step is a shell loop whose command line carries a
marker unique to the test; the engines run on this machine, so the step's process is seen
in /proc while it runs. Cancelling must end that process within seconds (the loop alone
would run two minutes): for the classic builder the server shuts the ``/build`` connection
down and the engine stops the step's container; for BuildKit buildx gets ``SIGINT`` and
cancels its session's solve.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import httpx
import pytest

from dockprogress.docker.build import find_buildx
from dockprogress.events import State
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import ServerThread
from tests.conftest import Engine
from tests.conftest import Testbed as Bed

pytestmark = pytest.mark.engine

TAG = "127.0.0.1:5000/dp/bpcancel"


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _wait(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_cancel_from_the_dashboard_stops_the_build_on_the_engine(
    on_engine: Engine,
    testbed: Bed,
    builder: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    if builder == "buildkit":
        # The bed's buildx (installed with the modern engine) drives either engine's BuildKit.
        modern = testbed.engines.get("modern")
        buildx = on_engine.buildx or find_buildx() or (modern.buildx if modern else None)
        if buildx is None:
            pytest.skip(f"no docker-buildx for the {on_engine.name} engine")
        monkeypatch.setenv("DOCKPROGRESS_BUILDX", buildx)
    marker = f"dp-marker-{uuid.uuid4().hex[:10]}"
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM 127.0.0.1:5000/dp/base:1\n"
        f"RUN echo {marker} begins\n"
        f"RUN i=0; while [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done; echo {marker} never\n"
        "RUN echo after\n"
    )
    tag = f"{TAG}:{on_engine.name}-{builder}"
    with ServerThread(EventHub(), port=0) as server:
        body = {
            "path": str(context),
            "tags": [tag],
            "network": "none",
            "builder": builder,
        }
        response = httpx.post(server.url + "/api/build", json=body, timeout=60)
        assert response.status_code == 202, response.text
        task = response.json()["task"]
        assert task.startswith("build:")
        assert _wait(lambda: processes_with(marker), 120), "the long step never started"
        running = server.hub.get(task)
        assert running is not None
        assert running.state is State.RUNNING
        cancel = httpx.post(server.url + f"/api/tasks/{task}/cancel", json={}, timeout=10)
        assert cancel.status_code == 202, cancel.text
        final = server.hub.get(task)
        assert final is not None
        assert final.state is State.CANCELLED
        # The engine-side work stops: the step's process is gone within seconds.
        assert _wait(lambda: not processes_with(marker), 20), processes_with(marker)
        label = f"dockprogress-build {tag}"
        assert _wait(lambda: label not in {t.name for t in threading.enumerate()}, 15)
        assert server.hub.get(task) == final
    client = docker.from_env()
    try:
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(tag)  # the build never reached its end
        leftovers = [
            c.id
            for c in client.containers.list(all=True)
            if marker in " ".join(c.attrs.get("Config", {}).get("Cmd") or [])
        ]
        assert leftovers == [], "the classic builder left the step's container behind"
    finally:
        client.close()
