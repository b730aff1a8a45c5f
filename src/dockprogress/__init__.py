"""dockprogress: the progress of Docker operations as it really is.

Image pulls as one exact byte count, container logs as calibrated milestone progress, and
``docker exec`` commands as their own tqdm/rich bars, all as one stream of
:class:`TaskEvent` for the terminal, JSON lines, a ``MessageHandler`` or the web dashboard.
"""

from dockprogress.core.milestones import (
    DYNAMIC,
    Milestone,
    MilestoneSet,
    ProgressMilestone,
    load_milestones,
)
from dockprogress.docker.compose import afollow_project, iter_follow_project
from dockprogress.docker.exec import aexec, exec_with_progress, iter_exec
from dockprogress.docker.logs import afollow, follow, iter_follow
from dockprogress.docker.pull import apull, iter_pull, pull
from dockprogress.errors import (
    Cancelled,
    DockProgressError,
    EngineError,
    ExecError,
    LogFollowError,
    MilestoneConfigError,
    PullError,
    RegistryError,
    StreamError,
    UsageError,
)
from dockprogress.events import Kind, Operation, State, TaskEvent
from dockprogress.handler import IncrementAdapter, MessageHandler
from dockprogress.local import arun, iter_run, run_with_progress
from dockprogress.sinks.base import EventCallback, Fanout, Sink
from dockprogress.sinks.display import open_display
from dockprogress.sinks.jsonl import JsonLinesSink
from dockprogress.sinks.plain import PlainSink
from dockprogress.sinks.terminal import TerminalSink
from dockprogress.task import RateWindow, Task

__all__ = [
    "DYNAMIC",
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
    "RateWindow",
    "RegistryError",
    "Sink",
    "State",
    "StreamError",
    "Task",
    "TaskEvent",
    "TerminalSink",
    "UsageError",
    "aexec",
    "afollow",
    "afollow_project",
    "apull",
    "arun",
    "exec_with_progress",
    "follow",
    "iter_exec",
    "iter_follow",
    "iter_follow_project",
    "iter_pull",
    "iter_run",
    "load_milestones",
    "open_display",
    "pull",
    "run_with_progress",
]
