"""The push adapter: image pushes through the engine, as task events.

:func:`iter_push` does the work; :func:`push` (callback form, and a seed-style
``MessageHandler`` through ``handler=``) and :func:`apush` (``async for``) wrap it.

Images are pushed one after the other (as ``docker push`` does), each its own task
``push:<image>``: ``POST /images/{name}/push`` with the credentials of the docker CLI's
config for that registry (docker-py reads them; for a local engine and registries the
config has no credentials for, :class:`~dockprogress.docker.lean.LeanEngine` sends the push
with the standard library, as pulls do, and docker-py is never imported), its stream read
to the end through
:class:`~dockprogress.core.jsonlines.JsonLinesDecoder` into
:class:`~dockprogress.core.push.PushTracker`. A refusal before the stream (no such image
locally) or an ``errorDetail`` inside it (authentication refused, registry unreachable) ends
the task in ``error`` with the engine's message; when every image has been tried the first
failure is raised (:class:`~dockprogress.errors.PushError`, or
:class:`~dockprogress.errors.EngineError` when the engine could not be reached).
``KeyboardInterrupt`` or :meth:`PushSession.cancel` (from any thread) ends the unfinished
tasks ``cancelled`` and hangs up, which stops the engine's push.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from typing import TYPE_CHECKING, Any, Protocol

from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.manifest import parse_reference
from dockprogress.core.push import PushTracker
from dockprogress.docker.endpoint import resolve
from dockprogress.docker.lean import EngineRefused, LeanEngine, needs_credentials
from dockprogress.errors import DockProgressError, PushError
from dockprogress.events import TaskEvent
from dockprogress.task import Clock

if TYPE_CHECKING:
    import docker

__all__ = ["PushSession", "apush", "iter_push", "push"]


class _Stream(Protocol):
    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class _Engine(Protocol):
    """What a push asks of the engine: :class:`LeanEngine`, or docker-py's client wrapped."""

    def push(self, name: str, tag: str) -> _Stream: ...
    def errors(self, action: str) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


