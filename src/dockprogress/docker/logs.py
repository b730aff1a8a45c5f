"""The log follower: a container's logs, as milestone progress, losing no line.

:func:`iter_follow` is the one blocking generator; :func:`follow` (callback form, the seed's
``ContainerLogConsumer`` with ``progress_handler=``) and :func:`afollow` (``async for``)
wrap it. The bytes go through :class:`~dockprogress.core.lines.LogDecoder` (the frame header
is parsed there, in :mod:`dockprogress.core.frames`) into
:class:`~dockprogress.core.logprogress.LogProgress`.

How the logs are read: ``GET /containers/{id}/logs?follow=1&timestamps=1&since=…`` through
docker-py's low-level session, keeping the *raw* HTTP response (``APIClient.logs`` would
demultiplex frames itself, a second frame parser, and yields a TTY stream byte by byte).
A reader thread moves each chunk into a queue; the generator waits on the queue with a
timeout so that it can :meth:`~LogProgress.tick` every ``tick_interval`` seconds (smooth
calibrated progress, stall warning) when no line comes. A second thread watches the engine's
``/events`` for the container's ``start``.

The first request asks for the container's latest run only (from the end of the run before
it, see :func:`_run_since`), including the lines written before the follow began; a
stopped or restarted container's earlier runs are not counted again (``all_runs=True``
reads them all, as ``docker logs`` does). When the stream ends or breaks:

* the container still runs (connection cut, daemon restarted with live-restore): ask again
  ``since`` the last timestamp seen and drop the lines already delivered at that instant
  (:class:`~dockprogress.core.lines.LogCursor`); never from the local clock;
* the engine does not answer (daemon restarting): retry every second up to
  ``reconnect_timeout`` seconds, then end in ``error``;
* the container stopped: read once more to the end (no line lost at the stop), then wait
  ``restart_grace`` seconds (indefinitely while the engine says it is restarting) for a
  ``start`` event, and follow the new run if one comes; otherwise the container's exit
  decides: ``done`` with status 0 when the set has no final milestone, else ``error`` with
  the exit code and the last lines.

The generator ends on the final milestone (``done``, the profile is updated), on the
container's exit (``done`` or ``error``: the error event is yielded, then
:class:`~dockprogress.errors.LogFollowError` raised), on ``cancel`` being set
(``cancelled``), and on Ctrl-C (``cancelled`` yielded, ``KeyboardInterrupt`` re-raised).
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Final

import docker
import docker.errors

from dockprogress._bridge import aiter_in_thread, drive
from dockprogress.core.calibration import Profile
from dockprogress.core.lines import LogCursor, LogDecoder, format_since, split_timestamp
from dockprogress.core.logprogress import LogProgress, ProgressHandler
from dockprogress.core.milestones import MilestoneSet
from dockprogress.docker.client import close_ssh_stream, connect, translate_errors
from dockprogress.docker.unixsock import close_failed_connects
from dockprogress.errors import DockProgressError, EngineError, StreamError
from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.profiles import load_profile, record_run
from dockprogress.task import Task

__all__ = ["afollow", "follow", "iter_follow"]

_DATA, _EOF, _BROKEN, _ENGINE_EVENT = "data", "eof", "broken", "event"
_RESTART_POLICIES: Final = frozenset({"always", "unless-stopped", "on-failure"})

ProfileRef = str | os.PathLike[str] | Profile


def iter_follow(
    container: str,
    *,
    milestones: MilestoneSet,
    progress_handler: ProgressHandler | None = None,
    profile: ProfileRef | None = None,
    calibrate: bool = True,
    stall_after: float | None = 300.0,
    client: docker.DockerClient | None = None,
    task_id: str | None = None,
    cancel: threading.Event | None = None,
    tick_interval: float = 0.5,
    reconnect_timeout: float = 60.0,
    restart_grace: float = 2.0,
    detail: Mapping[str, Any] | None = None,
    priority: int = 0,
    host: str | None = None,
    context: str | None = None,
    all_runs: bool = False,
) -> Iterator[TaskEvent]:
    """Follow ``container`` (name or id), yielding its task's events until it ends.

    The engine is ``client``, else the one ``host``/``context`` select (``-H``/``--context``),
    else the docker CLI's choice from the environment.

    ``profile`` is a profile name or path (loaded before, updated after a ``done`` run) or a
    :class:`Profile` (used as is, not saved); without one, the milestone file's ``name`` is
    the profile when ``calibrate`` is true. ``stall_after`` (seconds, ``None`` = never) sets
    when a run with no matching line gets a warning in ``detail``. Only the container's
    latest run is read (from the end of the run before it) unless ``all_runs`` is true.
    Raises ``EngineError`` when the engine or container cannot be reached at the start.
    """
    follower = _Follower(
        container,
        milestones=milestones,
        progress_handler=progress_handler,
        profile=profile if profile is not None else (milestones.name if calibrate else None),
        stall_after=stall_after,
        client=client,
        task_id=task_id,
        cancel=cancel,
        tick_interval=tick_interval,
        reconnect_timeout=reconnect_timeout,
        restart_grace=restart_grace,
        detail=detail,
        priority=priority,
        engine=(host, context),
        all_runs=all_runs,
    )
    yield from follower.run()


def follow(
    container: str,
    *,
    on_event: Callable[[TaskEvent], object] | None = None,
    **options: Any,
) -> TaskEvent | None:
    """Callback form of :func:`iter_follow`: ``on_event`` gets every event; returns the last.

    The seed's ``progress_handler(progress, description, log_message)`` is an option of
    :func:`iter_follow` and may be given here too. Raises ``LogFollowError`` when the
    container fails before its final milestone.
    """
    return drive(iter_follow(container, **options), on_event)


def afollow(container: str, **options: Any) -> AsyncIterator[TaskEvent]:
    """``async for`` form of :func:`iter_follow` (the follow runs in a worker thread)."""
    return aiter_in_thread(lambda: iter_follow(container, **options))


#: Chunks (and engine events) waiting for the follower, at most.
_QUEUE_CHUNKS: Final = 256


def _put(
    sink: queue.Queue[tuple[str, int, Any]], item: tuple[str, int, Any], stop: threading.Event
) -> bool:
    """Put ``item`` into the bounded queue, waiting for room; ``False`` once ``stop`` is set."""
    while not stop.is_set():
        try:
            sink.put(item, timeout=0.25)
            return True
        except queue.Full:
            continue
    return False


class _Stream:
    """One logs request and the thread that moves its chunks into the queue."""

    def __init__(
        self,
        api: Any,
        container_id: str,
        since: str | None,
        generation: int,
        sink: queue.Queue[tuple[str, int, Any]],
    ) -> None:
        params: dict[str, Any] = {"follow": 1, "stdout": 1, "stderr": 1, "timestamps": 1}
        if since is not None:
            params["since"] = since
        url = api._url("/containers/{0}/logs", container_id)
        # timeout=None: a quiet service must not look like a broken stream.
        self._response = api._get(url, params=params, stream=True, timeout=None)
        api._raise_for_status(self._response)
        self._closed = threading.Event()
        self.generation = generation
        self._sink = sink
        self._thread = threading.Thread(target=self._read, name="dockprogress-logs", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for chunk in self._response.iter_content(chunk_size=None):
                if chunk and not _put(self._sink, (_DATA, self.generation, chunk), self._closed):
                    return
            _put(self._sink, (_EOF, self.generation, None), self._closed)
        except Exception as exc:  # any failure of the read is a broken stream
            _put(self._sink, (_BROKEN, self.generation, exc), self._closed)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        # Shut the socket down first: closing the response alone does not wake a thread
        # blocked in recv() on it.
        with contextlib.suppress(Exception):
            raw = self._response.raw._fp.fp.raw
            sock = getattr(raw, "_sock", raw)
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.close()
        self._thread.join(2.0)


class _EventWatcher:
    """Puts the container's ``start``/``die`` engine events into the queue, reconnecting."""

    def __init__(
        self, api: Any, container_id: str, sink: queue.Queue[tuple[str, int, Any]]
    ) -> None:
        self._api = api
        self._id = container_id
        self._sink = sink
        self._stop = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._watch, name="dockprogress-events", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        filters = {"container": [self._id], "type": ["container"]}
        while not self._stop.is_set():
            try:
                self._stream = self._api.events(filters=filters, decode=True)
                if self._stop.is_set():
                    break
                for event in self._stream:
                    action = str(event.get("Action") or event.get("status") or "")
                    if not _put(self._sink, (_ENGINE_EVENT, -1, action), self._stop):
                        break
            except Exception:  # the engine went away: try again while following
                pass
            self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            if self._stream is not None:
                self._stream.close()
        close_ssh_stream(self._stream)  # docker-py's close() refuses ssh:// streams
        self._thread.join(2.0)


