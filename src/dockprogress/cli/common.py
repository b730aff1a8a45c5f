"""What every subcommand shares: display options, exit status from the tasks' ends."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from dockprogress.errors import DockProgressError, UsageError
from dockprogress.events import State, TaskEvent
from dockprogress.sinks.base import Fanout, Sink
from dockprogress.sinks.display import PROGRESS_MODES, open_display

__all__ = ["ExitStatus", "add_display_options", "run_with_display"]


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
    fanout = Fanout([open_display(args.progress), outcome])
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
