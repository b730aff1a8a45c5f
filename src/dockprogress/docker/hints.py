"""What to tell a person whose engine did not answer: docker-free, shared by both clients.

:mod:`dockprogress.docker.client` (docker-py) and :mod:`dockprogress.docker.lean` (the
standard library over the local socket) word their connection errors with these, so a pull
says the same one line whichever client made it: the address, where it came from, and what
to do (``is dockerd running?``, ``join the docker group``...).
"""

from __future__ import annotations

import os
from typing import Final

from dockprogress.docker.endpoint import DEFAULT_HOST, Endpoint, resolve
from dockprogress.errors import EngineError, UsageError

__all__ = ["NO_SOCKET", "connection_error", "describe", "engine_address", "hint", "lost_connection"]

NO_SOCKET: Final = " does not exist: is dockerd running? (or set DOCKER_HOST)"


def engine_address(host: str | None = None, context: str | None = None) -> str:
    """The address the docker CLI would use, and where it came from (for messages)."""
    try:
        return resolve(host, context).describe()
    except UsageError:
        return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def hint(endpoint: Endpoint | None) -> str:
    """What to check when ``endpoint`` (``None``: the default socket) does not answer."""
    if endpoint is None or endpoint.local:
        path = (endpoint.host if endpoint else DEFAULT_HOST).removeprefix("unix://")
        if not os.path.exists(path):
            return f"{path}{NO_SOCKET}"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"no permission on {path}: join the docker group or run as root"
        return "is dockerd running and answering on it?"
    if endpoint.transport == "ssh":
        return (
            "can this machine log in there with a key (ssh-agent, ~/.ssh/config IdentityFile) "
            "and is the host in ~/.ssh/known_hosts? the remote side needs the docker CLI "
            "(it runs `docker system dial-stdio`)"
        )
    where = f"context {endpoint.context!r}" if endpoint.context else endpoint.source
    if endpoint.transport == "tls":
        return f"is the engine running there, and are the TLS files of {where} right?"
    return f"is the engine running there, and is {where} right?"


def describe(endpoint: Endpoint | None) -> str:
    """``unix:///var/run/docker.sock (from the default socket)``, or the environment's."""
    return endpoint.describe() if endpoint is not None else engine_address()


def connection_error(exc: BaseException, action: str, endpoint: Endpoint | None) -> EngineError:
    """The engine could not be reached (or a channel/handshake to it failed) for ``action``."""
    where = describe(endpoint)
    told = hint(endpoint)
    if told.endswith(NO_SOCKET):  # the whole story: any wrapping of the OSError adds only noise
        return EngineError(f"could not {action} at {where}: {told}")
    return EngineError(f"could not {action} at {where}: {exc}; {told}")


def lost_connection(exc: BaseException, action: str, endpoint: Endpoint | None) -> EngineError:
    """The connection broke while ``action`` was under way (mid-request, mid-stream)."""
    return EngineError(
        f"lost the connection to the Docker engine at {describe(endpoint)} while trying to "
        f"{action}: {exc}; {hint(endpoint)}"
    )
