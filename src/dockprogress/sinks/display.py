"""Choosing the display for ``--progress auto|tty|plain|json``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from dockprogress.errors import UsageError

if TYPE_CHECKING:  # (the event model loads with the sinks; the modes are read before it)
    from dockprogress.sinks.base import Sink

__all__ = ["PROGRESS_MODES", "open_display", "resolve_mode"]

PROGRESS_MODES = ("auto", "tty", "plain", "json")


def resolve_mode(mode: str, stream: TextIO) -> str:
    """``auto`` is ``tty`` on a terminal (and not ``TERM=dumb``), else ``plain``."""
    if mode not in PROGRESS_MODES:
        raise UsageError(f"--progress must be one of {', '.join(PROGRESS_MODES)}, not {mode!r}")
    if mode != "auto":
        return mode
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty() and os.environ.get("TERM") != "dumb":
        return "tty"
    return "plain"


def open_display(mode: str = "auto", stream: TextIO | None = None) -> Sink:
    """A sink rendering events the way ``--progress mode`` asks.

    ``json`` writes event lines to standard output (or ``stream``); ``tty`` and ``plain``
    write to standard error (or ``stream``) so that standard output stays the command's own.
    """
    if mode == "json":
        from dockprogress.sinks.jsonl import JsonLinesSink

        return JsonLinesSink(stream if stream is not None else sys.stdout)
    out = stream if stream is not None else sys.stderr
    mode = resolve_mode(mode, out)
    if mode == "tty":
        from dockprogress.sinks.terminal import TerminalSink

        return TerminalSink(out)
    from dockprogress.sinks.plain import PlainSink

    return PlainSink(out)
