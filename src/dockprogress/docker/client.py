"""Reaching the Docker engine the way the docker CLI does, with errors a person can act on.

:func:`connect` returns a :class:`docker.DockerClient` for the engine that
:func:`~dockprogress.docker.endpoint.resolve` finds (``-H``, ``--context``, ``DOCKER_HOST``
with ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``, ``DOCKER_CONTEXT``, the CLI config's current
context, the default socket) over unix sockets, plain tcp, tcp with TLS, and ssh (docker-py's
paramiko transport; the remote side runs ``docker system dial-stdio``). It checks the engine
answers (``ping``) and raises :class:`~dockprogress.errors.EngineError` naming the address,
where it came from, and what to do; resolution problems (no such context) are
:class:`~dockprogress.errors.UsageError`.

:func:`translate_errors` is the one boundary where docker-py's and requests' exceptions
become dockprogress errors; every adapter wraps its engine calls in it.
:func:`endpoint_of` tells which endpoint a client made here talks to (adapters use it to
name the engine in errors, and the exec adapter to know whether the engine's pids are ours).
"""

from __future__ import annotations

import socket
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Final

import docker
import docker.errors
import docker.tls
import requests.exceptions

from dockprogress.docker.endpoint import DEFAULT_HOST, Endpoint, resolve
from dockprogress.docker.hints import (
    connection_error,
    describe,
    engine_address,
    hint,
    lost_connection,
)
from dockprogress.docker.unixsock import close_failed_connects
from dockprogress.errors import DockProgressError, EngineError, UsageError

__all__ = [
    "DEFAULT_HOST",
    "Endpoint",
    "close_ssh_stream",
    "connect",
    "endpoint_of",
    "engine_address",
    "engine_platform",
    "hang_up",
    "translate_errors",
]

# Clients made by connect() (and their low-level APIClient) -> the endpoint they talk to.
_ENDPOINTS: weakref.WeakKeyDictionary[Any, Endpoint] = weakref.WeakKeyDictionary()


def endpoint_of(client: Any) -> Endpoint | None:
    """The endpoint of a client made by :func:`connect` (or its ``.api``); else ``None``."""
    try:
        return _ENDPOINTS.get(client) or _ENDPOINTS.get(getattr(client, "api", None))
    except TypeError:  # not weak-referenceable: not one of ours
        return None


@contextmanager
def translate_errors(
    action: str = "talk to the Docker engine", endpoint: Endpoint | None = None
) -> Iterator[None]:
    """Turn docker-py/requests connection and API errors raised inside into ``EngineError``.

    ``docker.errors.NotFound`` and other ``APIError`` keep the engine's own explanation.
    Connection errors name ``endpoint`` (default: the one the environment selects).
    Errors that are already dockprogress errors pass through unchanged.
    """
    try:
        yield
    except DockProgressError:
        raise
    except Exception as exc:
        if endpoint is None:  # name the engine the environment selects
            with suppress(UsageError):
                endpoint = resolve()
        error = _translated(exc, action, endpoint)
        if error is None:
            raise
        raise error from exc


def _translated(exc: Exception, action: str, endpoint: Endpoint | None) -> EngineError | None:
    """The ``EngineError`` for a docker-py/requests/ssh/TLS failure; ``None``: not ours."""
    where = describe(endpoint)
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation or str(exc)
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        return EngineError(f"could not {action}: {explanation}")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return lost_connection(exc, action, endpoint)
    if isinstance(exc, requests.exceptions.RequestException):
        return EngineError(f"could not {action} at {where}: {exc}")
    # Below requests (its errors are OSErrors too): ssh channels, TLS handshakes.
    if isinstance(exc, docker.errors.DockerException | OSError):
        return connection_error(exc, action, endpoint)
    if type(exc).__module__.startswith("paramiko"):  # authentication, unknown host key
        reason = str(exc) or type(exc).__name__
        return EngineError(f"could not {action} at {where}: ssh: {reason}; {hint(endpoint)}")
    return None


