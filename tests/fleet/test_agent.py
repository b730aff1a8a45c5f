"""`dockprogress agent` on the real engine: labelled containers, start to exit, never twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import Testbed
from tests.fleet.conftest import REPO, Replica, cli, ws_tasks

pytestmark = [pytest.mark.engine, pytest.mark.slow]

MILESTONES = """
name = "fleet-steps"

[[milestone]]
pattern = 'step one'
progress = 10
description = "first step"

[[milestone]]
pattern = 'step two'
progress = 50
description = "second step"

[[milestone]]
pattern = 'all steps done'
progress = 100
description = "finished"
"""
SCRIPT = "sleep 1; echo step one; sleep 1; echo step two; sleep 1; echo all steps done"


@pytest.fixture
def names(docker_client: Any) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def _docker_run(testbed: Testbed, name: str, *, detach: bool) -> None:
    subprocess.run(
        ["docker", "run", *(["-d"] if detach else []), "--name", name,
         "-l", "dockprogress.milestones=fleet-steps", testbed.base, "sh", "-c", SCRIPT],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip


def test_the_agent_follows_labelled_containers_start_to_exit_and_never_twice(
    *,
    testbed: Testbed,
    bus_url: str,
    sync_redis: Any,
    replicas: Callable[..., Replica],
    names: list[str],
    tmp_path: Path,
) -> None:
    (tmp_path / "fleet-steps.toml").write_text(MILESTONES)
    replica = replicas()
    tag = uuid.uuid4().hex[:8]
    before, after = f"dp-agent-before-{tag}", f"dp-agent-after-{tag}"
    names += [before, after]
    # Running before the agent starts: both the agent's listing and its replayed start event
    # see it; it must be followed once.
    _docker_run(testbed, before, detach=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    agent = subprocess.Popen(
        cli("agent", "--bus", bus_url, "--node", "agent-node", "--milestones-dir", str(tmp_path)),
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        time.sleep(1.0)
        _docker_run(testbed, after, detach=False)  # plain `docker run`, no wrapper
        keys = [("agent-node", f"logs:{before}"), ("agent-node", f"logs:{after}")]
        seen = ws_tasks(
            replica.url,
            lambda t: all(t.get(k, {}).get("event", {}).get("state") == "done" for k in keys),
            timeout=60,
        )
        for key in keys:
            event = seen[key]["event"]
            assert event["percent"] == 100
            assert event["detail"]["profile"] == "fleet-steps"  # calibrated like `logs`
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    assert err.count(f"following {before} ") == 1, err
    assert err.count(f"following {after} ") == 1, err
    for name in (before, after):
        finals = [
            json.loads(fields[b"e"])
            for _, fields in sync_redis.xrange("dockprogress:events")
            if b"e" in fields and json.loads(fields[b"e"])["task"] == f"logs:{name}"
        ]
        assert [e["state"] for e in finals].count("done") == 1
        assert finals[-1]["state"] == "done"
    # The profile learned from these runs is where `logs` keeps it.
    assert (tmp_path / "cache" / "dockprogress" / "profiles" / "fleet-steps.json").is_file()


def test_the_agent_survives_the_engine_going_away(
    *,
    testbed: Testbed,
    bus_url: str,
    replicas: Callable[..., Replica],
    names: list[str],
    tmp_path: Path,
) -> None:
    # The shared engine is never restarted here: the agent talks to it through a socket
    # proxy that drops every connection and refuses new ones for a while, which is what a
    # client sees while dockerd restarts. A container started meanwhile must still be found.
    from tests.logs.socket_proxy import SocketProxy

    (tmp_path / "fleet-steps.toml").write_text(MILESTONES)
    replica = replicas()
    proxy = SocketProxy(tmp_path / "engine.sock")
    name = f"dp-agent-outage-{uuid.uuid4().hex[:8]}"
    names.append(name)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "DOCKER_HOST": proxy.url}
    agent = subprocess.Popen(
        cli("agent", "--bus", bus_url, "--node", "outage", "--milestones-dir", str(tmp_path)),
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    try:
        time.sleep(1.5)
        proxy.pause(3.0)  # the engine "restarts"
        _docker_run(testbed, name, detach=True)  # started while the agent cannot see
        key = ("outage", f"logs:{name}")
        seen = ws_tasks(
            replica.url,
            lambda t: t.get(key, {}).get("event", {}).get("state") == "done",
            timeout=60,
        )
        assert seen[key]["event"]["percent"] == 100
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        proxy.close()
    assert "does not answer" in err, err
    assert "answers again" in err, err
    assert err.count(f"following {name} ") == 1, err
