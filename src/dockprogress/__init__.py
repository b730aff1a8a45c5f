"""dockprogress: the progress of Docker operations as it really is.

Image pulls as one exact byte count, container logs as calibrated milestone progress, and
``docker exec`` commands as their own tqdm/rich bars, all as one stream of
:class:`TaskEvent` for the terminal, JSON lines, a ``MessageHandler`` or the web dashboard.
"""

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
from dockprogress.sinks.base import EventCallback, Fanout, Sink
from dockprogress.sinks.display import open_display
from dockprogress.sinks.jsonl import JsonLinesSink
from dockprogress.sinks.plain import PlainSink
from dockprogress.sinks.terminal import TerminalSink
from dockprogress.task import RateWindow, Task

__all__ = [
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
    "MilestoneConfigError",
    "Operation",
    "PlainSink",
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
    "apull",
    "iter_pull",
    "open_display",
    "pull",
]
