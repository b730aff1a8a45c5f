"""The ``dockprogress`` command: argument parsing, exit statuses, and the subcommands.

Exit status: 0 when every task ended ``done``; 1 when any ended ``error``; 2 for a usage
error; 130 when cancelled by Ctrl-C. Each subcommand lives in its own module and registers
itself with :func:`register`.
"""

from __future__ import annotations

import sys

from dockprogress.errors import Cancelled, DockProgressError, UsageError

TYPE_CHECKING = False  # (typing.TYPE_CHECKING without loading typing)
if TYPE_CHECKING:  # argparse loads with the parser: `--version` needs none of it
    import argparse
    from collections.abc import Sequence

__all__ = ["EXIT_CANCELLED", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130

_COMMAND_MODULES = ("pull", "push", "build", "logs", "exec", "serve", "agent", "demo")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only`` (a command's name) that command's alone, which is all
    a command line naming it needs: the other command modules (and what they import: the web
    stack, the bus...) are not loaded for it."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            # main() prints "dockprogress: " before the message: name only the subcommand.
            command = self.prog.removeprefix("dockprogress").strip()
            raise UsageError(f"{command}: {message}" if command else message)

    parser = _Parser(
        prog="dockprogress",
        description="Real progress for Docker pulls, container logs and exec'd commands.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    import importlib

    for name in (only,) if only in _COMMAND_MODULES else _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"dockprogress.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"dockprogress.cli.{name}_cmd":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given == ["--version"]:
        # The one answer that needs no command module (start-up row of BENCHMARKS.md).
        from dockprogress import __version__

        print(__version__)
        return EXIT_OK
    try:
        if argv is None and given[:1] == ["pull"]:
            # The engine starts on the pulls while the rest of the command loads.
            from dockprogress.docker.headstart import head_start

            head_start(given[1:])
        # `dockprogress pull ...` needs the pull command's parser only (start-up time).
        parser = build_parser(only=given[0] if given and given[0] in _COMMAND_MODULES else None)
        args = parser.parse_args(given)
        if args.version:
            from dockprogress import __version__

            print(__version__)
            return EXIT_OK
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        status: int = args.func(args)
        return status
    except UsageError as exc:
        print(f"dockprogress: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Cancelled):
        print("dockprogress: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except DockProgressError as exc:
        print(f"dockprogress: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if argv is None:  # the process's own command line: it exits next
            started = sys.modules.get("dockprogress.docker.headstart")
            if started is not None:
                started.discard()  # pulls sent for a session that never ran
            _quick_exit()


def _quick_exit() -> None:
    """Spare the exiting interpreter its last garbage collection over every object the
    imports made (7 ms of an up-to-date pull's 100 on the bench machine; 2 ms left): they are
    frozen, so the collection at shutdown skips them. Only for the process's own command
    line, never for a program calling :func:`main`."""
    import gc

    gc.freeze()
