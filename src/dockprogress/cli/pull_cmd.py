"""``dockprogress pull IMAGE [IMAGE ...] [--platform OS/ARCH] [--progress ...]``.

Pulls every image at once (one task each, plus ``pull:*`` for several), shows them with the
chosen display, and exits 0 when every pull is done, 1 when any failed (the engine's message
is the task's ``error``), 2 on a usage error, 130 on Ctrl-C (after ``cancelled`` events).
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
from dockprogress.sinks.base import Sink

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pull",
        help="pull images with one exact byte progress per image",
        description=(
            "Pull images through the Docker engine. The total is the compressed size of the "
            "layers to download, read from the registry's manifest before the first byte."
        ),
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image reference(s)")
    parser.add_argument(
        "--platform",
        default=None,
        metavar="OS/ARCH",
        help="platform to pull (default: the engine's own), e.g. linux/arm64/v8",
    )
    add_engine_options(parser)
    add_display_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockprogress.core.manifest import parse_platform, parse_reference

    # Usage errors surface before anything is shown or pulled.
    for image in args.images:
        parse_reference(image)
    if args.platform:
        parse_platform(args.platform)
    check_engine_options(args)

    def produce(sink: Sink) -> None:
        from dockprogress.docker.pull import PullSession

        session = PullSession(args.images, platform=args.platform, **engine_options(args))
        try:
            for event in session:
                sink.send(event)
        except KeyboardInterrupt:
            for event in session.cancel("cancelled by Ctrl-C"):
                sink.send(event)
            raise

    return run_with_display(args, produce)
