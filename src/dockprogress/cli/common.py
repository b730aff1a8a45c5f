"""What every subcommand shares: engine and display options, exit status from the tasks' ends.

A command that talks to the engine calls :func:`add_engine_options` on its parser (one line)
and passes :func:`engine_options` of its arguments to the adapters (``host=``, ``context=``);
:func:`check_engine_options` resolves them up front so that a bad ``-H`` or a context that
does not exist is a usage error (exit status 2) before anything is shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from dockprogress.errors import DockProgressError, UsageError
from dockprogress.events import State, TaskEvent
from dockprogress.sinks.base import Fanout, Sink
from dockprogress.sinks.display import PROGRESS_MODES, open_display

__all__ = [
    "ExitStatus",
    "add_bus_options",
    "add_display_options",
    "add_engine_options",
    "bus_options",
    "check_engine_options",
    "engine_options",
    "run_with_display",
]


def add_engine_options(
    parser: argparse.ArgumentParser, *, host_flags: tuple[str, ...] = ("-H", "--host")
) -> None:
    """``-H/--host HOST`` and ``--context NAME``: which engine, as with the docker CLI.

    ``host_flags`` renames the host option where ``--host`` means something else (``serve``
    binds to ``--host``: it takes ``-H/--docker-host``).
    """
    group = parser.add_argument_group(
        "engine",
        "which Docker engine, found as the docker CLI finds it: -H, --context, DOCKER_HOST, "
        "DOCKER_CONTEXT, the CLI config's current context, the default socket",
    )
    group.add_argument(
        *host_flags,
        dest="engine_host",
        metavar="HOST",
        default=None,
        help="engine address: unix:///path, tcp://host:port (TLS with DOCKER_TLS_VERIFY and "
        "DOCKER_CERT_PATH), ssh://[user@]host[:port]",
    )
    group.add_argument(
        "--context",
        dest="engine_context",
        metavar="NAME",
        default=None,
        help="docker context to use (see `docker context ls`)",
    )


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """``host=`` and ``context=`` for the adapters, from :func:`add_engine_options`' flags."""
    return {
        "host": getattr(args, "engine_host", None),
        "context": getattr(args, "engine_context", None),
    }


def check_engine_options(args: argparse.Namespace) -> None:
    """Resolve the engine now: ``UsageError`` for ``-H`` with ``--context``, a bad address,
    a context that does not exist or an unreadable CLI config."""
    from dockprogress.docker.endpoint import resolve

    resolve(**engine_options(args))


def add_bus_options(parser: argparse.ArgumentParser) -> None:
    """``--bus URL`` and ``--node NAME``: every tracking command, ``serve`` and ``agent``."""
    parser.add_argument(
        "--bus",
        metavar="URL",
        default=None,
        help="publish to (serve: read from) the fleet's Redis bus, "
        "redis://[user:password@]host:port/db or rediss://... (or DOCKPROGRESS_BUS)",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        default=None,
        help="this machine's name on the bus (or DOCKPROGRESS_NODE; default: the host name)",
    )


def bus_options(args: argparse.Namespace) -> tuple[str | None, str]:
    """The bus URL (``--bus``, else ``DOCKPROGRESS_BUS``, else none) and the node name.

    Raises :class:`UsageError` for a URL that is not a Redis one or a bad node name.
    """
    import os

    from dockprogress.bus import open_bus, resolve_node

    url = getattr(args, "bus", None) or os.environ.get("DOCKPROGRESS_BUS") or None
    node = resolve_node(getattr(args, "node", None))
    open_bus(url)  # validates the URL before anything runs
    return url, node


def add_display_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="auto: live bars on a terminal, else plain; json: event lines on stdout",
    )
    parser.add_argument(
        "--dashboard",
        metavar="URL",
        default=None,
        help="also publish events to a running 'dockprogress serve' (e.g. http://127.0.0.1:8765)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="token for --dashboard when the server requires one (or DOCKPROGRESS_TOKEN)",
    )
    add_bus_options(parser)


class _NodeStamp(Fanout):
    """A fanout writing ``node`` into every event it forwards."""

    __slots__ = ("node",)

    def __init__(self, inner: Fanout, node: str) -> None:
        super().__init__(inner.sinks)
        self.node = node

    def send(self, event: TaskEvent) -> None:
        if event.node != self.node:
            event = dataclasses.replace(event, node=self.node)
        super().send(event)


class ExitStatus:
    """A sink that remembers how tasks ended: 0 all done, 1 any error, 130 any cancelled."""

    __slots__ = ("ended",)

    def __init__(self) -> None:
        self.ended: dict[str, State] = {}

    def send(self, event: TaskEvent) -> None:
        if event.terminal:
            self.ended[event.task] = event.state

    def close(self) -> None:
        pass

    def status(self) -> int:
        states = set(self.ended.values())
        if State.ERROR in states:
            return 1
        if State.CANCELLED in states:
            return 130
        return 0


def run_with_display(args: argparse.Namespace, produce: Callable[[Sink], None]) -> int:
    """Run ``produce`` with a sink built from the display options; return the exit status.

    ``produce`` sends every event of its tasks to the sink it is given. On Ctrl-C it is
    expected to cancel its tasks (sending their ``cancelled`` events) and re-raise.
    """
    outcome = ExitStatus()
    url, node = bus_options(args)
    fanout = Fanout([open_display(args.progress), outcome])
    if getattr(args, "node", None) is not None:
        fanout = _NodeStamp(fanout, node)  # --node shows in every display, not only the bus
    if url:
        from dockprogress.bus import open_bus

        fanout.add(open_bus(url).publisher(node))
    if getattr(args, "dashboard", None):
        import os

        from dockprogress.sinks.publish import DashboardPublisher

        token = args.token or os.environ.get("DOCKPROGRESS_TOKEN")
        fanout.add(DashboardPublisher(args.dashboard, token=token))
    try:
        produce(fanout)
    except KeyboardInterrupt:
        return 130
    except UsageError:
        raise
    except DockProgressError as exc:
        # The task's own ``error`` event has been shown; this line is for logs and scripts.
        print(f"dockprogress: error: {exc}", file=sys.stderr)
        return 1
    finally:
        fanout.close()
    return outcome.status()
