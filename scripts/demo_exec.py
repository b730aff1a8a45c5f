#!/usr/bin/env python3
"""`make demo-exec`: a real tqdm script's nested bars, run with `dockprogress exec`.

Starts a throw-away container of the python fixture image (127.0.0.1:5000/dp/python:1),
runs src/dockprogress/examples/tqdm_demo.py in it through the CLI, and removes it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import docker

from dockprogress.cli.main import main as dockprogress

IMAGE = os.environ.get("DP_PYTHON_IMAGE", "127.0.0.1:5000/dp/python:1")
SCRIPT = Path(__file__).resolve().parent.parent / "src" / "dockprogress" / "examples"


def main() -> int:
    client = docker.from_env()
    box = client.containers.run(
        IMAGE, ["sleep", "300"], detach=True, name=f"dp-exec-demo-{os.getpid()}"
    )
    try:
        source = (SCRIPT / "tqdm_demo.py").read_text()
        print(f"dockprogress exec {box.name} -- python3 tqdm_demo.py nested 25 0.04", flush=True)
        return dockprogress(
            ["exec", box.name, "--", "python3", "-c", source, "nested", "25", "0.04"]
        )
    finally:
        box.remove(force=True)
        client.close()


if __name__ == "__main__":
    sys.exit(main())
