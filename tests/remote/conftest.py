"""Remote ways into the bed's engines: plain tcp, ssh, a docker context, TLS.

``way`` is parametrized over them. Each :class:`Way` gives the adapters' keyword arguments
(``host=``/``context=``), the environment that selects it (set for the test with
``monkeypatch``, and given to CLI subprocesses), and a local client of the engine behind it
(to make containers and check results without going through the way under test).

- ``tcp``: ``-H tcp://127.0.0.1:23750``, the bed's socat in front of the classic engine;
- ``ssh``: ``-H ssh://USER@127.0.0.1:2222``, the bed's private sshd, with ``HOME`` set to
  the bed's client home (its ``.ssh/config`` names the test key, ``known_hosts`` the host);
- ``context``: ``DOCKER_CONTEXT`` naming a context made by the real ``docker context create``
  in a temporary ``DOCKER_CONFIG``, pointing at the ssh endpoint;
- ``tls``: ``DOCKER_HOST=tcp://127.0.0.1:23761`` with ``DOCKER_TLS_VERIFY=1`` and
  ``DOCKER_CERT_PATH`` (the modern engine's ``--tlsverify`` endpoint).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import REPO, STATE_DIR, Testbed, _unavailable

WAYS = ("tcp", "ssh", "context", "tls")
ENV_NAMES = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_TLS",
             "DOCKER_CERT_PATH", "DOCKER_CONFIG")  # fmt: skip


def _load_testbed_remote() -> Any:
    spec = importlib.util.spec_from_file_location(
        "testbed_remote", REPO / "scripts" / "testbed_remote.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


testbed_remote = _load_testbed_remote()


@dataclass(frozen=True)
class Way:
    name: str
    kwargs: dict[str, str]  # host= / context= for the adapters (empty: the environment)
    env: dict[str, str]  # variables that select it (and HOME for ssh)
    engine_host: str  # the engine behind it, on its local unix socket
    docker_config: Path | None = None
    contexts: dict[str, str] = field(default_factory=dict)  # name -> what it points at

    def environ(self) -> dict[str, str]:
        """The whole environment for a CLI subprocess using this way."""
        base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
        return {**base, **self.env}


@pytest.fixture(scope="session")
def remote(testbed: Testbed) -> Any:
    """The bed's tcp and ssh endpoints (scripts/testbed_remote.py), checked to answer."""
    ways = testbed_remote.from_env(STATE_DIR)
    if not (testbed_remote.tcp_answers(ways) and testbed_remote.ssh_answers(ways)):
        _unavailable(
            f"the bed's tcp ({ways.tcp_host}) and ssh ({ways.ssh_host}) endpoints do not answer"
        )
    return ways


@pytest.fixture(scope="session")
def docker_config(tmp_path_factory: pytest.TempPathFactory, remote: Any, testbed: Testbed) -> Path:
    """A DOCKER_CONFIG with contexts made by the real docker CLI: 'dp-ssh', 'dp-tcp', 'dp-tls'."""
    root = tmp_path_factory.mktemp("docker-config")
    env = {**os.environ, "DOCKER_CONFIG": str(root)}
    made = {"dp-ssh": f"host={remote.ssh_host}", "dp-tcp": f"host={remote.tcp_host}"}
    modern = testbed.engines.get("modern")
    if modern is not None and modern.tls_host and modern.cert_path:
        certs = Path(modern.cert_path)
        made["dp-tls"] = (
            f"host={modern.tls_host},ca={certs / 'ca.pem'},"
            f"cert={certs / 'cert.pem'},key={certs / 'key.pem'}"
        )
    for name, docker_endpoint in made.items():
        subprocess.run(
            ["docker", "context", "create", name, "--docker", docker_endpoint],
            env=env,
            check=True,
            capture_output=True,
            timeout=30,
        )
    return root


def _tls_way(testbed: Testbed) -> Way:
    modern = testbed.engines.get("modern")
    if modern is None or not modern.tls_host or not modern.cert_path:
        _unavailable("the modern engine and its TLS endpoint are not in the bed's state.json")
    certs = Path(modern.cert_path)
    if not (certs / "ca.pem").exists():
        pytest.skip(f"no TLS material in {certs} (the bed's modern engine makes it)")
    env = {
        "DOCKER_HOST": modern.tls_host,
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(certs),
    }
    return Way("tls", {}, env, modern.docker_host)


@pytest.fixture(scope="session", params=WAYS)
def way(request: pytest.FixtureRequest, testbed: Testbed, remote: Any, docker_config: Path) -> Way:
    ssh_home = {"HOME": str(remote.client_home)}
    classic = testbed.engines["classic"].docker_host if testbed.engines else testbed.docker_host
    if request.param == "tcp":
        return Way("tcp", {"host": remote.tcp_host}, {}, classic)
    if request.param == "ssh":
        return Way("ssh", {"host": remote.ssh_host}, ssh_home, classic)
    if request.param == "context":
        env = {**ssh_home, "DOCKER_CONFIG": str(docker_config), "DOCKER_CONTEXT": "dp-ssh"}
        return Way("context", {}, env, classic, docker_config)
    return _tls_way(testbed)


@pytest.fixture
def on_way(way: Way, monkeypatch: pytest.MonkeyPatch) -> Way:
    """This test's process environment selects ``way`` (nothing else left over)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in way.env.items():
        monkeypatch.setenv(name, value)
    return way


@pytest.fixture(scope="session")
def way_client(way: Way) -> Iterator[docker.DockerClient]:
    """The engine behind ``way``, through its local unix socket (not the way under test)."""
    client = docker.DockerClient(base_url=way.engine_host, timeout=120)
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        _unavailable(f"the engine at {way.engine_host} does not answer: {exc}")
    yield client
    client.close()
