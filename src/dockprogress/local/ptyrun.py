"""A local command under a pseudo-terminal, its output parsed for progress bars."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pty
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Final

from dockprogress._bridge import aiter_in_thread, drive
from dockprogress.core.barfiles import Recognisers
from dockprogress.core.execprogress import ExecTracker, percent_callback
from dockprogress.errors import ExecError, UsageError
from dockprogress.events import Operation, TaskEvent
from dockprogress.local._pump import IDLE_FLUSH, pump
from dockprogress.task import Clock

__all__ = ["DEFAULT_SIZE", "arun", "iter_run", "kill_group", "run_with_progress", "tty_environment"]

#: Console size used when the user's own terminal size is unknown (columns, lines).
DEFAULT_SIZE: Final = (120, 40)
_KILL_GRACE: Final = 2.0


def tty_environment(columns: int, lines: int) -> dict[str, str]:
    """What a command needs in its environment to draw bars: the size, and a real TERM."""
    env = {"COLUMNS": str(columns), "LINES": str(lines)}
    if os.environ.get("TERM", "dumb") == "dumb":
        env["TERM"] = "xterm-256color"
    return env


def iter_run(
    cmd: Sequence[str],
    *,
    bar: str | re.Pattern[str] | None = None,
    bars: Recognisers | None = None,
    passthrough: BinaryIO | None = None,
    size: tuple[int, int] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    task_id: str | None = None,
    cancel: threading.Event | None = None,
    clock: Clock = time.time,
    idle: float = IDLE_FLUSH,
) -> Iterator[TaskEvent]:
    """Run ``cmd`` under a new pty and yield its task's events (see the package docstring).

    ``size`` is ``(columns, lines)``, by default the user's terminal size (or 120x40);
    ``passthrough`` receives the command's raw output bytes as they arrive.
    """
    if not cmd:
        raise UsageError("run: no command given (usage: dockprogress run -- CMD [ARG ...])")
    columns, lines = size or shutil.get_terminal_size(DEFAULT_SIZE)
    tracker = ExecTracker(
        task_id or f"run:{os.path.basename(cmd[0])}",
        operation=Operation.RUN,
        description=shlex.join(cmd),
        bar=bar,
        bars=bars,
        clock=clock,
    )
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        environment = {**os.environ, **(env or {}), **tty_environment(columns, lines)}
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=environment,
                start_new_session=True,  # its own process group: cancel kills it all
                close_fds=True,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            error = ExecError(
                f"command {cmd[0]!r} could not be started: {reason}",
                exit_code=127 if isinstance(exc, FileNotFoundError) else 126,
            )
            event = tracker.task.fail(error.message)
            if event is not None:
                yield event
            raise error from exc
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)  # the child holds its own copy; EOF comes when it closes it

    try:
        started = tracker.start()
        if started is not None:
            yield started
        read = _pty_reader(master, proc)
        cancelled = yield from pump(
            read, tracker, cancel=cancel, passthrough=passthrough, idle=idle
        )
        if cancelled:
            kill_group(proc)
            event = tracker.cancel("cancelled")
            if event is not None:
                yield event
            return
        code = proc.wait()
        event = tracker.exit(code)
        if event is not None:
            yield event
        if code != 0:
            raise tracker.error_for(code)
    except KeyboardInterrupt:
        kill_group(proc)
        event = tracker.cancel("cancelled by Ctrl-C")
        if event is not None:
            yield event
        raise
    finally:
        if proc.poll() is None:
            kill_group(proc)
        os.close(master)


def _pty_reader(master: int, proc: subprocess.Popen[bytes]) -> Callable[[float], bytes | None]:
    """``read(timeout)`` over the pty master: bytes, ``b""`` at EOF, ``None`` on timeout."""

    def read(timeout: float) -> bytes | None:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            # A background child may keep the slave open after the command itself exited.
            if proc.poll() is not None and not select.select([master], [], [], 0)[0]:
                return b""
            return None
        try:
            return os.read(master, 65536)
        except OSError as exc:
            if exc.errno == errno.EIO:  # Linux: every slave descriptor is closed
                return b""
            raise

    return read


def kill_group(proc: subprocess.Popen[Any], grace: float = _KILL_GRACE) -> None:
    """SIGTERM the command's process group, SIGKILL what is left of it after ``grace`` s.

    Returns once the leader is reaped and no other process of the group is alive: a shell's
    children die a moment after the shell, and "cancelled" must mean that all of them are
    gone (zombies whose reaper is elsewhere do not count).
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.02)
            if proc.returncode is not None and not _group_alive(proc.pid):
                return
            if time.monotonic() >= deadline:
                break


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` that is not a zombie remains (Linux /proc)."""
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: fall back to the signal check, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp.
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def run_with_progress(
    cmd: Sequence[str],
    *,
    on_event: Callable[[TaskEvent], object] | None = None,
    progress_callback: Callable[[float], object] | None = None,
    **options: Any,
) -> TaskEvent | None:
    """Callback form of :func:`iter_run`; returns the terminal event.

    ``progress_callback(percent)`` is the seed's callback: each new overall percent, 100 at
    the end. Raises :class:`ExecError` when the command fails.
    """
    return drive(iter_run(cmd, **options), _callbacks(on_event, progress_callback))


async def arun(cmd: Sequence[str], **options: Any) -> AsyncIterator[TaskEvent]:
    """``async for`` form of :func:`iter_run` (the command runs from a worker thread)."""
    async for event in aiter_in_thread(lambda: iter_run(cmd, **options)):
        yield event


def _callbacks(
    on_event: Callable[[TaskEvent], object] | None,
    progress_callback: Callable[[float], object] | None,
) -> Callable[[TaskEvent], object] | None:
    if progress_callback is None:
        return on_event
    percent = percent_callback(progress_callback)
    if on_event is None:
        return percent

    def both(event: TaskEvent) -> None:
        on_event(event)
        percent(event)

    return both
