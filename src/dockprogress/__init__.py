"""dockprogress: the progress of Docker operations as it really is.

Image pulls as one exact byte count, container logs as calibrated milestone progress, and
``docker exec`` commands as their own tqdm/rich bars, all as one stream of
:class:`TaskEvent` for the terminal, JSON lines, a ``MessageHandler`` or the web dashboard.
"""

import importlib

#: The package's version (pyproject.toml reads it from here).
__version__ = "0.1.0"

from dockprogress.errors import (
    BuildError,
    Cancelled,
    DockProgressError,
    EngineError,
    ExecError,
    LogFollowError,
    MilestoneConfigError,
    PullError,
    PushError,
    RegistryError,
    StreamError,
    UsageError,
)

# (typing.TYPE_CHECKING without importing typing, which `dockprogress --version` need not load)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockprogress.core.barfiles import load_bars
    from dockprogress.core.milestones import (
        DYNAMIC,
        Milestone,
        MilestoneSet,
        ProgressMilestone,
        load_milestones,
    )
    from dockprogress.docker.build import abuild, build, iter_build
    from dockprogress.docker.compose import afollow_project, iter_follow_project
    from dockprogress.docker.exec import aexec, exec_with_progress, iter_exec
    from dockprogress.docker.logs import afollow, follow, iter_follow
    from dockprogress.docker.pull import apull, iter_pull, pull
    from dockprogress.docker.push import apush, iter_push, push
    from dockprogress.events import Kind, Operation, State, TaskEvent
    from dockprogress.handler import IncrementAdapter, MessageHandler
    from dockprogress.local import arun, iter_run, run_with_progress
    from dockprogress.sinks.base import EventCallback, Fanout, Sink
    from dockprogress.sinks.display import open_display
    from dockprogress.sinks.jsonl import JsonLinesSink
    from dockprogress.sinks.plain import PlainSink
    from dockprogress.sinks.terminal import TerminalSink
    from dockprogress.task import RateWindow, Task
del TYPE_CHECKING  # not an export

# The trackers, displays, milestone and even the event types load on first use (PEP 562), so that
# `import dockprogress` and the CLI do not pay for the Docker SDK, rich or the web stack
# until a command needs them.
_LAZY: dict[str, str] = {
    "Kind": "dockprogress.events",
    "Operation": "dockprogress.events",
    "State": "dockprogress.events",
    "TaskEvent": "dockprogress.events",
    "EventCallback": "dockprogress.sinks.base",
    "Fanout": "dockprogress.sinks.base",
    "Sink": "dockprogress.sinks.base",
    "RateWindow": "dockprogress.task",
    "Task": "dockprogress.task",
    "DYNAMIC": "dockprogress.core.milestones",
    "Milestone": "dockprogress.core.milestones",
    "MilestoneSet": "dockprogress.core.milestones",
    "ProgressMilestone": "dockprogress.core.milestones",
    "load_milestones": "dockprogress.core.milestones",
    "load_bars": "dockprogress.core.barfiles",
    "abuild": "dockprogress.docker.build",
    "build": "dockprogress.docker.build",
    "iter_build": "dockprogress.docker.build",
    "afollow_project": "dockprogress.docker.compose",
    "iter_follow_project": "dockprogress.docker.compose",
    "aexec": "dockprogress.docker.exec",
    "exec_with_progress": "dockprogress.docker.exec",
    "iter_exec": "dockprogress.docker.exec",
    "afollow": "dockprogress.docker.logs",
    "follow": "dockprogress.docker.logs",
    "iter_follow": "dockprogress.docker.logs",
    "apull": "dockprogress.docker.pull",
    "iter_pull": "dockprogress.docker.pull",
    "pull": "dockprogress.docker.pull",
    "apush": "dockprogress.docker.push",
    "iter_push": "dockprogress.docker.push",
    "push": "dockprogress.docker.push",
    "IncrementAdapter": "dockprogress.handler",
    "MessageHandler": "dockprogress.handler",
    "arun": "dockprogress.local",
    "iter_run": "dockprogress.local",
    "run_with_progress": "dockprogress.local",
    "open_display": "dockprogress.sinks.display",
    "JsonLinesSink": "dockprogress.sinks.jsonl",
    "PlainSink": "dockprogress.sinks.plain",
    "TerminalSink": "dockprogress.sinks.terminal",
}

__all__ = [
    "DYNAMIC",
    "BuildError",
    "Cancelled",
    "DockProgressError",
    "EngineError",
    "EventCallback",
    "ExecError",
    "Fanout",
    "IncrementAdapter",
    "JsonLinesSink",
    "Kind",
    "LogFollowError",
    "MessageHandler",
    "Milestone",
    "MilestoneConfigError",
    "MilestoneSet",
    "Operation",
    "PlainSink",
    "ProgressMilestone",
    "PullError",
    "PushError",
    "RateWindow",
    "RegistryError",
    "Sink",
    "State",
    "StreamError",
    "Task",
    "TaskEvent",
    "TerminalSink",
    "UsageError",
    "abuild",
    "aexec",
    "afollow",
    "afollow_project",
    "apull",
    "apush",
    "arun",
    "build",
    "exec_with_progress",
    "follow",
    "iter_build",
    "iter_exec",
    "iter_follow",
    "iter_follow_project",
    "iter_pull",
    "iter_push",
    "iter_run",
    "load_bars",
    "load_milestones",
    "open_display",
    "pull",
    "push",
    "run_with_progress",
]


def __getattr__(name: str) -> "Any":
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dockprogress' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