class _Follower:
    def __init__(
        self,
        container: str,
        *,
        milestones: MilestoneSet,
        progress_handler: ProgressHandler | None,
        profile: ProfileRef | None,
        stall_after: float | None,
        client: docker.DockerClient | None,
        task_id: str | None,
        cancel: threading.Event | None,
        tick_interval: float,
        reconnect_timeout: float,
        restart_grace: float,
        detail: Mapping[str, Any] | None,
        priority: int,
        engine: tuple[str | None, str | None] = (None, None),
        all_runs: bool = False,
    ) -> None:
        self.container = container
        self.engine = engine  # (host, context) when no client is given
        self.all_runs = all_runs
        self.milestones = milestones
        self.progress_handler = progress_handler
        self.profile_ref = profile
        self.stall_after = stall_after
        self.client = client
        self.task_id = task_id
        self.cancel = cancel
        self.tick_interval = tick_interval
        self.reconnect_timeout = reconnect_timeout
        self.restart_grace = restart_grace
        self.detail = dict(detail or {})
        self.priority = priority
        # Bounded: a container that logs faster than the display consumes slows its own
        # log stream down (the reader thread waits) instead of growing memory.
        self.queue: queue.Queue[tuple[str, int, Any]] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.cursor = LogCursor()
        self.stream: _Stream | None = None
        self.generation = 0
        #: Reconnections made after a broken or ended stream (for tests and ``detail``).
        self.reconnects = 0

    # --------------------------------------------------------------- engine calls

    def _inspect(self, api: Any) -> dict[str, Any]:
        with translate_errors(f"inspect container {self.container}"):
            info: dict[str, Any] = api.inspect_container(self.container)
        return info

    def _open(self, api: Any, container_id: str, since: str | None) -> None:
        self.generation += 1
        with translate_errors(f"read the logs of container {self.container}"):
            self.stream = _Stream(api, container_id, since, self.generation, self.queue)

    def _close_stream(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    # ------------------------------------------------------------------- the loop

    def run(self) -> Iterator[TaskEvent]:
        owns_client = self.client is None
        try:
            client = (
                self.client
                if self.client is not None
                else connect(host=self.engine[0], context=self.engine[1])
            )
            # While the engine is down the follower asks again every second: no socket of a
            # failed connect may be left behind (see dockprogress.docker.unixsock).
            close_failed_connects(client)
            api = client.api
            info = self._inspect(api)
        except EngineError as exc:
            # No engine, or no such container: the task ends in error like any other failure.
            failed = Task(
                self.task_id or f"logs:{self.container}",
                Operation.LOGS,
                Kind.COUNT,
                description=f"logs of {self.container}",
                priority=self.priority,
            ).fail(str(exc))
            if failed is not None:
                yield failed
            raise
        container_id = str(info["Id"])
        name = str(info.get("Name") or self.container).lstrip("/")
        tty = bool(info.get("Config", {}).get("Tty"))
        started_ns, _ = split_timestamp(str(info.get("State", {}).get("StartedAt", "")) + " ")
        profile, save_to = self._load_profile()
        detail = {"container": name, **self.detail}
        if profile is not None:
            detail["profile"] = profile.name
            if profile is self.milestones.prior:
                detail["prior"] = True
        tracker = LogProgress(
            self.milestones,
            task_id=self.task_id or f"logs:{name}",
            description=f"logs of {name}",
            profile=profile,
            progress_handler=self.progress_handler,
            stall_after=self.stall_after,
            detail=detail,
            priority=self.priority,
        )
        watcher = _EventWatcher(api, container_id, self.queue)
        try:
            start = started_ns / 1e9 if started_ns and started_ns > 0 else time.time()
            yield from tracker.start(start)
            self._open(api, container_id, None if self.all_runs else _run_since(info, api))
            yield from self._loop(api, container_id, tracker, tty)
        except KeyboardInterrupt:
            yield from tracker.cancel("cancelled by Ctrl-C")
            raise
        except DockProgressError as exc:
            yield from tracker.fail(str(exc))
            raise
        finally:
            self._close_stream()
            watcher.close()
            if owns_client:
                client.close()
        if tracker.run_record is not None and save_to is not None:
            with contextlib.suppress(OSError):  # a read-only cache only loses calibration
                record_run(save_to, tracker.run_record)
        if tracker.error is not None:
            raise tracker.error

    def _load_profile(self) -> tuple[Profile | None, str | os.PathLike[str] | None]:
        ref = self.profile_ref
        if ref is None:
            return None, None
        if isinstance(ref, Profile):
            return ref, None
        profile = load_profile(ref)
        if not profile.calibrated and self.milestones.prior is not None:
            # No local run yet: the shipped prior guides this run, which then starts the
            # local profile (the prior itself is never written there).
            return self.milestones.prior, ref
        return profile, ref

    def _loop(
        self, api: Any, container_id: str, tracker: LogProgress, tty: bool
    ) -> Iterator[TaskEvent]:
        decoder = LogDecoder(tty=tty)
        waiting_since: float | None = None  # stream closed, waiting for the engine/container
        wait_until: float | None = None  # give up waiting (restart grace / reconnect timeout)
        next_poll = 0.0
        drained = False
        while not tracker.ended:
            if self.cancel is not None and self.cancel.is_set():
                yield from tracker.cancel("cancelled")
                return
            try:
                kind, generation, payload = self.queue.get(timeout=self.tick_interval)
            except queue.Empty:
                kind, generation, payload = "", -1, None
            now = time.time()
            if kind == _DATA and self.stream is not None and generation == self.stream.generation:
                try:
                    lines = decoder.feed(payload)
                except StreamError:
                    lines, kind = [], _BROKEN
                for line in lines:
                    if self.cursor.accept(line):
                        drained = False  # a new line: the container may still be writing
                        yield from tracker.feed_line(line)
                    if tracker.ended:
                        return
                if kind != _BROKEN:
                    continue
            if kind in (_EOF, _BROKEN) and self.stream is not None:
                if generation != self.stream.generation:
                    continue  # the end of a stream already replaced
                if kind == _EOF:
                    with contextlib.suppress(StreamError):
                        for line in decoder.feed_eof():
                            if self.cursor.accept(line):
                                yield from tracker.feed_line(line)
                decoder = LogDecoder(tty=tty)
                self._close_stream()
                waiting_since, wait_until, next_poll = now, None, now
            if kind == _ENGINE_EVENT and payload in ("start", "restart"):
                next_poll = now
            yield from tracker.tick(now)
            if self.stream is not None or tracker.ended or now < next_poll:
                continue
            # The stream is closed: decide from the container's state what comes next.
            next_poll = now + 1.0
            try:
                info = self._inspect(api)
            except EngineError as exc:
                if "No such container" in str(exc) or "404" in str(exc):
                    yield from tracker.fail(f"container {self.container} was removed: {exc}")
                    return
                if wait_until is None:
                    wait_until = now + self.reconnect_timeout
                elif now >= wait_until:
                    yield from tracker.fail(
                        f"the engine did not answer for {self.reconnect_timeout:g} s: {exc}"
                    )
                    return
                continue
            state = info.get("State", {})
            if state.get("Running") and not state.get("Restarting"):
                since = self.cursor.resume()
                if since is None and not self.all_runs:
                    since = _run_since(info, api)
                self.reconnects += 1
                try:
                    self._open(api, container_id, since)
                except EngineError:
                    continue
                waiting_since, wait_until, drained = None, None, False
                continue
            if not drained:
                # Stopped: one more read to the end, so no line written before the stop is lost.
                drained = True
                self.reconnects += 1
                since = self.cursor.resume()
                if since is None and not self.all_runs:  # nothing seen yet: still this run
                    since = _run_since(info, api)
                try:
                    self._open(api, container_id, since)
                except EngineError:
                    drained = False
                continue
            policy = str(info.get("HostConfig", {}).get("RestartPolicy", {}).get("Name") or "")
            exit_code = int(state.get("ExitCode") or 0)
            if state.get("Restarting") or (
                policy in _RESTART_POLICIES and not (policy == "on-failure" and exit_code == 0)
            ):
                wait_until = None  # the engine will start it again: keep waiting
                continue
            if wait_until is None:
                wait_until = (waiting_since or now) + self.restart_grace
            if now < wait_until:
                continue
            finished_ns, _ = split_timestamp(str(state.get("FinishedAt", "")) + " ")
            at = finished_ns / 1e9 if finished_ns and finished_ns > 0 else now
            yield from tracker.container_exited(exit_code, at)
            return


#: A stopped container's last run is asked from this long before its ``StartedAt`` when the
#: end of the run before it is not known: its first lines precede ``StartedAt`` by a few
#: milliseconds, and a restart takes longer than this (385 ms measured on the test bed).
_EARLY_NS: Final = 100_000_000


def _ns(value: object) -> int | None:
    found, _ = split_timestamp(str(value or "") + " ")
    return found if found is not None and found > 0 else None


def _run_since(info: Mapping[str, Any], api: Any = None) -> str | None:
    """Where the latest run's logs begin: just after the run before it ended.

    Not ``StartedAt`` itself: the process may write its first lines before the engine
    records ``StartedAt``, so those lines carry earlier timestamps. A running container's
    ``FinishedAt`` is the end of its previous run (year 1 if it never had one: then the logs
    are read from the beginning). A stopped container's ``FinishedAt`` is the end of its
    latest run, so the end of the one before is the engine's last ``die`` event before
    ``StartedAt`` (asked with ``api``); when there is none (a first run, or the engine no
    longer remembers it), the logs are asked from :data:`_EARLY_NS` before ``StartedAt``.
    """
    state = info.get("State", {})
    started = _ns(state.get("StartedAt"))
    finished = _ns(state.get("FinishedAt"))
    if started is None:
        return None  # never started: nothing to skip
    if state.get("Running") or state.get("Restarting"):
        return format_since(finished + 1) if finished and 0 < finished < started else None
    # Stopped. Seen on both engines: right after a container exits, its inspect may still
    # carry the FinishedAt of an earlier run, so the engine's die events are asked first.
    previous_end = _last_die_before(api, info, started) if api is not None else None
    if previous_end is not None:
        return format_since(previous_end + 1)
    if finished and 0 < finished < started:
        return format_since(finished + 1)
    return format_since(max(started - _EARLY_NS, 0))


def _last_die_before(api: Any, info: Mapping[str, Any], started: int) -> int | None:
    """The time (ns) of the container's last ``die`` event before ``started``, if remembered."""
    created = _ns(info.get("Created")) or max(started - 3600 * 1_000_000_000, 0)
    last: int | None = None
    with contextlib.suppress(Exception):  # an engine that cannot say: fall back to a margin
        stream = api.events(
            since=format_since(created),
            until=format_since(started),
            filters={"container": [str(info["Id"])], "event": ["die"]},
            decode=True,
        )
        try:
            for event in stream:
                at = int(event.get("timeNano") or 0)
                if 0 < at < started:
                    last = at if last is None else max(last, at)
        finally:
            stream.close()
    return last
