"""The agent: every container labelled ``dockprogress.milestones`` followed, with no wrapper.

:class:`Agent` watches the engine for containers carrying the label :data:`LABEL` (its value
is a milestone profile name or a milestone file path, see :func:`resolve_milestones`) and
follows each one's logs with :func:`dockprogress.docker.logs.iter_follow` (calibrated by
earlier runs of the same profile, like ``dockprogress logs``), sending every event to a sink
(the bus's publisher). The container's task is ``logs:<container name>``.

How it finds containers, losing none and following none twice:

* it opens the engine's ``/events`` stream (``start`` events of labelled containers) *before*
  listing the labelled containers that already run, and asks the stream to replay from a
  few seconds before it connected, so a container started in between shows up in one or
  both; a set of followed container ids makes the second sighting a no-op;
* a container stays in that set while its follower runs: the follower itself follows the
  container through restarts, so the ``start`` events of a restart are ignored; once the
  follower has ended (the container exited and stayed down), a later start is a new run;
* when the engine goes away (daemon restart) the events stream ends or breaks: the agent
  connects again every second, replaying events since the last one it saw, and lists the
  running containers again. Followers ride out the restart on their own (``iter_follow``
  resumes from the last log timestamp).

Stopping the agent stops the followers without ending their tasks: the containers still
run, so the dashboards show those tasks ``stale`` once the node's heartbeats stop, and a new
agent picks them up.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from dockprogress.core.milestones import MilestoneSet, load_milestones
from dockprogress.errors import DockProgressError, MilestoneConfigError
from dockprogress.events import Kind, Operation
from dockprogress.sinks.base import Sink
from dockprogress.task import Task

__all__ = ["LABEL", "Agent", "milestone_dirs", "resolve_milestones"]

LABEL: Final = "dockprogress.milestones"
#: Seconds of engine events replayed on (re)connecting, to cover the listing's blind spot.
REPLAY: Final = 5


def milestone_dirs(extra: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Where profile names are looked up: ``extra``, then the user's config folder
    (``$XDG_CONFIG_HOME/dockprogress/milestones``, ``~/.config`` by default)."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path.home() / ".config"
    return [*(Path(d) for d in extra), base / "dockprogress" / "milestones"]


def resolve_milestones(value: str, dirs: Sequence[Path]) -> MilestoneSet:
    """The milestone set a label value names.

    A value with a ``/`` or ending in ``.toml`` is a file path on the agent's machine; any
    other is a profile name: ``NAME.toml`` in the first of ``dirs`` that has it, else a
    shipped example of that name (``postgres-load``). Raises :class:`MilestoneConfigError`
    naming where it looked.
    """
    if "/" in value or value.endswith(".toml"):
        return load_milestones(value)
    if not value or value.startswith("."):
        raise MilestoneConfigError(f"label {LABEL}={value!r} names no milestone profile")
    for folder in dirs:
        candidate = folder / f"{value}.toml"
        if candidate.is_file():
            return load_milestones(candidate)
    from dockprogress.examples import example_path

    shipped = example_path(f"{value}.toml")
    if shipped.is_file():
        return load_milestones(shipped)
    where = ", ".join(str(d) for d in dirs)
    raise MilestoneConfigError(
        f"no milestone profile {value!r}: put {value}.toml in one of {where} "
        f"(or label the container with a file path)"
    )


class Agent:
    """Follows labelled containers of one engine into ``sink`` until :meth:`stop`."""

    def __init__(
        self,
        sink: Sink,
        *,
        client_factory: Callable[[], Any] | None = None,
        dirs: Sequence[Path] | None = None,
        stderr: TextIO | None = None,
        follow_options: dict[str, Any] | None = None,
    ) -> None:
        self.sink = sink
        self._client_factory = client_factory
        self.dirs = list(dirs) if dirs is not None else milestone_dirs()
        self._stderr = stderr
        self.follow_options = follow_options or {}
        self._lock = threading.Lock()
        self._following: dict[str, threading.Thread] = {}
        self._stop = threading.Event()
        self._stream: Any = None
        #: Followers started, in all (a container followed once counts once).
        self.followed = 0
        self.reconnects = 0

    # --------------------------------------------------------------- control

    def run(self) -> None:
        """Watch the engine until :meth:`stop` (blocking); reconnects whenever it breaks."""
        since: float | None = None
        warned = False
        while not self._stop.is_set():
            client = None
            try:
                client = self._connect()
                api = client.api
                replay_from = int((since if since is not None else time.time()) - REPLAY)
                self._stream = api.events(
                    filters={"type": ["container"], "event": ["start"], "label": [LABEL]},
                    since=replay_from,
                    decode=True,
                )
                for info in api.containers(filters={"label": LABEL, "status": "running"}):
                    names = info.get("Names") or [""]
                    labels = dict(info.get("Labels") or {})
                    self._follow(str(info["Id"]), labels.get(LABEL, ""), names[0].lstrip("/"))
                if warned:
                    self._say("the engine answers again")
                    warned = False
                for event in self._stream:
                    if self._stop.is_set():
                        break
                    since = float(event.get("time") or time.time())
                    actor = event.get("Actor") or {}
                    attributes = dict(actor.get("Attributes") or {})
                    container = str(actor.get("ID") or event.get("id") or "")
                    if container and LABEL in attributes:
                        self._follow(container, attributes[LABEL], attributes.get("name"))
                since = since if since is not None else time.time()
            except Exception as exc:  # the engine went away, or never answered
                if not warned and not self._stop.is_set():
                    self._say(f"warning: the Docker engine does not answer ({exc}); retrying")
                    warned = True
            finally:
                self._stream = None
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.close()
            if not self._stop.is_set():
                self.reconnects += 1
                self._stop.wait(1.0)

    def stop(self) -> None:
        """Stop watching and following (tasks stay as they are; see the module docstring)."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        with self._lock:
            threads = list(self._following.values())
        for thread in threads:
            thread.join(3.0)

    @property
    def following(self) -> list[str]:
        """Ids of the containers followed right now."""
        with self._lock:
            return list(self._following)

    # ------------------------------------------------------------- internals

    def _connect(self) -> Any:
        if self._client_factory is not None:
            return self._client_factory()
        from dockprogress.docker.client import connect

        return connect()

    def _follow(self, container: str, value: str, name: str | None) -> None:
        with self._lock:
            if container in self._following or self._stop.is_set():
                return
            thread = threading.Thread(
                target=self._follow_one,
                args=(container, value, name),
                name=f"dockprogress-agent-{container[:12]}",
                daemon=True,
            )
            self._following[container] = thread
            self.followed += 1
        thread.start()

    def _follow_one(self, container: str, value: str, name: str | None) -> None:
        from dockprogress.docker.logs import iter_follow

        shown = name or container[:12]
        try:
            try:
                milestones = resolve_milestones(value, self.dirs)
            except MilestoneConfigError as exc:
                self._say(f"cannot follow {shown}: {exc}")
                failed = Task(f"logs:{shown}", Operation.LOGS, Kind.COUNT).fail(str(exc))
                if failed is not None:
                    self.sink.send(failed)
                return
            self._say(f"following {shown} ({container[:12]}) with milestones {value!r}")
            client = self._connect()
            try:
                events = iter_follow(
                    container,
                    milestones=milestones,
                    client=client,
                    cancel=self._stop,
                    detail={"agent": True},
                    **self.follow_options,
                )
                for event in events:
                    if self._stop.is_set():
                        break  # the agent stops: leave the task to go stale, do not end it
                    self.sink.send(event)
            finally:
                with contextlib.suppress(Exception):
                    client.close()
        except DockProgressError:
            pass  # the task's own error event has been sent
        except Exception as exc:
            self._say(f"the follower of {shown} stopped: {exc!r}")
        finally:
            with self._lock:
                self._following.pop(container, None)

    def _say(self, message: str) -> None:
        stream = self._stderr if self._stderr is not None else sys.stderr
        with contextlib.suppress(OSError, ValueError):
            print(f"dockprogress agent: {message}", file=stream, flush=True)
