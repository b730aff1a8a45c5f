"""The seed's ``MessageHandler``, in Python, and the adapter that feeds it increments.

An application that already shows progress bars the way the seed's Go application does
(``handler.IncrementProgress(...)``, ``progressbar.Add(x)``) implements
:class:`MessageHandler` and plugs an :class:`IncrementAdapter` in as a sink::

    adapter = IncrementAdapter(my_handler)
    for event in iter_pull("127.0.0.1:5000/dp/layers:1"):
        adapter.send(event)

The handler receives **increments** (work done since the previous call), never absolute
values. The adapter guarantees, for every task:

* each increment is an ``int`` greater than zero: 0 is never sent, so it can never be
  mistaken for a signal (the seed's application once let 0 mean "reset");
* the increments sent since the task's last :meth:`~MessageHandler.reset_progress` sum
  exactly to ``floor(current)`` of the task's latest event, hence to its final ``current``
  when it ends (``current == total`` on ``done`` whenever the total is known);
* increments are differences of the absolute ``current``, never derived from a percentage
  of ``total``, so a total that changes mid-way (a pull learning a layer's size) causes no
  drift: the new total simply travels with the next increment;
* if a task's ``current`` ever goes down (a counter restarted), the adapter calls
  :meth:`~MessageHandler.reset_progress` and sends the new ``current`` from zero: an explicit
  call, never a negative or zero increment.

``total`` is the task's total as an ``int``, or ``None`` while unknown (again: no 0 or -1
standing in for "unknown").

**Priority.** Lower number = more important = shown first. The adapter passes each event's
``priority`` through unchanged; every dockprogress display (terminal, plain, web) orders
tasks by ``(priority, start time)`` ascending, and a handler should do the same.

Download tasks (``kind == "download"``, bytes) go to
:meth:`~MessageHandler.increment_download_progress` with ``humanized_size`` such as
``"1.2 GB / 3.1 GB"``; count tasks (items or percent points) go to
:meth:`~MessageHandler.increment_progress` with ``size`` such as ``"45/100"``. When a task
ends in ``error`` or ``cancelled`` the adapter calls :meth:`~MessageHandler.remove_progress`
(the seed's handler has no error state: the error itself reaches the caller as the task's
event or as an exception); after ``done`` it does so only with ``remove_on_done=True``.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from dockprogress import humanize
from dockprogress.events import Kind, State, TaskEvent

__all__ = ["IncrementAdapter", "MessageHandler"]


@runtime_checkable
class MessageHandler(Protocol):
    """What an application implements to receive progress as increments (the seed's API).

    ``increment`` is always a positive ``int``; ``total`` an ``int`` or ``None`` (unknown);
    ``priority``: lower number = more important = shown first; ``operation`` is ``"pull"``,
    ``"logs"``, ``"exec"`` or ``"run"``.
    """

    def increment_progress(  # noqa: PLR0917 (the seed's positional signature)
        self,
        task_id: str,
        increment: int,
        total: int | None,
        priority: int,
        operation: str,
        description: str,
        size: str,
    ) -> None:
        """Count progress: ``increment`` more items (or percent points) of ``total``.

        ``size`` is the task's figure for display, e.g. ``"45/100"``.
        """

    def increment_download_progress(  # noqa: PLR0917 (the seed's signature)
        self,
        task_id: str,
        increment: int,
        total: int | None,
        priority: int,
        operation: str,
        description: str,
        height_class: str,
        humanized_size: str,
    ) -> None:
        """Byte progress: ``increment`` more bytes of ``total``.

        ``humanized_size`` is e.g. ``"1.2 GB / 3.1 GB"``; ``height_class`` is the adapter's
        ``height_class`` setting, passed through for the application's own styling.
        """

    def remove_progress(self, task_id: str) -> None:
        """The task's bar should go: it failed, was cancelled, or (if asked) finished."""

    def reset_progress(self, task_id: str) -> None:
        """The task's progress starts again from zero; increments follow from there."""


class IncrementAdapter:
    """A sink that turns each task's absolute snapshots into calls on a :class:`MessageHandler`.

    Events of any number of interleaved tasks may be sent; each task is tracked by its id.
    Events after a task's terminal event are ignored.
    """

    __slots__ = ("_ended", "_handler", "_sent", "_total_told", "height_class", "remove_on_done")

    def __init__(
        self, handler: MessageHandler, *, height_class: str = "", remove_on_done: bool = False
    ) -> None:
        self._handler = handler
        self.height_class = height_class
        self.remove_on_done = remove_on_done
        self._sent: dict[str, int] = {}
        self._total_told: dict[str, int | None] = {}
        self._ended: set[str] = set()

    def sent(self, task_id: str) -> int:
        """The sum of the increments sent for ``task_id`` since its last reset."""
        return self._sent.get(task_id, 0)

    def send(self, event: TaskEvent) -> None:
        task_id = event.task
        if task_id in self._ended:
            return
        target = _whole(event.current)
        total = None if event.total is None else _whole(event.total)
        sent = self._sent.get(task_id, 0)
        if target < sent:
            self._handler.reset_progress(task_id)
            sent = 0
        elif (
            target == sent
            and event.state is State.DONE
            and task_id in self._total_told
            and self._total_told[task_id] != total
            and target > 0
        ):
            # Done with nothing left to add, yet the handler holds a stale total (e.g. one
            # learned only at the end): restart the bar at its final figures rather than
            # send a zero increment.
            self._handler.reset_progress(task_id)
            sent = 0
        increment = target - sent
        if increment > 0:
            self._emit(event, increment, total)
            self._sent[task_id] = target
            self._total_told[task_id] = total
        else:
            self._sent[task_id] = sent
        if event.terminal:
            self._ended.add(task_id)
            if event.state is not State.DONE or self.remove_on_done:
                self._handler.remove_progress(task_id)

    def close(self) -> None:
        pass

    def _emit(self, event: TaskEvent, increment: int, total: int | None) -> None:
        description = humanize.printable(event.description)
        operation = event.operation.value
        if event.kind is Kind.DOWNLOAD:
            self._handler.increment_download_progress(
                event.task,
                increment,
                total,
                event.priority,
                operation,
                description,
                self.height_class,
                humanize.size_pair(event.current, event.total),
            )
        else:
            self._handler.increment_progress(
                event.task,
                increment,
                total,
                event.priority,
                operation,
                description,
                humanize.count(event.current, event.total),
            )


def _whole(value: float) -> int:
    """Work as whole units: rounded down, so an increment never claims work not yet done."""
    if not math.isfinite(value) or value <= 0:
        return 0
    return math.floor(value)
