"""Two publishing nodes -> the real Redis (restarted mid-run) -> replicas -> WebSocket clients.

The issue's "done when": every task ends ``done`` at 100 % with its node on every replica,
including one started afterwards; stopping one replica leaves the others serving.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contract import assert_event_output
from tests.fleet.conftest import REPO, Replica, cli, testbed_redis, ws_tasks

pytestmark = pytest.mark.slow

# A bar redrawn in place for about four seconds, then a clean exit.
BAR = 'i=0; while [ $i -le 100 ]; do printf "\\r%d%%" $i; i=$((i+5)); sleep 0.2; done; echo'


def _all_done(keys: list[tuple[str, str]]) -> Callable[[dict[tuple[str, str], Any]], bool]:
    def check(tasks: dict[tuple[str, str], Any]) -> bool:
        return all(
            key in tasks
            and tasks[key]["event"]["state"] == "done"
            and tasks[key]["event"]["percent"] == 100
            for key in keys
        )

    return check


def test_two_nodes_through_a_restarted_redis_reach_every_replica(
    bus_url: str, redis_bed: Path, replicas: Callable[..., Replica], tmp_path: Path
) -> None:
    first, second = replicas(), replicas()
    nodes = [
        subprocess.Popen(
            cli(
                "run", "--bus", bus_url, "--node", node, "--progress", "json", "--", "sh", "-c", BAR
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for node in ("node-one", "node-two")
    ]
    time.sleep(1.2)
    testbed_redis.stop_redis(redis_bed)  # SIGTERM: Redis writes its AOF and exits
    time.sleep(1.5)
    testbed_redis.ensure_redis(redis_bed)  # the same folder: the AOF brings the data back
    outputs = [proc.communicate(timeout=60) for proc in nodes]
    for proc, (out, err) in zip(nodes, outputs, strict=True):
        assert proc.returncode == 0, err
        events = assert_event_output(out)
        assert {e["node"] for e in events} <= {"node-one", "node-two"}
        assert "cannot publish to Redis" in err  # it noticed Redis was away ...
        assert "answers again" in err  # ... and resent its queue when it came back
    task = assert_event_output(outputs[0][0])[-1]["task"]
    keys = [("node-one", task), ("node-two", task)]  # the same task id on two nodes: two tasks

    for replica in (first, second):
        ws_tasks(replica.url, _all_done(keys), timeout=30)

    first.stop()
    assert first.proc.returncode is not None
    seen = ws_tasks(second.url, _all_done(keys), timeout=10)  # still serving, same tasks
    assert {k: v["event"]["node"] for k, v in seen.items() if k in keys} == {k: k[0] for k in keys}

    late = replicas()  # a replica started after everything ended: the snapshot has it all
    entries = {(e["event"]["node"], e["event"]["task"]): e for e in late.entries()}
    assert all(entries[k]["event"]["state"] == "done" for k in keys)
    ws_tasks(late.url, _all_done(keys), timeout=10)
