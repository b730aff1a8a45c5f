"""The pull adapter: image pulls through the engine, as task events.

One blocking generator, :func:`iter_pull`, does the work; :func:`pull` (callback form, and
the seed's ``MessageHandler`` through ``handler=``) and :func:`apull` (``async for``) wrap it.

The engine is a ``docker.DockerClient`` when the caller gives one, or when the endpoint is
not a local unix socket (ssh, tcp, TLS) or the user's docker config holds credentials for a
registry pulled from (docker-py sends them with the pull). Otherwise it is
:class:`~dockprogress.docker.lean.LeanEngine`, the standard library on the socket: a pull
of an image already up to date then starts and ends within a few times ``docker pull``'s
wall time, docker-py, requests, urllib3 and paramiko never imported. The lean client sends
each image's pull request right away, so the engine works on it while ``/info`` and the
registry are asked.

For each image, in its own worker thread:

1. its manifest is fetched from the registry (:mod:`dockprogress.docker.registry`) for the
   platform (``platform=`` or the engine's os/arch), so the task's first ``running`` event
   carries the exact total; if the registry cannot be asked, the task goes on with a growing
   total (``detail["exact_total"] = False``, ``detail["manifest_error"]`` says why);
2. the engine is asked to pull (``POST /images/create``) and its stream is read to the end
   (an undrained stream may stop the pull), bytes through
   :class:`~dockprogress.core.jsonlines.JsonLinesDecoder` into
   :class:`~dockprogress.core.pull.PullTracker`.

On an engine with the containerd image store (asked once with ``GET /info``), extraction is
estimated from the unpack rate learned on this engine's earlier pulls (see
:mod:`dockprogress.core.unpack`; stored by :func:`dockprogress.profiles.record_unpack`, keyed
by the engine's ID): while the engine is silent the trackers are ticked a few times a
second, so the bar keeps moving with an ETA, and each finished pull refines the rate.

The generator yields every event of every image's task (``pull:<image>``) and, with several
images, of an aggregate task ``pull:*`` (bytes summed; percent weighed by each image's
total). When all tasks have ended it raises the first failure: a
:class:`~dockprogress.errors.PullError` carrying the engine's message (after the task's
``error`` event was yielded), or an :class:`~dockprogress.errors.EngineError` when the
engine itself could not be reached. ``KeyboardInterrupt`` while waiting yields a
``cancelled`` event for each unfinished task, then re-raises; closing the generator early
stops the workers (the engine abandons a pull whose client hung up).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.manifest import ImageRef, Platform, parse_platform, parse_reference
from dockprogress.core.pull import PullTracker
from dockprogress.docker import headstart
from dockprogress.docker.endpoint import resolve
from dockprogress.docker.lean import EngineRefused, LeanEngine, image_store_of, needs_credentials
from dockprogress.docker.registry import fetch_manifest
from dockprogress.errors import DockProgressError, PullError, RegistryError
from dockprogress.events import Kind, Operation, State, TaskEvent
from dockprogress.task import Clock, Task

if TYPE_CHECKING:
    import docker

__all__ = ["AGGREGATE_TASK", "PullSession", "apull", "iter_pull", "pull"]

AGGREGATE_TASK = "pull:*"

_EVENT, _FAILURE, _END, _STOPPED, _TICK = "event", "failure", "end", "stopped", "tick"


def image_store(client: docker.DockerClient) -> tuple[bool, str]:
    """Whether the engine keeps images in containerd (``driver-type io.containerd…``), and
    the engine's ID (what learned unpack rates are kept under)."""
    from dockprogress.docker.client import translate_errors

    with translate_errors("ask the Docker engine for its image store"):
        info = client.info()
    return image_store_of(info)


class _Engine(Protocol):
    """What a pull asks of the engine: :class:`LeanEngine`, or docker-py's client wrapped."""

    def platform(self) -> tuple[str, str]: ...

    def image_store(self) -> tuple[bool, str]: ...

    def pull(self, name: str, tag: str, platform: str | None = None) -> Iterable[bytes]: ...

    def prepare_pull(
        self, name: str, tag: str, platform: str | None = None
    ) -> Callable[[], Iterable[bytes]]: ...

    def errors(self, action: str) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


