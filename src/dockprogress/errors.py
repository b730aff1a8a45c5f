"""Every error dockprogress raises, under one root.

::

    DockProgressError                 root: catch this to catch everything below
    ├── UsageError                    bad arguments or configuration (CLI exit status 2)
    │   └── MilestoneConfigError      a milestone file or pattern that cannot be used
    ├── EngineError                   the Docker engine could not be reached or refused a call
    ├── RegistryError                 the registry could not be asked for a manifest
    ├── StreamError                   a stream broke its own format (bad frame, line too long)
    ├── PullError                     the engine reported an error inside a pull stream
    ├── BuildError                    a build failed (the step, its exit status, its last lines)
    ├── PushError                     the engine reported an error inside a push stream
    ├── LogFollowError                a followed container failed before its final milestone
    ├── ExecError                     an exec'd or local command failed (exit code, output tail)
    └── Cancelled                     the operation was cancelled (CLI exit status 130)

Messages say what went wrong and what to do about it. Third-party errors are translated at
the boundary with ``raise ... from exc`` so the original stays in ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "BuildError",
    "Cancelled",
    "DockProgressError",
    "EngineError",
    "ExecError",
    "LogFollowError",
    "MilestoneConfigError",
    "PullError",
    "PushError",
    "RegistryError",
    "StreamError",
    "UsageError",
]


class DockProgressError(Exception):
    """Root of every error raised by dockprogress."""


class UsageError(DockProgressError):
    """Invalid arguments or configuration given by the caller."""


class MilestoneConfigError(UsageError):
    """A milestone set that cannot be built: bad pattern, bad progress value, unknown key."""


class EngineError(DockProgressError):
    """The Docker engine could not be reached, or refused a request."""


class RegistryError(DockProgressError):
    """A registry did not answer a manifest request usefully."""


class StreamError(DockProgressError):
    """A stream broke its own wire format (bad frame header, line over the cap)."""


class PullError(DockProgressError):
    """The engine reported an error in a pull stream (``errorDetail``).

    ``message`` is the engine's own text; ``image`` names the image being pulled.
    """

    def __init__(self, message: str, *, image: str | None = None) -> None:
        self.message = message
        self.image = image
        super().__init__(f"pull of {image}: {message}" if image else message)


class BuildError(DockProgressError):
    """A build failed: ``step`` is the failing step's text (``None`` before any step),
    ``exit_code`` the exit status of its command when it ran one, ``last_lines`` its output."""

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        exit_code: int | None = None,
        last_lines: tuple[str, ...] = (),
    ) -> None:
        self.message = message
        self.step = step
        self.exit_code = exit_code
        self.last_lines = last_lines
        super().__init__(message)


class PushError(DockProgressError):
    """The engine reported an error in a push stream (``errorDetail``) or refused the push.

    ``message`` is the engine's own text; ``image`` names the image being pushed.
    """

    def __init__(self, message: str, *, image: str | None = None) -> None:
        self.message = message
        self.image = image
        super().__init__(f"push of {image}: {message}" if image else message)


class LogFollowError(DockProgressError):
    """A followed container stopped before its final milestone, or its logs failed."""

    def __init__(
        self, message: str, *, exit_code: int | None = None, last_lines: tuple[str, ...] = ()
    ) -> None:
        self.message = message
        self.exit_code = exit_code
        self.last_lines = last_lines
        super().__init__(message)


class ExecError(DockProgressError):
    """A command run through ``docker exec`` (or under a local pty) failed."""

    def __init__(
        self, message: str, *, exit_code: int | None = None, last_lines: tuple[str, ...] = ()
    ) -> None:
        self.message = message
        self.exit_code = exit_code
        self.last_lines = last_lines
        super().__init__(message)


class Cancelled(DockProgressError):
    """The operation was cancelled by the user or through the API."""
