"""The push adapter: image pushes through the engine, as task events.

:func:`iter_push` does the work; :func:`push` (callback form, and a seed-style
``MessageHandler`` through ``handler=``) and :func:`apush` (``async for``) wrap it.

Images are pushed one after the other (as ``docker push`` does), each its own task
``push:<image>``: ``POST /images/{name}/push`` with the credentials of the docker CLI's
config for that registry (docker-py reads them), its stream read to the end through
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
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import docker
import docker.auth

from dockprogress._bridge import aiter_in_thread
from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.manifest import parse_reference
from dockprogress.core.push import PushTracker
from dockprogress.docker.client import connect, hang_up, translate_errors
from dockprogress.errors import DockProgressError, PushError
from dockprogress.events import TaskEvent
from dockprogress.task import Clock

__all__ = ["PushSession", "apush", "iter_push", "push"]


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
        self._client = client
        self._host, self._context = host, context
        self._own_client = client is None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None

    def __iter__(self) -> Iterator[TaskEvent]:
        failures: list[BaseException] = []
        try:
            if self._client is None:
                self._client = connect(host=self._host, context=self._context)
            for ref, tracker in zip(self.refs, self.trackers, strict=True):
                if self._stop.is_set():
                    break
                try:
                    yield from self._push_one(self._client, ref.name, ref.reference, tracker)
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
            if self._own_client and self._client is not None:
                self._client.close()
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
            response, self._response = self._response, None
        hang_up(response)

    @staticmethod
    def _post_push(client: docker.DockerClient, name: str, tag: str) -> Any:
        """``POST /images/{name}/push`` as docker-py's ``APIClient.push`` sends it (the CLI
        config's credentials for the registry in ``X-Registry-Auth``), keeping the response:
        docker-py hides it in a generator that another thread cannot close."""
        api = client.api
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
        api._raise_for_status(response)
        return response

    def _push_one(
        self, client: docker.DockerClient, name: str, tag: str, tracker: PushTracker
    ) -> Iterator[TaskEvent]:
        with self._lock:
            first = tracker.begin()
        if first is not None:
            yield first
        decoder = JsonLinesDecoder()
        try:
            with translate_errors(f"push {tracker.image}"):
                try:
                    response = self._post_push(client, name, tag)
                except docker.errors.APIError as exc:
                    # Refused before any stream (no such image locally): the engine's words.
                    text = exc.explanation or str(exc)
                    if isinstance(text, bytes):
                        text = text.decode("utf-8", "replace")
                    with self._lock:
                        event = tracker.fail(str(text))
                    if event is not None:
                        yield event
                    raise PushError(str(text), image=tracker.image) from exc
                with self._lock:
                    if self._stop.is_set():  # cancelled while the engine was answering
                        hang_up(response)
                        return
                    self._response = response
                for chunk in response.iter_content(chunk_size=None):
                    if self._stop.is_set():
                        return
                    with self._lock:
                        events = [tracker.feed(m) for m in decoder.decode(chunk)]
                    yield from (e for e in events if e is not None)
                    if tracker.ended:
                        break
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
        except (ValueError, AttributeError):
            # A read of a response another thread has just closed (cancel); anything else
            # of the kind is a bug and goes up.
            if self._stop.is_set():
                return
            raise
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
    return aiter_in_thread(lambda: iter_push(images, **options))
