"""Fallback for `make demo` until `dockprogress demo` exists: a real pull, shown raw.

Removes the multi-layer fixture image locally (every tag), pulls it again through the test
bed's bandwidth-limited front with docker-py, and draws one rich bar per layer straight from
the engine's ``Downloading``/``Extracting`` messages. It is deliberately naive (no grand
total, no ETA): the point of dockprogress is to do better.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path

import docker
import docker.errors
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn

STATE = Path(__file__).resolve().parent.parent / ".testbed" / "state.json"


def main() -> int:
    state = json.loads(STATE.read_text())
    fast_ref = state["images"]["layers"]
    slow_ref = state["slow_registry"] + fast_ref.removeprefix(state["registry"])
    client = docker.from_env()
    for ref in (fast_ref, slow_ref):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(client.images.get(ref).id, force=True)
    repository, _, tag = slow_ref.rpartition(":")
    print(f"pulling {slow_ref} (limit_rate {state['rate']} per layer)")
    bars: dict[str, TaskID] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    with Progress(*columns) as progress:
        for message in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "errorDetail" in message:
                progress.console.print(f"[red]error: {message['errorDetail'].get('message')}")
                return 1
            layer, status = message.get("id"), message.get("status", "")
            detail = message.get("progressDetail") or {}
            if not re.fullmatch(r"[0-9a-f]{12}", layer or ""):  # not a layer: a whole-pull line
                progress.console.print(status)
                continue
            if layer not in bars:
                bars[layer] = progress.add_task(layer, total=None)
            if detail.get("total"):
                progress.update(
                    bars[layer],
                    description=f"{layer} {status}",
                    completed=detail.get("current", 0),
                    total=detail["total"],
                )
            elif status in ("Already exists", "Pull complete"):
                done = progress.tasks[bars[layer]].total or 1  # the byte total, once seen
                progress.update(
                    bars[layer], description=f"{layer} {status}", total=done, completed=done
                )
            else:
                progress.update(bars[layer], description=f"{layer} {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