class _ResponseStream:
    """A streamed ``requests`` response as a :class:`_Stream` (closed by hanging up)."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        chunks: Iterable[bytes] = self._response.iter_content(chunk_size=None)
        try:
            yield from chunks
        except (ValueError, AttributeError):
            # A read of a response another thread has just closed (cancel); anything else
            # of the kind is a bug and goes up.
            if not self._closed:
                raise

    def close(self) -> None:
        from dockprogress.docker.client import hang_up

        self._closed = True
        hang_up(self._response)


class _DockerPyEngine:
    """A ``docker.DockerClient`` as an :class:`_Engine` (ssh, tcp, TLS, credentials, or a
    client the caller gave)."""

    def __init__(self, client: docker.DockerClient, *, owned: bool) -> None:
        self.client = client
        self._owned = owned

    def push(self, name: str, tag: str) -> _Stream:
        """``POST /images/{name}/push`` as docker-py's ``APIClient.push`` sends it (the CLI
        config's credentials for the registry in ``X-Registry-Auth``), keeping the response:
        docker-py hides it in a generator that another thread cannot close."""
        import docker.auth
        import docker.errors

        api = self.client.api
        registry, _ = docker.auth.resolve_repository_name(name)
        headers = {}
        header = docker.auth.get_config_header(api, registry)
        if header:
            headers["X-Registry-Auth"] = header
        response = api._post_json(
            api._url("/images/{0}/push", name),
            None,
            headers=headers,
            stream=True,
            params={"tag": tag},
        )
        try:
            api._raise_for_status(response)
        except docker.errors.APIError as exc:
            text = exc.explanation or str(exc)
            if isinstance(text, bytes):
                text = text.decode("utf-8", "replace")
            raise EngineRefused(str(text), exc.status_code or 0) from exc
        return _ResponseStream(response)

    def errors(self, action: str) -> AbstractContextManager[None]:
        from dockprogress.docker.client import endpoint_of, translate_errors

        return translate_errors(action, endpoint_of(self.client))

    def close(self) -> None:
        if self._owned:
            self.client.close()


class PushSession:
    """Pushes of one or several images; iterate it once for their events."""

    def __init__(
        self,
        images: str | Sequence[str],
        *,
        client: docker.DockerClient | None = None,
        clock: Clock = time.time,
        priority: int = 0,
        host: str | None = None,
        context: str | None = None,
    ) -> None:
        names = [images] if isinstance(images, str) else list(images)
        if not names:
            raise DockProgressError("no image to push")
        self.refs = [parse_reference(name) for name in names]
        self.trackers = [
            PushTracker(name, clock=clock, priority=priority + i) for i, name in enumerate(names)
        ]
        self._engine: _Engine | None = (
            None if client is None else _DockerPyEngine(client, owned=False)
        )
        self._host, self._context = host, context
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: _Stream | None = None

    def _connect(self) -> _Engine:
        """The engine: the caller's client, else the lean client for a local socket when no
        registry needs credentials (no docker-py import), else a docker-py client."""
        if self._engine is None:
            endpoint = resolve(self._host, self._context)
            if endpoint.local and not needs_credentials(ref.registry for ref in self.refs):
                self._engine = LeanEngine.open(endpoint)
            else:
                from dockprogress.docker.client import connect

                self._engine = _DockerPyEngine(connect(endpoint=endpoint), owned=True)
        return self._engine

    def __iter__(self) -> Iterator[TaskEvent]:
        failures: list[BaseException] = []
        try:
            engine = self._connect()
            for ref, tracker in zip(self.refs, self.trackers, strict=True):
                if self._stop.is_set():
                    break
                try:
                    yield from self._push_one(engine, ref.name, ref.reference, tracker)
                except PushError as exc:
                    failures.append(exc)
        except KeyboardInterrupt:
            yield from self.cancel("cancelled by Ctrl-C")
            raise
        except DockProgressError as exc:
            with self._lock:
                ends = [t.fail(str(exc)) for t in self.trackers]
            yield from (e for e in ends if e is not None)
            raise
        finally:
            self._stop.set()
            self._hang_up()
            if self._engine is not None:
                self._engine.close()
        if failures:
            raise failures[0]

    def cancel(self, reason: str = "cancelled") -> list[TaskEvent]:
        """End every unfinished task ``cancelled`` and hang up (any thread)."""
        self._stop.set()
        with self._lock:
            events = [t.cancel(reason) for t in self.trackers]
        self._hang_up()
        return [e for e in events if e is not None]

    def _hang_up(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            with suppress(Exception):
                stream.close()

    def _push_one(
        self, engine: _Engine, name: str, tag: str, tracker: PushTracker
    ) -> Iterator[TaskEvent]:
        with self._lock:
            first = tracker.begin()
        if first is not None:
            yield first
        decoder = JsonLinesDecoder()
        try:
            with engine.errors(f"push {tracker.image}"):
                try:
                    stream = engine.push(name, tag)
                except EngineRefused as exc:
                    # Refused before any stream (no such image locally): the engine's words.
                    with self._lock:
                        event = tracker.fail(exc.message)
                    if event is not None:
                        yield event
                    raise PushError(exc.message, image=tracker.image) from exc
                with self._lock:
                    if self._stop.is_set():  # cancelled while the engine was answering
                        stream.close()
                        return
                    self._stream = stream
                for chunk in stream:
                    if self._stop.is_set():
                        return
                    with self._lock:
                        events = [tracker.feed(m) for m in decoder.decode(chunk)]
                    yield from (e for e in events if e is not None)
                    if tracker.ended:
                        break
                if self._stop.is_set():
                    return
                with self._lock:
                    events = [tracker.feed(m) for m in decoder.flush()]
                    events.append(tracker.feed_eof())
                yield from (e for e in events if e is not None)
        except DockProgressError as exc:
            if self._stop.is_set() and not isinstance(exc, PushError):
                return  # our own hang-up after a cancel
            with self._lock:
                event = tracker.fail(str(exc))
            if event is not None:
                yield event
            if isinstance(exc, PushError):
                raise
            raise PushError(str(exc), image=tracker.image) from exc
        finally:
            self._hang_up()  # also after the stream ended: the connection is not kept
        if tracker.error is not None:
            raise tracker.error


def iter_push(
    images: str | Sequence[str],
    *,
    client: docker.DockerClient | None = None,
    clock: Clock = time.time,
    priority: int = 0,
    host: str | None = None,
    context: str | None = None,
) -> Iterator[TaskEvent]:
    """Push ``images`` one after the other, yielding every task event.

    ``host``/``context`` choose the engine as ``-H``/``--context`` do. Raises
    :class:`PushError` (the engine's message) once every image has been tried.
    """
    yield from PushSession(
        images, client=client, clock=clock, priority=priority, host=host, context=context
    )


def push(
    images: str | Sequence[str],
    *,
    on_event: Callable[[TaskEvent], object] | None = None,
    handler: Any = None,
    **options: Any,
) -> list[TaskEvent]:
    """Push and call ``on_event`` for each event; return each image task's final event.

    ``handler`` is a seed-style ``MessageHandler`` receiving byte increments.
    """
    adapter = None
    if handler is not None:
        from dockprogress.handler import IncrementAdapter

        adapter = IncrementAdapter(handler)
    finals: dict[str, TaskEvent] = {}
    try:
        for event in iter_push(images, **options):
            if adapter is not None:
                adapter.send(event)
            if on_event is not None:
                on_event(event)
            if event.terminal:
                finals[event.task] = event
    finally:
        if adapter is not None:
            adapter.close()
    return list(finals.values())


def apush(images: str | Sequence[str], **options: Any) -> AsyncIterator[TaskEvent]:
    """``async for event in apush(...)``: :func:`iter_push` run in a worker thread."""
    from dockprogress._bridge import aiter_in_thread  # asyncio: for the async form only

    return aiter_in_thread(lambda: iter_push(images, **options))
