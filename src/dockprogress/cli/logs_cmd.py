"""``dockprogress logs``: a container's (or compose project's) progress from its logs.

    dockprogress logs CONTAINER --milestones FILE [--profile NAME] [--all-runs] [--progress ...]
    dockprogress logs --compose-project NAME --milestones FILE [--progress ...]

The milestone file is read and every pattern compiled before anything else: an unreadable
file or a bad pattern is exit status 2 with a message naming the milestone.
"""

from __future__ import annotations

import argparse
from typing import Any

from dockprogress.cli.common import (
    add_display_options,
    add_engine_options,
    check_engine_options,
    engine_options,
    run_with_display,
)
from dockprogress.errors import UsageError
from dockprogress.sinks.base import Sink

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "logs",
        help="progress of a container (or compose project) from milestones in its logs",
        description="Follow a container's logs and turn milestone lines into progress.",
    )
    parser.add_argument("container", nargs="?", help="container name or id")
    parser.add_argument("--compose-project", metavar="NAME", help="follow every container of it")
    parser.add_argument("--milestones", metavar="FILE", required=True, help="TOML milestone file")
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="calibration profile name or .json path (default: the milestone file's name)",
    )
    parser.add_argument(
        "--no-calibration", action="store_true", help="neither use nor update a profile"
    )
    parser.add_argument(
        "--stall-after",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="warn when no milestone matched for this long (default 300)",
    )
    add_engine_options(parser)
    parser.add_argument(
        "--all-runs",
        action="store_true",
        help="read every run of a restarted container (default: only its latest run)",
    )
    add_display_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.container) == bool(args.compose_project):
        raise UsageError("logs: give either CONTAINER or --compose-project NAME (one of them)")
    if args.stall_after is not None and args.stall_after <= 0:
        raise UsageError("logs: --stall-after must be positive")
    from dockprogress.core.milestones import load_milestones

    milestones = load_milestones(args.milestones)
    check_engine_options(args)
    calibrate = not args.no_calibration

    def produce(sink: Sink) -> None:
        if args.compose_project:
            from dockprogress.docker.compose import iter_follow_project

            events = iter_follow_project(
                args.compose_project,
                milestones=milestones,
                profile=args.profile,
                calibrate=calibrate,
                stall_after=args.stall_after,
                **engine_options(args),
                all_runs=args.all_runs,
            )
        else:
            from dockprogress.docker.logs import iter_follow

            events = iter_follow(
                args.container,
                milestones=milestones,
                profile=args.profile if calibrate else None,
                calibrate=calibrate,
                stall_after=args.stall_after,
                **engine_options(args),
                all_runs=args.all_runs,
            )
        for event in events:
            sink.send(event)

    return run_with_display(args, produce)
