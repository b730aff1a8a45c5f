"""``dockprogress exec CONTAINER -- CMD`` and ``dockprogress run -- CMD``.

Both run the command with a TTY (in the container through ``docker exec``, or locally under
a pty), parse the progress bars it draws (tqdm, rich, the tools of ``dockprogress/bars/``,
``--bars FILE`` of your own, any ``N%`` redrawn in place), and show them as one task. Exit
status: 0 when the command exited 0; 1 when it failed (its status and last lines on standard
error); 2 for a usage error (no command, bad ``--bar`` regex, unusable ``--bars`` file); 130
on Ctrl-C, which kills the command first.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import re
import sys
from collections.abc import Generator, Iterator
from typing import Any, BinaryIO, NoReturn

from dockprogress.cli.common import (
    add_display_options,
    add_engine_options,
    check_engine_options,
    engine_options,
    run_with_display,
)
from dockprogress.errors import UsageError
from dockprogress.events import TaskEvent
from dockprogress.sinks.base import Sink

__all__ = ["register"]

_SIZE = re.compile(r"(\d+)x(\d+)")


def register(subparsers: Any) -> None:
    exec_parser = subparsers.add_parser(
        "exec",
        help="run a command in a running container with a TTY and show its progress bars",
        description="Run CMD in CONTAINER (docker exec with a TTY) and show the progress of "
        "the tqdm/rich bars it draws.",
    )
    exec_parser.add_argument("container", help="name or id of a running container")
    _add_exec_options(exec_parser)
    _add_common(exec_parser)
    exec_parser.set_defaults(func=run_exec)

    run_parser = subparsers.add_parser(
        "run",
        help="run a local command under a pty and show its progress bars",
        description="Run CMD locally under a pseudo-terminal and show the progress of the "
        "tqdm/rich bars it draws.",
    )
    _add_common(run_parser)
    run_parser.set_defaults(func=run_local)


class _OptionParser(argparse.ArgumentParser):
    """Parses the options written between CONTAINER and ``--`` (see :func:`_split`)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _add_exec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set a variable"
    )
    parser.add_argument("-u", "--user", default="", help="user to run the command as")
    parser.add_argument("-w", "--workdir", default=None, help="working directory")
    add_engine_options(parser)


def _split(args: argparse.Namespace) -> list[str]:
    """The command after ``--``, with any options written before ``--`` applied to ``args``.

    argparse hands everything after the first positional to the command's REMAINDER, so
    ``exec CONTAINER --progress json -- CMD`` arrives as ``['--progress', 'json', '--',
    'CMD']``: the options part is parsed here with the same option definitions.
    """
    words = list(args.cmd)
    if words and words[0].startswith("-") and "--" in words:
        cut = words.index("--")
        head, words = words[:cut], words[cut:]
        if head:
            late = _OptionParser(prog=args.command, add_help=False)  # main() adds "dockprogress: "
            if args.command == "exec":
                _add_exec_options(late)
            _add_common(late, with_command=False)
            late.parse_args(head, namespace=args)
    if words and words[0] == "--":
        words = words[1:]
    return words


def _add_common(parser: argparse.ArgumentParser, *, with_command: bool = True) -> None:
    parser.add_argument(
        "--bar",
        metavar="REGEX",
        default=None,
        help="follow the bar whose description matches REGEX (default: all bars, nested "
        "tqdm bars counted inside their parent)",
    )
    parser.add_argument(
        "--bars",
        metavar="FILE",
        action="append",
        default=None,
        help="a TOML file of your own bar patterns (named groups n, total, pct, unit, rate), "
        "tried before the shipped ones; may be given more than once",
    )
    parser.add_argument(
        "--passthrough",
        action="store_true",
        help="also copy the command's raw output to standard output (standard error with "
        "--progress json)",
    )
    parser.add_argument(
        "--size",
        metavar="COLSxLINES",
        default=None,
        help="console size given to the command (default: this terminal's, else 120x40)",
    )
    add_display_options(parser)
    if with_command:
        parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARG ...]")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    cmd = _split(args)
    if not cmd:
        raise UsageError(f"{args.command}: no command given (put it after --)")
    from dockprogress.core.execprogress import compile_bar_pattern, recognisers_for

    options: dict[str, Any] = {"bar": compile_bar_pattern(args.bar)}
    if args.bars:
        options["bars"] = recognisers_for(args.bars)
    if args.size:
        match = _SIZE.fullmatch(args.size)
        if match is None:
            raise UsageError(f"--size must look like 120x40, not {args.size!r}")
        options["size"] = (int(match[1]), int(match[2]))
    if args.passthrough:
        stream = sys.stderr if args.progress == "json" else sys.stdout
        options["passthrough"] = _binary(stream)
    options["cmd"] = cmd
    return options


def run_exec(args: argparse.Namespace) -> int:
    options = _options(args)
    environment: dict[str, str] = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise UsageError(f"--env must be KEY=VALUE, not {item!r}")
        environment[key] = value
    check_engine_options(args)
    from dockprogress.docker.exec import iter_exec

    def produce(sink: Sink) -> None:
        cmd = options.pop("cmd")
        events = iter_exec(
            args.container,
            cmd,
            environment=environment,
            user=args.user,
            workdir=args.workdir,
            **engine_options(args),
            **options,
        )
        _send_all(events, sink)

    return run_with_display(args, produce)


def run_local(args: argparse.Namespace) -> int:
    options = _options(args)
    from dockprogress.local import iter_run

    def produce(sink: Sink) -> None:
        cmd = options.pop("cmd")
        _send_all(iter_run(cmd, **options), sink)

    return run_with_display(args, produce)


def _send_all(events: Iterator[TaskEvent], sink: Sink) -> None:
    """Send every event; on Ctrl-C let the adapter kill the command and say ``cancelled``.

    Ctrl-C usually lands inside the adapter (it waits on the stream), which handles it
    itself; when it lands while a display is drawing, it is thrown into the adapter here.
    """
    try:
        for event in events:
            sink.send(event)
    except KeyboardInterrupt:
        if isinstance(events, Generator) and (
            inspect.getgeneratorstate(events) == inspect.GEN_SUSPENDED
        ):
            with contextlib.suppress(KeyboardInterrupt, StopIteration):
                sink.send(events.throw(KeyboardInterrupt()))
                for event in events:
                    sink.send(event)
        raise


def _binary(stream: Any) -> BinaryIO:
    buffer: BinaryIO = stream.buffer
    return buffer
