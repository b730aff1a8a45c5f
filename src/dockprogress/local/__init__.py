"""``dockprogress run``: progress of a local command, read from its own pseudo-terminal.

The command runs under a fresh pty (so tqdm and rich draw their live bars, exactly as in a
terminal) with a console size set on it and ``COLUMNS``/``LINES`` in its environment; its
output goes through the same parser as ``docker exec``
(:class:`~dockprogress.core.execprogress.ExecTracker`). Forms:

* :func:`iter_run` — blocking generator of :class:`~dockprogress.events.TaskEvent`;
* :func:`run_with_progress` — callback form (``on_event=``, the seed's ``progress_callback=``);
* :func:`arun` — ``async for`` form.

The last event is the task's terminal one: ``done`` for exit status 0; otherwise ``error``
followed by :class:`~dockprogress.errors.ExecError` (status and last lines of output);
``cancelled`` when the ``cancel`` event is set (the generator then simply ends) or on Ctrl-C
(``KeyboardInterrupt`` is re-raised after the event). Cancelling, closing the generator
early, or any error kills the command's whole process group (SIGTERM, then SIGKILL).
"""

from dockprogress.local.ptyrun import arun, iter_run, run_with_progress

__all__ = ["arun", "iter_run", "run_with_progress"]
