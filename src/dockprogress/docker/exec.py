"""``docker exec`` with a TTY, its live progress bars parsed: the seed's Approach 3, done right.

The adapter only moves bytes from the engine into
:class:`~dockprogress.core.execprogress.ExecTracker`:

1. ``exec_create`` with ``Tty: true``, ``COLUMNS``/``LINES`` in the environment, and (API
   1.42+) ``ConsoleSize``; a marker variable ``DOCKPROGRESS_EXEC`` tags the processes;
2. start the exec and take its raw stream (a TTY stream is not multiplexed); on engines
   older than API 1.42, ``exec_resize`` right after the start: a 0x0 PTY makes tqdm draw
   nothing;
3. read until EOF, then ``exec_inspect`` for ``ExitCode`` (null until the command ended);
4. cancelling (the ``cancel`` event, Ctrl-C, or closing the generator) kills the command:
   its ``Pid`` from ``exec_inspect`` is signalled from here when that pid is visible in this
   pid namespace *and* belongs to the container (checked in its cgroup) *and* the engine is
   reached through a local unix socket, otherwise (a remote engine: tcp, TLS, ssh, whose
   pids are another machine's) a second exec kills every process carrying this exec's marker.

Forms: :func:`iter_exec` (blocking generator), :func:`exec_with_progress` (callbacks,
including the seed's ``progress_callback(percent)``), :func:`aexec` (``async for``). Ending
events and errors are those of :mod:`dockprogress.local`: ``done``; ``error`` then
:class:`~dockprogress.errors.ExecError` (exit status, last lines: a command that does not
exist shows the engine's own message); ``cancelled``.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shlex
import signal
import socket
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Final, Literal

from dockprogress._bridge import aiter_in_thread, drive
from dockprogress.core.barfiles import Recognisers
from dockprogress.core.execprogress import ExecTracker
from dockprogress.docker.client import connect, endpoint_of
from dockprogress.errors import DockProgressError, EngineError, UsageError
from dockprogress.events import Operation, TaskEvent
from dockprogress.local._pump import IDLE_FLUSH, pump
from dockprogress.local.ptyrun import DEFAULT_SIZE, _callbacks
from dockprogress.task import Clock

__all__ = ["MARKER_VARIABLE", "aexec", "exec_with_progress", "iter_exec"]

#: Environment variable set on every exec, whose value identifies it (used to kill it).
MARKER_VARIABLE: Final = "DOCKPROGRESS_EXEC"
_CONSOLE_SIZE_API: Final = (1, 42)
_KILL_GRACE: Final = 2.0
KillVia = Literal["auto", "host", "exec"]


def iter_exec(
    container: str,
    cmd: Sequence[str] | str,
    *,
    client: Any = None,
    bar: str | re.Pattern[str] | None = None,
    bars: Recognisers | None = None,
    passthrough: BinaryIO | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    environment: Mapping[str, str] | None = None,
    user: str = "",
    workdir: str | None = None,
    task_id: str | None = None,
    cancel: threading.Event | None = None,
    clock: Clock = time.time,
    idle: float = IDLE_FLUSH,
    kill_via: KillVia = "auto",
    host: str | None = None,
    context: str | None = None,
) -> Iterator[TaskEvent]:
    """Run ``cmd`` in ``container`` with a TTY of ``size`` (columns, lines); yield its events.

    ``client`` is a ``docker.DockerClient`` or ``docker.APIClient`` (default: the engine
    ``host``/``context`` select, else the docker CLI's choice from the environment).
    ``passthrough`` receives the raw output bytes.
    """
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if not argv:
        raise UsageError("exec: no command given (usage: dockprogress exec CONTAINER -- CMD)")
    columns, lines = size
    marker = uuid.uuid4().hex
    tracker = ExecTracker(
        task_id or f"exec:{container}:{os.path.basename(argv[0])}",
        operation=Operation.EXEC,
        description=shlex.join(argv),
        bar=bar,
        bars=bars,
        clock=clock,
    )
    try:
        api, owned = _api_client(client, host, context)
    except EngineError as exc:  # the task ends in error like any other failure to start
        event = tracker.task.fail(str(exc))
        if event is not None:
            yield event
        raise
    env = {**(environment or {}), "COLUMNS": str(columns), "LINES": str(lines)}
    env.setdefault("TERM", "xterm-256color")
    env[MARKER_VARIABLE] = marker
    try:
        try:
            exec_id = _create(
                api, container, argv, env=env, user=user, workdir=workdir, columns=columns,
                lines=lines,
            )  # fmt: skip
            stream, initial, response = _start(api, exec_id)
        except Exception as exc:
            error = _engine_error(exc, container)
            event = tracker.task.fail(str(error))
            if event is not None:
                yield event
            raise error from exc
        yield from _follow(
            api, container, exec_id, tracker, marker=marker, stream=stream, initial=initial,
            response=response, cancel=cancel, passthrough=passthrough, idle=idle, kill_via=kill_via,
            size=size,
        )  # fmt: skip
    finally:
        if owned:
            api.close()


def _follow(
    api: Any,
    container: str,
    exec_id: str,
    tracker: ExecTracker,
    *,
    marker: str,
    stream: socket.socket,
    initial: bytes,
    response: Any,
    cancel: threading.Event | None,
    passthrough: BinaryIO | None,
    idle: float,
    kill_via: KillVia,
    size: tuple[int, int],
) -> Iterator[TaskEvent]:
    """From the started exec to its terminal event (see :func:`iter_exec`)."""
    columns, lines = size

    ended = False  # once the command has ended (or been killed), nothing is left to kill
    try:
        started = tracker.start()
        if started is not None:
            yield started
        if not _supports_console_size(api):
            _resize(api, exec_id, columns, lines)
        if initial:
            if passthrough is not None:
                passthrough.write(initial)
                passthrough.flush()
            yield from tracker.feed(initial)
        cancelled = yield from pump(
            _socket_reader(stream), tracker, cancel=cancel, passthrough=passthrough, idle=idle
        )
        if cancelled:
            _kill(api, container, exec_id, marker, kill_via)
            ended = True
            event = tracker.cancel("cancelled")
            if event is not None:
                yield event
            return
        code = _exit_code(api, exec_id)
        ended = True
        event = tracker.exit(code)
        if event is not None:
            yield event
        if code != 0:
            raise tracker.error_for(code)
    except KeyboardInterrupt:
        _kill(api, container, exec_id, marker, kill_via)
        ended = True
        event = tracker.cancel("cancelled by Ctrl-C")
        if event is not None:
            yield event
        raise
    except DockProgressError:
        raise
    except Exception as exc:
        # The engine went away under the exec (dockerd stopped): requests' or docker-py's
        # errors become an ``error`` event and an EngineError, like a failed start.
        ended = True
        error = _engine_error(exc, container)
        event = tracker.task.fail(f"lost the engine during the exec: {error}")
        if event is not None:
            yield event
        raise error from exc
    finally:
        if not ended:  # closed early (GeneratorExit) or an error while reading
            _kill(api, container, exec_id, marker, kill_via)
        with contextlib.suppress(OSError):
            stream.close()
        response.close()


def exec_with_progress(
    container: str,
    cmd: Sequence[str] | str,
    *,
    on_event: Callable[[TaskEvent], object] | None = None,
    progress_callback: Callable[[float], object] | None = None,
    **options: Any,
) -> TaskEvent | None:
    """The seed's ``execInContainerWithProgress``: callback form of :func:`iter_exec`.

    ``progress_callback(percent)`` gets each new overall percent and 100 at the end;
    ``on_event`` every event. Returns the terminal event; raises ``ExecError`` on failure.
    """
    return drive(iter_exec(container, cmd, **options), _callbacks(on_event, progress_callback))


async def aexec(
    container: str, cmd: Sequence[str] | str, **options: Any
) -> AsyncIterator[TaskEvent]:
    """``async for`` form of :func:`iter_exec`; leaving the loop early kills the command."""
    async for event in aiter_in_thread(lambda: iter_exec(container, cmd, **options)):
        yield event


# ----------------------------------------------------------------------- engine calls


def _api_client(client: Any, host: str | None, context: str | None) -> tuple[Any, bool]:
    """The low-level client, and whether it is ours to close."""
    if client is None:
        # connect() names the address tried, where it came from, and what to do.
        return connect(host=host, context=context).api, True
    return getattr(client, "api", client), False


def _local_engine(api: Any) -> bool:
    """Is the engine reached through a unix socket (its host pids may be ours)?"""
    endpoint = endpoint_of(api)
    if endpoint is not None:
        return endpoint.local
    return str(getattr(api, "base_url", "")).startswith("http+docker://localhost")


def _supports_console_size(api: Any) -> bool:
    version = tuple(int(part) for part in str(api.api_version).split(".")[:2])
    return version >= _CONSOLE_SIZE_API


def _create(
    api: Any,
    container: str,
    argv: list[str],
    *,
    env: dict[str, str],
    user: str,
    workdir: str | None,
    columns: int,
    lines: int,
) -> str:
    if not _supports_console_size(api):
        created = api.exec_create(
            container, argv, stdout=True, stderr=True, tty=True,
            environment=env, user=user, workdir=workdir,
        )  # fmt: skip
        return str(created["Id"])
    # docker-py has no ConsoleSize parameter: post the documented body ourselves.
    body: dict[str, Any] = {
        "AttachStdin": False,
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": True,
        "Cmd": argv,
        "Env": [f"{key}={value}" for key, value in env.items()],
        "User": user,
        "ConsoleSize": [lines, columns],
    }
    if workdir is not None:
        body["WorkingDir"] = workdir
    response = api._post_json(api._url("/containers/{0}/exec", container), data=body)
    return str(api._result(response, True)["Id"])


def _start(api: Any, exec_id: str) -> tuple[socket.socket, bytes, object]:
    """Start the exec; its raw socket, bytes already read past the HTTP headers, the response.

    ``exec_start(socket=True)`` loses the bytes the HTTP client buffered while reading the
    upgrade response; starting it here keeps the response, so they are read first.
    """
    response = api._post_json(
        api._url("/exec/{0}/start", exec_id),
        headers={"Connection": "Upgrade", "Upgrade": "tcp"},
        data={"Tty": True, "Detach": False},
        stream=True,
    )
    raw = api._get_raw_response_socket(response)
    sock: socket.socket = getattr(raw, "_sock", raw)
    initial = b""
    fp: Any = getattr(getattr(response.raw, "_fp", None), "fp", None)
    buffered = getattr(fp, "read1", None)
    pending = getattr(fp, "_rbuffer", None)  # paramiko's channel file (ssh://) reads ahead
    if isinstance(pending, bytes):
        initial, fp._rbuffer = pending, b""
    elif buffered is not None:
        sock.setblocking(False)
        try:
            initial = buffered(65536) or b""
        except (BlockingIOError, ssl.SSLWantReadError, ValueError):
            initial = b""
        finally:
            sock.setblocking(True)
    return sock, initial, response


def _socket_reader(sock: socket.socket) -> Callable[[float], bytes | None]:
    def read(timeout: float) -> bytes | None:
        pending = getattr(sock, "pending", None)  # TLS may hold decrypted bytes
        if not (pending is not None and pending()):
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                return None
        try:
            return sock.recv(65536)
        except ConnectionResetError:
            return b""

    return read


def _resize(api: Any, exec_id: str, columns: int, lines: int) -> None:
    """``exec_resize`` right after the start; retried briefly as the docker CLI does."""
    import docker

    for attempt in range(10):
        try:
            api.exec_resize(exec_id, height=lines, width=columns)
            return
        except docker.errors.APIError:
            time.sleep(0.01 * (attempt + 1))


def _exit_code(api: Any, exec_id: str) -> int | None:
    """``ExitCode`` from ``exec_inspect``; it is null for a moment after the stream's EOF."""
    deadline = time.monotonic() + 5.0
    while True:
        info = api.exec_inspect(exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def _kill(api: Any, container: str, exec_id: str, marker: str, via: KillVia) -> None:
    """Stop the exec'd command (there is no API for it): SIGTERM, then SIGKILL."""
    try:
        info = api.exec_inspect(exec_id)
    except Exception:
        return
    if not info.get("Running"):
        return
    pid = int(info.get("Pid") or 0)
    container_id = str(info.get("ContainerID") or container)
    host = via == "host" or (via == "auto" and _local_engine(api) and _visible(pid, container_id))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if host:
            _signal_host(pid, sig)
        else:
            _signal_by_marker(api, container, marker, sig)
        deadline = time.monotonic() + _KILL_GRACE
        while time.monotonic() < deadline:
            try:
                if not api.exec_inspect(exec_id).get("Running"):
                    return
            except Exception:
                return
            time.sleep(0.05)


def _visible(pid: int, container_id: str) -> bool:
    """Is host pid ``pid`` this container's process, seen from our pid namespace?"""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as cgroup:
            return container_id in cgroup.read()
    except OSError:
        return False


def _signal_host(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # a TTY exec is a session leader: its group is its children too
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _signal_by_marker(api: Any, container: str, marker: str, sig: signal.Signals) -> None:
    script = (
        f"for d in /proc/[0-9]*; do "
        f'if tr "\\0" "\\n" < "$d/environ" 2>/dev/null | grep -qx "{MARKER_VARIABLE}={marker}"; '
        f'then kill -{int(sig)} "${{d#/proc/}}" 2>/dev/null; fi; done'
    )
    with contextlib.suppress(Exception):
        killer = api.exec_create(container, ["sh", "-c", script], stdout=True, stderr=True)
        api.exec_start(killer["Id"])


def _engine_error(exc: Exception, container: str) -> EngineError:
    import docker

    if isinstance(exc, docker.errors.NotFound):
        return EngineError(f"no such container: {container}")
    if isinstance(exc, docker.errors.APIError):
        reason = exc.explanation or str(exc)
        return EngineError(f"the engine refused the exec in {container}: {reason}")
    if isinstance(exc, docker.errors.DockerException | OSError):
        return EngineError(f"cannot reach the Docker engine: {exc}")
    raise exc
