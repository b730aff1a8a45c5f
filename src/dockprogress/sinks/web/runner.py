"""The server's own tasks: trackers started through the HTTP API, each in a worker thread.

Every tracker adapter is a blocking generator of :class:`~dockprogress.events.TaskEvent`
(see :mod:`dockprogress._bridge`). :meth:`TaskRunner.start` runs one in a thread, publishes
each event into the hub, and keeps a cancel hook for it:

* cancelling sets the run's ``stop`` event (the factory receives it; adapters that block on
  the engine use it to abort their read), calls the adapter's own ``cancel`` hook when it has
  one, and closes the generator in its own thread, so the adapter's ``finally`` (killing an
  exec, closing a stream) runs;
* a task that the generator left without a terminal event gets one from the runner:
  ``cancelled`` after a cancel, ``error`` (with the exception's message) otherwise, so the
  page never shows a bar that will not move again as if it were alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from dockprogress.errors import UsageError
from dockprogress.events import State, TaskEvent
from dockprogress.sinks.base import Sink
from dockprogress.sinks.web.hub import EventHub

__all__ = ["EventFactory", "Run", "TaskRunner"]

#: Builds one operation's events for a :class:`Run` (its ``stop`` flag, its ``resources`` to
#: close at the end): an iterator of events, or an iterable with a thread-safe
#: ``cancel(reason)`` that may return the ``cancelled`` events.
EventFactory = Callable[["Run"], Iterable[TaskEvent]]

CANCEL_REASON = "cancelled from the dashboard"


class Run:
    """One started operation: its thread, stop flag, and the last event of each task."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.stop = threading.Event()
        self.first = threading.Event()
        self.finished = threading.Event()
        self.last: dict[str, TaskEvent] = {}
        self.first_task: str | None = None
        self.error: BaseException | None = None
        self.cancel_hooks: list[Callable[[str], object]] = []
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.cancelled = False
        self.resources: list[Any] = []  # closed when the run's thread ends (docker clients)

    @property
    def ended(self) -> bool:
        return self.cancelled or self.finished.is_set()


