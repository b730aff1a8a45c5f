"""``dockprogress agent --bus URL [--node NAME]``: follow labelled containers onto the bus.

One agent per host. Every container started with the label
``dockprogress.milestones=<profile name or path>`` (``docker run -l ...``, or ``labels:`` in a
Compose file) is followed through its logs from its start to its exit and published to the
fleet's bus, calibrated by earlier runs like ``dockprogress logs``. Runs until Ctrl-C or
SIGTERM (exit status 0). See :mod:`dockprogress.docker.agent`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from dockprogress.cli.common import add_bus_options, bus_options
from dockprogress.errors import UsageError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "agent",
        help="follow every container labelled dockprogress.milestones=PROFILE onto the bus",
        description="Watch the Docker engine and follow, through its logs, every container "
        "labelled dockprogress.milestones=<profile name or milestone file path>; publish "
        "their progress to the fleet's bus.",
    )
    parser.add_argument(
        "--milestones-dir",
        metavar="DIR",
        action="append",
        default=[],
        help="where profile names are looked up as NAME.toml (repeatable; then "
        "~/.config/dockprogress/milestones, then the shipped examples)",
    )
    add_bus_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockprogress.bus import _redact, open_bus
    from dockprogress.docker.agent import Agent, milestone_dirs

    url, node = bus_options(args)
    if not url:
        raise UsageError("agent: give --bus redis://host:port/db (or DOCKPROGRESS_BUS)")
    publisher = open_bus(url).publisher(node)
    agent = Agent(publisher, dirs=milestone_dirs(args.milestones_dir))
    stopping = threading.Event()

    def on_term(signum: int, frame: object) -> None:
        stopping.set()
        agent.stop()

    previous = signal.signal(signal.SIGTERM, on_term)
    print(f"dockprogress agent: node {node}, bus {_redact(url)}", file=sys.stderr, flush=True)
    watcher = threading.Thread(target=agent.run, name="dockprogress-agent", daemon=True)
    watcher.start()
    try:
        while watcher.is_alive() and not stopping.is_set():
            watcher.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        agent.stop()
        publisher.close()
        signal.signal(signal.SIGTERM, previous)
    return 0
