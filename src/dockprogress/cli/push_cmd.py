"""``dockprogress push IMAGE [IMAGE ...] [--progress ...]``.

Pushes the images one after the other, one task each (bytes sent of the layers the registry
does not have yet). Exit status 0 when every push is done, 1 when any failed (the engine's
message, e.g. an unreachable registry or a refused login, is the task's ``error``), 2 on a
usage error, 130 on Ctrl-C (after ``cancelled`` events).
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
        "push",
        help="push images with one byte progress per image",
        description="Push images through the Docker engine, one task per image.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image reference(s)")
    add_engine_options(parser)
    add_display_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dockprogress.core.manifest import parse_reference

    for image in args.images:
        parse_reference(image)
    check_engine_options(args)

    def produce(sink: Sink) -> None:
        from dockprogress.docker.push import PushSession

        session = PushSession(args.images, **engine_options(args))
        try:
            for event in session:
                sink.send(event)
        except KeyboardInterrupt:
            for event in session.cancel("cancelled by Ctrl-C"):
                sink.send(event)
            raise

    return run_with_display(args, produce)