class TaskRunner:
    """Starts operations for the dashboard and cancels them on request."""

    def __init__(
        self,
        hub: EventHub,
        *,
        docker_client: Callable[[], Any] | None = None,
        sink: Sink | None = None,
        node: str | None = None,
    ) -> None:
        self.hub = hub
        # With a bus the events go out through it (every replica sees them, this one too).
        self.sink: Sink = sink if sink is not None else hub
        self.node = node
        self._docker_client = docker_client
        self._lock = threading.Lock()
        self._runs_by_task: dict[str, Run] = {}
        self._runs: list[Run] = []

    # ------------------------------------------------------------------ generic

    def start(self, label: str, factory: EventFactory) -> Run:
        """Run ``factory(stop)`` in a worker thread, publishing each event. Returns at once."""
        run = Run(label)
        thread = threading.Thread(
            target=self._work, args=(run, factory), name=f"dockprogress-{label}", daemon=True
        )
        run.thread = thread
        with self._lock:
            self._runs = [r for r in self._runs if not r.finished.is_set()]
            self._runs.append(run)
        thread.start()
        return run

    async def start_and_wait(self, label: str, factory: EventFactory, timeout: float = 30.0) -> str:
        """:meth:`start`, then wait for the first event; return its task id.

        Raises :class:`UsageError` when the operation failed before saying anything (its
        message is the adapter's, e.g. an engine that cannot be reached).
        """
        run = self.start(label, factory)
        await asyncio.to_thread(_wait_either, run.first, run.finished, timeout)
        if run.first_task is not None:
            return run.first_task
        if run.error is not None:
            raise UsageError(f"{label}: {run.error}")
        raise UsageError(f"{label}: no event within {timeout:.0f} s")

    def cancel(self, task_id: str) -> Literal["unknown", "ended", "cancelling"]:
        """Ask the run that owns ``task_id`` to stop; its open tasks end ``cancelled`` now."""
        with self._lock:
            run = self._runs_by_task.get(task_id)
        if run is None:
            return "unknown"
        last = run.last.get(task_id)
        if run.cancelled or run.finished.is_set() or (last is not None and last.terminal):
            return "ended"
        self._cancel_run(run, CANCEL_REASON)
        return "cancelling"

    def cancel_all(self, reason: str = "the dashboard server stopped") -> None:
        """Cancel every run still going (without waiting for their threads)."""
        with self._lock:
            runs = [r for r in self._runs if not r.finished.is_set()]
        for run in runs:
            self._cancel_run(run, reason)

    # ------------------------------------------------------------ operations

    async def start_pull(self, image: str, *, platform: str | None = None) -> str:
        """Start pulling ``image``; return the task id once the first event is out."""
        from dockprogress.docker.pull import PullSession

        def factory(run: Run) -> Iterable[TaskEvent]:
            return PullSession(image, platform=platform, client=self._client(run))

        return await self.start_and_wait(f"pull {image}", factory)

    async def start_exec(self, container: str, cmd: Sequence[str], *, bar: str | None) -> str:
        """Start ``cmd`` in ``container`` under a TTY; return the task id.

        Cancelling sets the adapter's ``cancel`` event: it kills the command in the container.
        """
        from dockprogress.docker.exec import iter_exec

        def factory(run: Run) -> Iterable[TaskEvent]:
            return iter_exec(
                container, list(cmd), client=self._client(run), bar=bar, cancel=run.stop
            )

        return await self.start_and_wait(f"exec {container}", factory)

    async def start_logs(
        self,
        container: str,
        *,
        milestones_path: str | None = None,
        milestones: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """Start following ``container``'s logs against milestones; return the task id.

        ``milestones_path`` is a TOML milestone file on the server's machine; ``milestones``
        the same tables given inline. A bad set raises ``MilestoneConfigError`` (HTTP 400).
        """
        from dockprogress.core.milestones import MilestoneSet, load_milestones
        from dockprogress.docker.logs import iter_follow

        if milestones_path is not None:
            loaded = load_milestones(milestones_path)
        else:
            loaded = MilestoneSet(milestones or ())

        def factory(run: Run) -> Iterable[TaskEvent]:
            return iter_follow(
                container, milestones=loaded, client=self._client(run), cancel=run.stop
            )

        return await self.start_and_wait(f"logs {container}", factory)

    async def start_build(
        self,
        path: str,
        *,
        tags: Sequence[str] = (),
        dockerfile: str | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        network: str | None = None,
        platform: str | None = None,
        no_cache: bool = False,
        pull: bool = False,
        builder: str = "auto",
    ) -> str:
        """Start building the context ``path`` (on the server's machine); return the task id.

        The options are :func:`~dockprogress.docker.build.iter_build`'s. A context or
        Dockerfile that cannot be read, an unknown target or builder raise ``UsageError``
        (HTTP 400) before anything starts. Cancelling stops the build on the engine: the
        classic builder's connection is shut down (the engine then stops the step's
        container), buildx gets ``SIGINT`` (it cancels its BuildKit session's solve).
        """
        from dockprogress.docker.build import BuildSession

        session = BuildSession(
            path,
            tags=tags,
            dockerfile=dockerfile,
            build_args=build_args,
            target=target,
            network=network,
            platform=platform,
            no_cache=no_cache,
            pull=pull,
            builder=builder,
        )
        label = f"build {tags[0] if tags else path}"
        return await self.start_and_wait(label, lambda run: session)

    async def start_push(self, images: str | Sequence[str]) -> str:
        """Start pushing ``images`` one after the other; return the first one's task id.

        Cancelling shuts the push stream's connection down, which makes the engine stop
        sending layers to the registry.
        """
        from dockprogress.docker.push import PushSession

        names = [images] if isinstance(images, str) else list(images)
        label = f"push {' '.join(names)}"

        def factory(run: Run) -> Iterable[TaskEvent]:
            return PushSession(names, client=self._client(run))

        return await self.start_and_wait(label, factory)

    # ------------------------------------------------------------- internals

    def _client(self, run: Run) -> Any:
        """A docker client for ``run``, closed when its thread ends."""
        if self._docker_client is not None:
            client = self._docker_client()
        else:
            from dockprogress.docker.client import connect

            client = connect()
        run.resources.append(client)
        return client

    def _cancel_run(self, run: Run, reason: str) -> None:
        """Stop ``run``: its adapter's hooks, then a ``cancelled`` event for each open task.

        The worker may be blocked inside the adapter (a read from the engine) where it cannot
        be interrupted from here, so the runner does not wait for it: the adapter's hook does
        the real stopping (killing an exec, closing a stream), the tasks end now, and anything
        the worker yields afterwards is dropped.
        """
        with run.lock:
            if run.cancelled:
                return
            run.cancelled = True
        run.stop.set()
        for hook in list(run.cancel_hooks):
            try:
                ended = hook(reason)
            except Exception as exc:  # best effort: the tasks still end below
                run.error = run.error or exc
                continue
            if isinstance(ended, list):
                for event in ended:
                    if isinstance(event, TaskEvent):
                        self._publish(run, event, forced=True)
        self._end_open_tasks(run, State.CANCELLED, reason)

    def _work(self, run: Run, factory: EventFactory) -> None:
        iterator: Iterator[TaskEvent] | None = None
        try:
            source = factory(run)
            hook = getattr(source, "cancel", None)
            if callable(hook):
                run.cancel_hooks.append(hook)
            iterator = iter(source)
            # Drained to its end even after a cancel (events then dropped), so the adapter's
            # own cancel path runs in its thread: that is where an exec gets killed.
            for event in iterator:
                self._publish(run, event)
        except Exception as exc:
            run.error = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    run.error = run.error or exc
            for resource in run.resources:
                with contextlib.suppress(Exception):
                    resource.close()
            if not run.cancelled:
                message = str(run.error) if run.error else "the tracker stopped without an end"
                self._end_open_tasks(run, State.ERROR, message)
            run.finished.set()
            run.first.set()

    def _publish(self, run: Run, event: TaskEvent, *, forced: bool = False) -> bool:
        """Publish one of ``run``'s events; ``False`` once the run is cancelled."""
        with run.lock:
            if run.cancelled and not forced:
                return False
            previous = run.last.get(event.task)
            if previous is not None and previous.terminal:
                return True  # one terminal event per task, whoever sends it first
            if previous is None:
                with self._lock:
                    self._runs_by_task[event.task] = run
                self.hub.mark_cancellable(event.task, self.node)
            run.last[event.task] = event
            self.sink.send(event)
            if run.first_task is None:
                run.first_task = event.task
                run.first.set()
        return True

    def _end_open_tasks(self, run: Run, state: State, message: str) -> None:
        for event in list(run.last.values()):
            if not event.terminal:
                ended = dataclasses.replace(
                    event, ts=time.time(), state=state, error=message, speed=None, eta=None
                )
                self._publish(run, ended, forced=True)


def _wait_either(first: threading.Event, second: threading.Event, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (first.is_set() or second.is_set()) and time.monotonic() < deadline:
        first.wait(0.05)
