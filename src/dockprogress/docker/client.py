"""Reaching the Docker engine the way the docker CLI does, with errors a person can act on.

:func:`connect` returns a :class:`docker.DockerClient` found like ``docker`` finds it:
``DOCKER_HOST`` (with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``) when set, else the default
socket ``unix:///var/run/docker.sock``. It checks the engine answers (``ping``) and raises
:class:`~dockprogress.errors.EngineError` naming the address tried and what to do.

:func:`translate_errors` is the one boundary where docker-py's and requests' exceptions
become dockprogress errors; every adapter wraps its engine calls in it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests.exceptions

from dockprogress.errors import EngineError

__all__ = ["DEFAULT_HOST", "connect", "engine_address", "engine_platform", "translate_errors"]

DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_address() -> str:
    """The address the docker CLI would use: ``DOCKER_HOST`` or the default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _hint(address: str) -> str:
    if address.startswith("unix://"):
        path = address.removeprefix("unix://")
        if not os.path.exists(path):
            return f"{path} does not exist: is dockerd running? (or set DOCKER_HOST)"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"no permission on {path}: join the docker group or run as root"
        return "is dockerd running and answering on it?"
    return "is the engine running there, and is DOCKER_HOST right?"


@contextmanager
def translate_errors(action: str = "talk to the Docker engine") -> Iterator[None]:
    """Turn docker-py/requests connection and API errors raised inside into ``EngineError``.

    ``docker.errors.NotFound`` and other ``APIError`` keep the engine's own explanation.
    Errors that are already dockprogress errors pass through unchanged.
    """
    address = engine_address()
    try:
        yield
    except docker.errors.APIError as exc:
        explanation = exc.explanation or str(exc)
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        raise EngineError(f"could not {action}: {explanation}") from exc
    except docker.errors.DockerException as exc:
        raise EngineError(f"could not {action} at {address}: {exc}; {_hint(address)}") from exc
    except requests.exceptions.ConnectionError as exc:
        raise EngineError(
            f"lost the connection to the Docker engine at {address} while trying to {action}: "
            f"{exc}; {_hint(address)}"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise EngineError(f"could not {action} at {address}: {exc}") from exc


def connect(*, timeout: float = 60.0, **kwargs: Any) -> docker.DockerClient:
    """A client for the engine the docker CLI would use; ``EngineError`` if it does not answer."""
    with translate_errors("connect to the Docker engine"):
        client = docker.from_env(timeout=int(timeout), **kwargs)
        try:
            client.ping()
        except BaseException:
            client.close()
            raise
    return client


def engine_platform(client: docker.DockerClient) -> tuple[str, str]:
    """The engine's ``(os, arch)`` as ``docker version`` reports them (e.g. linux, amd64)."""
    with translate_errors("ask the Docker engine for its version"):
        info = client.version()
    return str(info.get("Os") or "linux"), str(info.get("Arch") or "amd64")
