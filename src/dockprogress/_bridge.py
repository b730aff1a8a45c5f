"""Sync, callback and asyncio forms over one blocking event iterator.

Every tracker's adapter is written once, as a blocking generator of events (it reads from the
engine with docker-py, which is blocking). The other two forms are thin wrappers:

* callback form: :func:`drive` iterates and calls the callback for each event;
* asyncio form: :func:`aiter_in_thread` runs the generator in a worker thread and hands the
  events to the event loop through a bounded queue; leaving the ``async for`` early (or
  cancelling the consuming task) asks the worker to stop and closes the generator in its own
  thread, so the adapter's ``finally`` blocks (killing an exec, closing a stream) still run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

__all__ = ["aiter_in_thread", "drive"]

T = TypeVar("T")

_DONE = object()


def drive(events: Iterator[T], callback: Callable[[T], object] | None) -> T | None:
    """Consume ``events``, calling ``callback`` for each; return the last one (or ``None``)."""
    last: T | None = None
    for event in events:
        if callback is not None:
            callback(event)
        last = event
    return last


async def aiter_in_thread(
    factory: Callable[[], Iterator[T]], *, max_queue: int = 1024
) -> AsyncIterator[T]:
    """Iterate ``factory()`` in a worker thread, yielding its items in the event loop.

    Exceptions raised by the iterator are re-raised here, in the consumer. The queue is
    bounded: a slow consumer slows the worker down rather than growing memory.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(max_queue)
    stop = threading.Event()

    def put(item: object) -> None:
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not stop.is_set():
            try:
                future.result(timeout=0.1)
                return
            except TimeoutError:
                continue
        future.cancel()

    def work() -> None:
        iterator = factory()
        try:
            for item in iterator:
                if stop.is_set():
                    break
                put(item)
            else:
                put(_DONE)
        except BaseException as exc:  # handed to the consumer, re-raised there
            put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="dockprogress-aiter", daemon=True)
    worker.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.to_thread(worker.join, 10.0)


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
