"""``dockprogress serve``: the live dashboard (page, JSON API, WebSocket) on one port.

With ``--bus URL`` (or ``DOCKPROGRESS_BUS``) the dashboard is a replica fed by the fleet's
Redis bus: it shows every node's tasks, and any number of replicas show the same ones.

Binds to 127.0.0.1:8765 by default. Any other address needs a token: ``--token``, else
``DOCKPROGRESS_TOKEN``, else one is generated and printed. The printed URL carries the token
in its fragment (``#token=...``), which the browser keeps to itself: the page reads it and
never sends it in a URL the server logs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dockprogress.cli.common import (
    add_bus_options,
    add_engine_options,
    bus_options,
    check_engine_options,
    engine_options,
)
from dockprogress.sinks.web import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the live dashboard",
        description="Serve the live dashboard: the page, the JSON API and the event stream.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind ({DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    parser.add_argument(
        "--token",
        default=None,
        help="require this token for the API and the event stream (or DOCKPROGRESS_TOKEN); "
        "generated when binding to a non-loopback address without one",
    )
    # --host is the address to bind: the engine is -H/--docker-host here.
    add_engine_options(parser, host_flags=("-H", "--docker-host"))
    parser.add_argument(
        "--node-timeout",
        metavar="SECONDS",
        type=float,
        default=None,
        help="with --bus: show a node's running tasks as stale after this long without a "
        "word from it (default 30)",
    )
    add_bus_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockprogress.docker.client import connect
    from dockprogress.sinks.web.hub import EventHub
    from dockprogress.sinks.web.runner import TaskRunner
    from dockprogress.sinks.web.server import resolve_token, run_server

    check_engine_options(args)
    engine = engine_options(args)
    hub = EventHub()
    # The dashboard's own tasks (started from the page) go to the engine chosen here.
    runner = TaskRunner(hub, docker_client=lambda: connect(**engine))
    bus, node = bus_options(args)
    given = args.token if args.token is not None else os.environ.get("DOCKPROGRESS_TOKEN")
    token, generated = resolve_token(args.host, given)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/"
    if token is not None:
        url += f"#token={token}"
    if generated:
        print(f"dockprogress: generated token: {token}", file=sys.stderr)
    if bus:
        from dockprogress.bus import _redact

        print(f"dockprogress: fed by the bus at {_redact(bus)} as node {node}", file=sys.stderr)
    print(f"dockprogress: dashboard at {url}", file=sys.stderr, flush=True)
    try:
        run_server(
            args.host,
            args.port,
            token,
            hub,
            runner=runner,
            bus=bus,
            node=node,
            node_timeout=args.node_timeout,
        )
    except KeyboardInterrupt:
        return 0
    return 0