class _DockerPyEngine:
    """A ``docker.DockerClient`` as an :class:`_Engine` (ssh, tcp, TLS, credentials, or a
    client the caller gave)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def platform(self) -> tuple[str, str]:
        from dockprogress.docker.client import engine_platform

        return engine_platform(self.client)

    def image_store(self) -> tuple[bool, str]:
        return image_store(self.client)

    def pull(self, name: str, tag: str, platform: str | None = None) -> Iterable[bytes]:
        import docker.errors

        try:
            chunks: Iterable[bytes] = self.client.api.pull(
                name, tag=tag, stream=True, decode=False, platform=platform
            )
        except docker.errors.APIError as exc:
            raise EngineRefused(_explanation(exc), exc.status_code or 0) from exc
        return chunks

    def prepare_pull(
        self, name: str, tag: str, platform: str | None = None
    ) -> Callable[[], Iterable[bytes]]:
        return lambda: self.pull(name, tag, platform)  # docker-py sends and reads at once

    def errors(self, action: str) -> AbstractContextManager[None]:
        from dockprogress.docker.client import endpoint_of, translate_errors

        return translate_errors(action, endpoint_of(self.client))

    def close(self) -> None:
        self.client.close()


class _Job:
    """One image: its reference, tracker (once the manifest is known) and lock."""

    __slots__ = ("index", "lock", "ref", "tracker")

    def __init__(self, index: int, ref: ImageRef) -> None:
        self.index = index
        self.ref = ref
        self.lock = threading.Lock()
        self.tracker: PullTracker | None = None


class PullSession:
    """Pulls of one or several images; iterate it once for their events.

    ``cancel()`` returns the ``cancelled`` events of the tasks that had not ended and stops
    the workers. It may be called from the thread that iterates (e.g. in a
    ``KeyboardInterrupt`` handler) or from another one (the dashboard's cancel button): the
    iteration then ends within a fraction of a second, having yielded no further events.
    """

    def __init__(
        self,
        images: str | Sequence[str],
        *,
        platform: str | None = None,
        client: docker.DockerClient | None = None,
        clock: Clock = time.time,
        registry_timeout: float = 10.0,
        ask_registry: bool = True,
        priority: int = 0,
        host: str | None = None,
        context: str | None = None,
    ) -> None:
        names = [images] if isinstance(images, str) else list(images)
        if not names:
            raise DockProgressError("no image to pull")
        self.jobs = [_Job(i, parse_reference(name)) for i, name in enumerate(names)]
        self._images = tuple(names)
        self.platform = parse_platform(platform) if platform else None
        self._platform_arg = str(self.platform) if self.platform else None
        self._client = client
        self._engine: _Engine | None = None
        self._pulls: dict[int, Callable[[], Iterable[bytes]]] = {}
        self._own_client = client is None
        self._host = host
        self._context = context
        self._clock = clock
        self._registry_timeout = registry_timeout
        self._ask_registry = ask_registry
        self._priority = priority
        self._stop = threading.Event()
        self._queue: queue.Queue[tuple[str, _Job | None, Any]] = queue.Queue(maxsize=4096)
        self._aggregate: Task | None = None
        self._containerd = False
        self._engine_key = ""
        self._last: dict[int, TaskEvent] = {}
        if len(self.jobs) > 1:
            self._aggregate = Task(
                AGGREGATE_TASK,
                Operation.PULL,
                Kind.DOWNLOAD,
                description=f"pulling {len(self.jobs)} images",
                priority=priority - 1,
                clock=clock,
            )

    # ------------------------------------------------------------------ driving

    def __iter__(self) -> Iterator[TaskEvent]:
        failures: list[BaseException] = []
        try:
            engine = self._connect()
            # The lean client sends the pulls now: the engine works on them meanwhile.
            for each in self.jobs:
                if each.index not in self._pulls:
                    self._pulls[each.index] = engine.prepare_pull(
                        each.ref.name, each.ref.reference, self._platform_arg
                    )
            platform = self.platform or Platform(*engine.platform())
            self._containerd, self._engine_key = engine.image_store()
            workers = [
                threading.Thread(
                    target=self._work,
                    args=(job, engine, platform),
                    name=f"dockprogress-pull-{job.index}",
                    daemon=True,
                )
                for job in self.jobs
            ]
            for worker in workers:
                worker.start()
            running = len(workers)
            while running:
                kind, job, payload = self._get()
                if kind == _EVENT:
                    assert job is not None
                    yield payload
                    summary = self._summarise(job, payload)
                    if summary is not None:
                        yield summary
                elif kind == _FAILURE:
                    failures.append(payload)
                elif kind == _STOPPED:
                    break  # cancelled from another thread: the workers no longer report
                elif kind == _TICK:
                    for job, event in self._tick():
                        yield event
                        summary = self._summarise(job, event)
                        if summary is not None:
                            yield summary
                else:
                    running -= 1
        except KeyboardInterrupt:
            yield from self.cancel("cancelled by Ctrl-C")
            raise
        except DockProgressError as exc:
            # The engine could not be reached at all: every task ends in error.
            yield from self._fail_all(str(exc))
            raise
        finally:
            self._stop.set()
            if self._own_client and self._engine is not None:
                self._engine.close()  # ends the workers' streams too
        if failures:
            raise failures[0]

    def cancel(self, reason: str = "cancelled") -> list[TaskEvent]:
        """End every unfinished task as ``cancelled``; stop the workers."""
        self._stop.set()
        return self._end_all(State.CANCELLED, reason)

    # ------------------------------------------------------------------ workers

    def _connect(self) -> _Engine:
        """The engine: the caller's client, else the lean client for a local socket when the
        pull needs no credentials (no docker-py import), else a docker-py client."""
        if self._engine is None:
            if self._client is not None:
                self._engine = _DockerPyEngine(self._client)
            else:
                endpoint = resolve(self._host, self._context)
                started = headstart.take(self._images, endpoint, self._platform_arg)
                if started is not None:  # the command line sent the pulls already
                    self._engine = started.engine
                    self._pulls.update(enumerate(started.answers))
                elif endpoint.local and not needs_credentials(j.ref.registry for j in self.jobs):
                    self._engine = LeanEngine.open(endpoint)
                else:
                    from dockprogress.docker.client import connect

                    self._client = connect(endpoint=endpoint)
                    self._engine = _DockerPyEngine(self._client)
        return self._engine

    def _get(self) -> tuple[str, _Job | None, Any]:
        try:
            return self._queue.get(timeout=0.25)
        except queue.Empty:
            # After cancel() the workers stop reporting (their ends included), so an
            # empty queue then means there is nothing more to wait for.
            return (_STOPPED, None, None) if self._stop.is_set() else (_TICK, None, None)

    def _tick(self) -> list[tuple[_Job, TaskEvent]]:
        """The engine is silent: move estimated extraction along (containerd store)."""
        out: list[tuple[_Job, TaskEvent]] = []
        if not self._containerd:
            return out
        for job in self.jobs:
            with job.lock:
                event = job.tracker.tick() if job.tracker is not None else None
            if event is not None:
                out.append((job, event))
        return out

    def _learn(self, job: _Job, tracker: PullTracker) -> None:
        """A finished pull on the containerd store refines this engine's unpack rate."""
        sample = tracker.unpack_sample
        if sample is not None and self._engine_key:
            from dockprogress.profiles import record_unpack

            record_unpack(self._engine_key, job.ref.name, *sample)

    def _put(self, kind: str, job: _Job, payload: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put((kind, job, payload), timeout=0.25)
                return
            except queue.Full:
                continue

    def _new_tracker(
        self, job: _Job, sizes: dict[str, int] | None, manifest_error: str | None
    ) -> PullTracker:
        rate = None
        if self._containerd:  # (the profiles module loads only where it is needed)
            from dockprogress.profiles import load_unpack_rate

            rate = load_unpack_rate(self._engine_key, job.ref.name)
        tracker = PullTracker(
            job.ref.canonical,
            layer_sizes=sizes,
            clock=self._clock,
            extra_detail={"manifest_error": manifest_error} if manifest_error else None,
            priority=self._priority,
            containerd_store=self._containerd,
            unpack_rate=rate,
        )
        job.tracker = tracker
        return tracker

    def _work(self, job: _Job, engine: _Engine, platform: Platform) -> None:
        try:
            for event in self._pull_one(job, engine, platform):
                self._put(_EVENT, job, event)
        except BaseException as exc:  # handed to the consuming thread
            self._put(_FAILURE, job, exc)
        finally:
            self._put(_END, job, None)

    def _pull_one(self, job: _Job, engine: _Engine, platform: Platform) -> Iterator[TaskEvent]:
        ref = job.ref
        sizes: dict[str, int] | None = None
        manifest_error: str | None = None
        if self._ask_registry:
            try:
                sizes = fetch_manifest(ref, platform, timeout=self._registry_timeout).sizes
            except RegistryError as exc:
                manifest_error = str(exc)
        with job.lock:
            if job.tracker is not None:  # cancelled before we got here
                return
            tracker = self._new_tracker(job, sizes, manifest_error)
            first = tracker.begin()
        if first is not None:
            yield first
        decoder = JsonLinesDecoder()
        response: Any = None
        try:
            with engine.errors(f"pull {ref.canonical}"):
                try:
                    chunks = self._pulls.pop(job.index)()
                except EngineRefused as exc:
                    # The engine refused before streaming (unknown tag, unreachable registry):
                    # its explanation is the error message.
                    message = exc.message
                    with job.lock:
                        event = tracker.fail(message)
                    if event is not None:
                        yield event
                    raise PullError(message, image=ref.canonical) from exc
                response = chunks
                for chunk in chunks:
                    if self._stop.is_set():
                        return
                    messages = decoder.decode(chunk)
                    for event in self._feed(job, tracker, messages):
                        yield event
                    if tracker.error is not None:
                        break
                if tracker.error is None:
                    yield from self._feed(job, tracker, decoder.flush())
        except DockProgressError as exc:
            with job.lock:
                event = tracker.fail(str(exc))
            if event is not None:
                yield event
            raise
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
        with job.lock:
            end = tracker.feed_eof() if tracker.error is None else None
        if end is not None:
            if end.state is State.DONE:
                self._learn(job, tracker)
            yield end
        if tracker.error is not None:
            raise tracker.error

    @staticmethod
    def _feed(job: _Job, tracker: PullTracker, messages: list[dict[str, Any]]) -> list[TaskEvent]:
        out: list[TaskEvent] = []
        with job.lock:
            for message in messages:
                event = tracker.feed(message)
                if event is not None:
                    out.append(event)
                if tracker.error is not None:
                    break
        return out

    # ---------------------------------------------------------------- aggregate

    def _summarise(self, job: _Job, event: TaskEvent) -> TaskEvent | None:
        task = self._aggregate
        if task is None:
            return None
        self._last[job.index] = event
        if len(self._last) < len(self.jobs):
            return None  # a running aggregate needs every image's total first
        lasts = list(self._last.values())
        current = sum(e.current for e in lasts)
        totals = [e.total for e in lasts]
        total = None if any(t is None for t in totals) else sum(t or 0 for t in totals)
        percent = _weighted_percent(lasts)
        states = {e.state for e in lasts}
        if all(s.terminal for s in states):
            if State.ERROR in states:
                failed = [e for e in lasts if e.state is State.ERROR]
                return task.fail("; ".join(f"{e.task}: {e.error}" for e in failed))
            if State.CANCELLED in states:
                return task.cancel("cancelled")
            return task.finish(description=f"pulled {len(lasts)} images")
        done = sum(1 for e in lasts if e.state is State.DONE)
        return task.update(
            current=current,
            total=total,
            percent=percent,
            description=f"pulling {len(lasts)} images ({done} done)",
            phase="downloading",
        )

    def _fail_all(self, message: str) -> list[TaskEvent]:
        return self._end_all(State.ERROR, message)

    def _end_all(self, state: State, message: str) -> list[TaskEvent]:
        """End every unfinished task (each image's and the aggregate) as ``state``."""
        events: list[TaskEvent] = []
        for job in self.jobs:
            with job.lock:
                tracker = job.tracker or self._new_tracker(job, None, None)
                event = (
                    tracker.cancel(message) if state is State.CANCELLED else tracker.fail(message)
                )
            if event is not None:
                events.append(event)
        if self._aggregate is not None:
            aggregate = self._aggregate
            event = (
                aggregate.cancel(message) if state is State.CANCELLED else aggregate.fail(message)
            )
            if event is not None:
                events.append(event)
        return events


def _weighted_percent(events: list[TaskEvent]) -> float | None:
    """Percent of several pulls: weighed by bytes to download when every total is known."""
    percents = [e.percent or 0.0 for e in events]
    totals = [e.total for e in events]
    if all(t is not None for t in totals):
        weight = sum(t or 0.0 for t in totals)
        if weight > 0:
            return sum(p * (t or 0.0) for p, t in zip(percents, totals, strict=True)) / weight
    return sum(percents) / len(percents) if percents else None


def _explanation(exc: docker.errors.APIError) -> str:
    text = exc.explanation or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text)


def iter_pull(
    images: str | Sequence[str],
    *,
    platform: str | None = None,
    client: docker.DockerClient | None = None,
    clock: Clock = time.time,
    registry_timeout: float = 10.0,
    ask_registry: bool = True,
    priority: int = 0,
    host: str | None = None,
    context: str | None = None,
) -> Iterator[TaskEvent]:
    """Pull ``images`` (one or several, concurrently), yielding every task event.

    The engine is ``client``, else the one ``host`` (``-H``) or ``context`` (``--context``)
    selects, else the docker CLI's choice from the environment (see
    :mod:`dockprogress.docker.endpoint`); the manifest is asked from this machine.
    Raises :class:`PullError` (engine's message) or :class:`EngineError` once all tasks ended.
    """
    session = PullSession(
        images,
        platform=platform,
        client=client,
        clock=clock,
        registry_timeout=registry_timeout,
        ask_registry=ask_registry,
        priority=priority,
        host=host,
        context=context,
    )
    yield from session


def pull(
    images: str | Sequence[str],
    *,
    on_event: Callable[[TaskEvent], object] | None = None,
    handler: Any = None,
    platform: str | None = None,
    client: docker.DockerClient | None = None,
    **options: Any,
) -> list[TaskEvent]:
    """Pull and call ``on_event`` for each event; return each image task's final event.

    ``handler`` is a seed-style ``MessageHandler``: it receives byte increments through
    ``increment_download_progress`` (see :mod:`dockprogress.handler`).
    """
    adapter = None
    if handler is not None:
        from dockprogress.handler import IncrementAdapter

        adapter = IncrementAdapter(handler)
    finals: dict[str, TaskEvent] = {}
    try:
        for event in iter_pull(images, platform=platform, client=client, **options):
            if adapter is not None:
                adapter.send(event)
            if on_event is not None:
                on_event(event)
            if event.terminal and event.task != AGGREGATE_TASK:
                finals[event.task] = event
    finally:
        if adapter is not None:
            adapter.close()
    return list(finals.values())


def apull(images: str | Sequence[str], **options: Any) -> AsyncIterator[TaskEvent]:
    """``async for event in apull(...)``: :func:`iter_pull` run in a worker thread."""
    from dockprogress._bridge import aiter_in_thread  # asyncio: for the async form only

    return aiter_in_thread(lambda: iter_pull(images, **options))
