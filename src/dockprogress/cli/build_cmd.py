"""``dockprogress build PATH [-t TAG ...] [-f FILE] [--build-arg K=V ...] [--target T] ...``.

One task for the build, its percent from the Dockerfile's steps (calibrated by earlier
builds of the same Dockerfile), on the builder the docker CLI would use (``--builder`` forces
one). Exit status 0 when the image was built, 1 when a step failed (the task's ``error``
names the step, its exit status and its last lines), 2 on a usage error (unreadable
Dockerfile, unknown target), 130 on Ctrl-C (the build is stopped).
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
        "build",
        help="build an image with one overall percent (and an ETA once calibrated)",
        description="Build an image with the classic builder or BuildKit, as one task.",
    )
    parser.add_argument("path", metavar="PATH", help="the build context (a directory)")
    parser.add_argument("-t", "--tag", action="append", default=[], help="name:tag (repeat)")
    parser.add_argument(
        "-f", "--file", default=None, help="the Dockerfile (default PATH/Dockerfile)"
    )
    parser.add_argument(
        "--build-arg", action="append", default=[], metavar="K=V", help="build argument (repeat)"
    )
    parser.add_argument("--target", default=None, help="the stage to build")
    parser.add_argument("--network", default=None, help="network mode of RUN steps, e.g. none")
    parser.add_argument("--platform", default=None, metavar="OS/ARCH")
    parser.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    parser.add_argument("--pull", action="store_true", help="always pull the base images")
    parser.add_argument(
        "--builder",
        choices=("auto", "classic", "buildkit"),
        default="auto",
        help="auto: as the docker CLI (DOCKER_BUILDKIT, the buildx plugin); or force one",
    )
    add_engine_options(parser)
    add_display_options(parser)
    parser.set_defaults(func=run)


def _build_args(pairs: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key or not sep:
            raise UsageError(f"--build-arg {pair!r}: expected KEY=VALUE")
        args[key] = value
    return args


def run(args: argparse.Namespace) -> int:
    from dockprogress.docker.build import BuildSession

    check_engine_options(args)
    session = BuildSession(  # usage errors (Dockerfile, target) surface before any display
        args.path,
        tags=args.tag,
        dockerfile=args.file,
        build_args=_build_args(args.build_arg),
        target=args.target,
        network=args.network,
        platform=args.platform,
        no_cache=args.no_cache,
        pull=args.pull,
        builder=args.builder,
        **engine_options(args),
    )

    def produce(sink: Sink) -> None:
        try:
            for event in session:
                sink.send(event)
        except KeyboardInterrupt:
            for event in session.cancel("cancelled by Ctrl-C"):
                sink.send(event)
            raise

    return run_with_display(args, produce)
