"""Fixtures of the push tests: a fresh image on each engine, a pacing proxy, an auth registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import docker
import pytest

from dockprogress.docker.build import build
from dockprogress.events import State
from tests.build.recordings import FIXTURES
from tests.conftest import Testbed as Bed


def build_unpushed(testbed: Bed) -> str:
    """Build ``contexts/big`` anew on the engine DOCKER_HOST names: layers no registry has."""
    name = f"{testbed.slow_registry}/dp/push-{uuid.uuid4().hex[:8]}:1"
    final = build(FIXTURES / "contexts" / "big", tags=[name], no_cache=True, builder="classic")
    assert final.state is State.DONE
    return name


@pytest.fixture(scope="module", params=["classic", "modern"])
def fresh_image(request: pytest.FixtureRequest, testbed: Bed) -> Iterator[str]:
    """A fresh image on each engine of the bed (DOCKER_HOST set to it for the module).

    Two layers of random bytes (12 MB and 6 MB, ``contexts/big``) on dp/base, built without
    cache, named ``127.0.0.1:5001/dp/push-<random>:1``: no registry has its layers yet.
    """
    engine = testbed.engines.get(request.param)
    if engine is None:
        pytest.skip(f"the {request.param} engine is not in this test bed")
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKER_HOST", engine.docker_host)
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        mp.delenv(name, raising=False)
    name = build_unpushed(testbed)
    yield name
    client = docker.DockerClient(base_url=engine.docker_host)
    try:
        client.images.remove(name, force=True)
    finally:
        client.close()
        mp.undo()
