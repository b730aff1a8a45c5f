"""This suite's engine tests run on both engines of the bed (classic 20.10, modern 26.1).

``docker_client`` here is the parametrized engine's client (so ``remove_image`` and every
fixture built on it follow the engine), and each ``engine``-marked test gets ``on_engine``,
which points ``DOCKER_HOST`` at that engine (the engine test modules say
``pytest.mark.usefixtures("on_engine")``). See tests/conftest.py.
"""

from __future__ import annotations

import docker
import pytest


@pytest.fixture(scope="session")
def docker_client(engine_client: docker.DockerClient) -> docker.DockerClient:
    return engine_client
