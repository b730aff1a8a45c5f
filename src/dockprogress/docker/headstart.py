"""The pull's head start: ``dockprogress pull IMAGE...`` asks the engine before it has loaded.

An up-to-date pull is mostly start-up: the engine answers ``Image is up to date`` in about
ten milliseconds, and the interpreter then still spends several times that importing the
command line's parser, the event model and the displays. :func:`head_start` is called by
the command line before any of that, with the command's arguments: when they are plain
(image references, and ``--progress MODE`` at most) and the pull would take the lean path
anyway (the local engine's socket, no credentials configured for the registries), it
opens the :class:`~dockprogress.docker.lean.LeanEngine` and sends every pull's request,
then ``GET /info`` (the session's next question).
The engine works on the pulls while the rest of the program loads; the
:class:`~dockprogress.docker.pull.PullSession` made next takes the engine and the sent
requests over (:func:`take`) instead of sending its own, and reads the answers as it would
have read its own.

Anything else (another option, a reference that does not parse, ``-H``, a bus set in the
environment, any failure at all) sends nothing: the command then runs exactly as without
a head start, and says what went wrong with its usual words. A command line that would end
in a usage error never reaches the engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from dockprogress.docker.endpoint import Endpoint, resolve
from dockprogress.docker.lean import EngineStream, LeanEngine, needs_credentials

__all__ = ["HeadStart", "discard", "head_start", "plain_pull", "take"]

# Variables the command reads that could turn the command line into a usage error after
# the requests were sent (a bus URL or a node name it refuses): no head start with them.
_REFUSING_ENVIRONMENT = ("DOCKPROGRESS_BUS", "DOCKPROGRESS_NODE")


class HeadStart:
    """Pulls already sent: the engine they went to, and each image's answer to read."""

    __slots__ = ("answers", "endpoint", "engine", "images")

    def __init__(
        self,
        endpoint: Endpoint,
        engine: LeanEngine,
        images: tuple[str, ...],
        answers: tuple[Callable[[], EngineStream], ...],
    ) -> None:
        self.endpoint = endpoint
        self.engine = engine
        self.images = images
        self.answers = answers


_started: HeadStart | None = None


def plain_pull(args: Sequence[str], modes: Iterable[str]) -> list[str] | None:
    """The images of a ``pull`` command line that holds nothing else than ``--progress``
    with one of ``modes`` (before or after the images, which come in one run, as the
    parser takes them); ``None`` for any other command line."""
    allowed = set(modes)
    images: list[str] = []
    ended = False  # the run of images is over: an image now would be one too many
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--progress":
            if index >= len(args) or args[index] not in allowed:
                return None
            index += 1
        elif arg.startswith("--progress="):
            if arg.partition("=")[2] not in allowed:
                return None
        elif arg.startswith("-") or not arg:
            return None  # another option (or "--"): the parser decides
        elif ended:
            return None
        else:
            images.append(arg)
            continue
        ended = bool(images)
    return images or None


def head_start(args: Sequence[str], env: Mapping[str, str] | None = None) -> HeadStart | None:
    """Send the pulls of ``dockprogress pull`` ``args`` now, if they are plain and the lean
    path would take them (see the module's doc); what was sent, or ``None``."""
    global _started
    from dockprogress.core.manifest import parse_reference
    from dockprogress.sinks.display import PROGRESS_MODES

    environ = os.environ if env is None else env
    images = plain_pull(args, PROGRESS_MODES)
    if images is None or any(environ.get(name) for name in _REFUSING_ENVIRONMENT):
        return None
    engine: LeanEngine | None = None
    try:
        refs = [parse_reference(image) for image in images]
        endpoint = resolve(env=environ)
        if not endpoint.local or needs_credentials((ref.registry for ref in refs), environ):
            return None
        engine = LeanEngine.open(endpoint)
        answers = tuple(engine.prepare_pull(ref.name, ref.reference) for ref in refs)
        engine.prefetch_info()  # the session's next question (platform, image store)
    except Exception:  # the command will meet the same failure and say it
        if engine is not None:
            engine.close()
        return None
    _started = HeadStart(endpoint, engine, tuple(images), answers)
    return _started


def take(images: Sequence[str], endpoint: Endpoint, platform: str | None) -> HeadStart | None:
    """The head start, for a pull session of the same ``images`` on the same engine and no
    platform; ``None`` otherwise. Taken once: a head start that does not fit is closed (its
    requests end with their connections)."""
    global _started
    started, _started = _started, None
    if started is None:
        return None
    if platform is None and started.images == tuple(images) and started.endpoint == endpoint:
        return started
    started.engine.close()
    return None


def discard() -> None:
    """Close a head start that no session took (the command ended before it pulled)."""
    global _started
    started, _started = _started, None
    if started is not None:
        started.engine.close()