def connect(
    *,
    host: str | None = None,
    context: str | None = None,
    endpoint: Endpoint | None = None,
    timeout: float = 60.0,
    **kwargs: Any,
) -> docker.DockerClient:
    """A client for the engine the docker CLI would use with ``-H host``/``--context``.

    ``endpoint`` (from :func:`~dockprogress.docker.endpoint.resolve`) skips the resolution.
    ``kwargs`` go to :class:`docker.DockerClient`. Raises ``UsageError`` when the flags or
    the CLI's files select nothing usable, ``EngineError`` when the engine does not answer.
    """
    endpoint = endpoint if endpoint is not None else resolve(host, context)
    with translate_errors("connect to the Docker engine", endpoint):
        client = close_failed_connects(_client(endpoint, timeout, kwargs))
        _ENDPOINTS[client] = endpoint
        _ENDPOINTS[client.api] = endpoint
        try:
            if "version" not in kwargs:  # negotiated now, through the closing transport
                client.api._version = client.api._retrieve_server_version()
            client.ping()
        except BaseException:
            client.close()
            raise
    return client


def _client(endpoint: Endpoint, timeout: float, kwargs: dict[str, Any]) -> docker.DockerClient:
    tls: Any = False
    if endpoint.tls is not None:
        settings = endpoint.tls
        if not settings.verify:
            # The user asked for no verification (SkipTLSVerify, DOCKER_TLS without VERIFY):
            # the docker CLI says nothing about it either, so neither do requests.
            import urllib3.exceptions

            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        tls = _TLSConfig(
            client_cert=(settings.cert, settings.key) if settings.cert and settings.key else None,
            ca_cert=settings.ca,
            verify=settings.verify,
        )
    if endpoint.transport == "ssh":
        _require_paramiko()
    # docker-py asks the engine's API version in its constructor, before close_failed_connects
    # can swap the unix transport: a missing socket's failed connect was left to the collector
    # (a ResourceWarning). A placeholder version defers the question to connect().
    return docker.DockerClient(
        base_url=endpoint.host,
        tls=tls,
        timeout=int(timeout),
        use_ssh_client=False,
        **({"version": _NEGOTIATE_LATER} | kwargs),
    )


_NEGOTIATE_LATER: Final = "1.24"  # docker-py's minimum; replaced by the engine's own at once


class _TLSConfig(docker.tls.TLSConfig):  # type: ignore[misc]
    """docker-py's TLS settings, kept over the environment's CA bundle.

    requests lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` replace a session's ``verify``
    (requests issue 3829): the engine's CA from the context or ``DOCKER_CERT_PATH`` would be
    ignored. The session is told not to read the environment (set before docker-py's first
    request, which asks the engine's API version).
    """

    def configure_client(self, client: Any) -> None:
        super().configure_client(client)
        client.trust_env = False


def _require_paramiko() -> None:
    import importlib.util

    if importlib.util.find_spec("paramiko") is None:
        raise UsageError(
            "ssh:// engines need paramiko: pip install 'docker[ssh]' (dockprogress depends "
            "on it; a trimmed install may lack it)"
        )


def close_ssh_stream(stream: Any) -> None:
    """Close the ssh channel under a docker-py stream (``CancellableStream``), waking its reader.

    docker-py's ``CancellableStream.close`` shuts unix and tcp sockets down but refuses ssh
    channels ("not supported for the SSH protocol"); closing the paramiko channel does it.
    Anything else is left alone.
    """
    fp = getattr(getattr(getattr(stream, "_response", None), "raw", None), "_fp", None)
    channel = getattr(getattr(fp, "fp", None), "channel", None)
    close = getattr(channel, "close", None)
    if close is not None:
        with suppress(Exception):
            close()


def hang_up(response: Any) -> None:
    """Close a streamed ``requests`` response so that the engine sees its client leave.

    Any thread may call it. The socket is shut down before it is closed: ``close()`` alone
    neither wakes a thread blocked in ``recv()`` on it nor, while that call holds the socket,
    sends the engine anything; the engine cancels the request (a push, a classic build) only
    when its connection ends. ssh channels are closed (they have no shutdown). Idempotent.
    """
    if response is None:
        return
    fp = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    raw = getattr(fp, "raw", None)
    sock = getattr(raw, "_sock", None)
    shutdown = getattr(sock, "shutdown", None)
    if shutdown is not None:
        with suppress(Exception):
            shutdown(socket.SHUT_RDWR)
    channel = getattr(fp, "channel", None)
    close_channel = getattr(channel, "close", None)
    if close_channel is not None:
        with suppress(Exception):
            close_channel()
    close = getattr(response, "close", None)
    if close is not None:
        with suppress(Exception):
            close()


def engine_platform(client: docker.DockerClient) -> tuple[str, str]:
    """The engine's ``(os, arch)`` as ``docker version`` reports them (e.g. linux, amd64)."""
    with translate_errors("ask the Docker engine for its version", endpoint_of(client)):
        info = client.version()
    return str(info.get("Os") or "linux"), str(info.get("Arch") or "amd64")
