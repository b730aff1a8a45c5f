"""Run the CLI under ``python -X importtime`` and tell which modules it imported.

The lean paths (pull, push, classic build on a local engine) promise that docker-py,
requests and urllib3 are never imported; the tests check it on the real engines with this.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

__all__ = ["cli_imports", "heavy"]


def cli_imports(*args: str, timeout: float = 300) -> tuple[dict[str, Any], set[str]]:
    """``dockprogress ARGS --progress json``, which must exit 0: its last event line and the
    names of every module it imported."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dockprogress", *args, "--progress", "json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    last: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return last, imported


def heavy(imported: set[str]) -> list[str]:
    """docker-py, requests, urllib3 and the real paramiko among ``imported`` (a deferred
    stand-in named ``paramiko`` loads nothing)."""
    return sorted(
        name
        for name in imported
        if name.split(".")[0] in ("docker", "requests", "urllib3") or name.startswith("paramiko.")
    )
