"""``-H`` and ``--context`` end to end: the real CLI, ``--progress json``, the real engines.

The environment given to each command has no DOCKER_HOST/DOCKER_CONTEXT: the flag alone
selects the engine. Contexts are the ones ``docker context create`` made (conftest).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.conftest import Testbed as Bed
from tests.conftest import _remove_image
from tests.contract import assert_event_output
from tests.remote.conftest import ENV_NAMES

pytestmark = pytest.mark.engine


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return {**base, **extra}


def _cli(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockprogress", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def classic(testbed: Bed) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=testbed.docker_host, timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="module")
def box(classic: docker.DockerClient, testbed: Bed) -> Iterator[Any]:
    name = f"dp-remote-cli-{uuid.uuid4().hex[:8]}"
    made = classic.containers.run(testbed.python, ["sleep", "300"], detach=True, name=name)
    try:
        yield made
    finally:
        made.remove(force=True)


def test_pull_with_dash_h_tcp(remote: Any, testbed: Bed, classic: docker.DockerClient) -> None:
    _remove_image(classic, testbed.shared_b, (testbed.registry, testbed.slow_registry))
    run = _cli("pull", "-H", remote.tcp_host, testbed.shared_b, "--progress", "json", env=_env())
    assert run.returncode == 0, run.stderr
    events = assert_event_output(run.stdout)
    assert events[-1]["state"] == "done"
    assert events[-1]["current"] == events[-1]["total"]
    classic.images.get(testbed.shared_b)


def test_exec_with_context_over_ssh(remote: Any, docker_config: Path, box: Any) -> None:
    env = _env(DOCKER_CONFIG=str(docker_config), HOME=str(remote.client_home))
    run = _cli(
        "exec", box.name, "--context", "dp-ssh", "--progress", "json", "--",
        "sh", "-c", "echo 50%; sleep 0.2; echo 100%",
        env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    events = assert_event_output(run.stdout)
    assert events[-1]["state"] == "done"
    assert events[-1]["task"] == f"exec:{box.name}:sh"


def test_logs_with_dash_h_ssh_after_the_container_name(
    remote: Any, testbed: Bed, classic: docker.DockerClient, tmp_path: Path
) -> None:
    name = f"dp-remote-cli-logs-{uuid.uuid4().hex[:8]}"
    classic.containers.run(
        testbed.base, ["sh", "-c", "echo half; sleep 0.3; echo finished; sleep 30"],
        detach=True, name=name,
    )  # fmt: skip
    milestones = tmp_path / "m.toml"
    milestones.write_text(
        "[[milestone]]\npattern = '^half$'\nprogress = 50\n"
        "[[milestone]]\npattern = '^finished$'\nprogress = 100\n"
    )
    try:
        run = _cli(
            "logs", name, "--milestones", str(milestones), "--no-calibration",
            "-H", remote.ssh_host, "--progress", "json",
            env=_env(HOME=str(remote.client_home)),
        )  # fmt: skip
    finally:
        classic.api.remove_container(name, force=True)
    assert run.returncode == 0, run.stderr
    assert assert_event_output(run.stdout)[-1]["state"] == "done"


def test_exec_with_a_tls_context(docker_config: Path, testbed: Bed) -> None:
    modern = testbed.engines.get("modern")
    if modern is None or not modern.cert_path or not (Path(modern.cert_path) / "ca.pem").exists():
        pytest.skip("no modern engine TLS endpoint in this bed ($TESTBED_DIR/tls/ca.pem)")
    client = docker.DockerClient(base_url=modern.docker_host, timeout=120)
    name = f"dp-remote-cli-tls-{uuid.uuid4().hex[:8]}"
    box = client.containers.run(testbed.python, ["sleep", "120"], detach=True, name=name)
    try:
        run = _cli(
            "exec", name, "--context", "dp-tls", "--progress", "json", "--", "stty", "size",
            env=_env(DOCKER_CONFIG=str(docker_config)),
        )  # fmt: skip
    finally:
        box.remove(force=True)
        client.close()
    assert run.returncode == 0, run.stderr
    assert assert_event_output(run.stdout)[-1]["state"] == "done"


def test_usage_errors_exit_2_before_anything_runs(docker_config: Path) -> None:
    env = _env(DOCKER_CONFIG=str(docker_config))
    missing = _cli("pull", "--context", "nope", "127.0.0.1:5000/dp/base:1", env=env)
    assert missing.returncode == 2
    assert "context 'nope' (--context) does not exist" in missing.stderr
    assert "docker context ls" in missing.stderr
    assert missing.stdout == ""
    both = _cli(
        "exec", "x", "-H", "tcp://127.0.0.1:1", "--context", "dp-tcp", "--", "true", env=env
    )
    assert both.returncode == 2
    assert "either -H/--host or --context" in both.stderr
    from_env = _cli("exec", "x", "--", "true", env={**env, "DOCKER_CONTEXT": "gone"})
    assert from_env.returncode == 2
    assert "context 'gone' (DOCKER_CONTEXT)" in from_env.stderr


def test_an_unreachable_engine_names_where_its_address_came_from(docker_config: Path) -> None:
    run = _cli(
        "pull", "-H", "tcp://127.0.0.1:9", "127.0.0.1:5000/dp/base:1", "--progress", "json",
        env=_env(),
    )  # fmt: skip
    assert run.returncode == 1
    assert "tcp://127.0.0.1:9 (from -H)" in run.stderr
    assert assert_event_output(run.stdout)[-1]["state"] == "error"
    via_env = _cli("exec", "x", "--", "true", env=_env(DOCKER_HOST="tcp://127.0.0.1:9"))
    assert via_env.returncode == 1
    assert "tcp://127.0.0.1:9 (from DOCKER_HOST)" in via_env.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_runs_the_pages_tasks_on_its_dash_h_engine(remote: Any, box: Any) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dockprogress", "serve", "--port", str(port),
         "-H", remote.ssh_host],
        env=_env(HOME=str(remote.client_home)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    http.get("/api/tasks")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "serve did not answer"
                    time.sleep(0.2)
            started = http.post("/api/exec", json={"container": box.name, "cmd": ["true"]})
            assert started.status_code == 202, started.text
            task = started.json()["task"]
            deadline = time.monotonic() + 30
            state = None
            while state not in ("done", "error", "cancelled") and time.monotonic() < deadline:
                entries = {e["event"]["task"]: e["event"] for e in http.get("/api/tasks").json()}
                state = entries.get(task, {}).get("state")
                time.sleep(0.2)
            assert state == "done", entries.get(task)
    finally:
        server.terminate()
        server.communicate(timeout=10)


def test_serve_with_a_missing_context_is_a_usage_error(docker_config: Path) -> None:
    run = _cli(
        "serve", "--port", "0", "--context", "nope", env=_env(DOCKER_CONFIG=str(docker_config))
    )
    assert run.returncode == 2
    assert "docker context ls" in run.stderr


def test_an_unknown_ssh_host_is_refused_with_what_to_check(remote: Any, tmp_path: Path) -> None:
    # A home without known_hosts: the host key is unknown, and unknown hosts are refused.
    run = _cli(
        "exec", "x", "-H", remote.ssh_host, "--progress", "json", "--", "true",
        env=_env(HOME=str(tmp_path)),
    )  # fmt: skip
    assert run.returncode == 1
    assert f"{remote.ssh_host} (from -H): ssh:" in run.stderr
    assert "known_hosts" in run.stderr
    assert assert_event_output(run.stdout)[-1]["state"] == "error"
