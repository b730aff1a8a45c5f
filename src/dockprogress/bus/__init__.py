"""The event bus: how task events travel from the machines that track them to dashboards.

A bus is a pair behind one small interface, :class:`Bus`:

* ``bus.publisher(node)``: a :class:`~dockprogress.sinks.base.Sink` that publishes this
  process's events, each stamped with ``node`` (the machine's name);
* ``bus.feed(hub)``: a :class:`Feed` that puts every node's events into an
  :class:`~dockprogress.sinks.web.hub.EventHub`, from ``start()`` to ``close()``.

Two buses exist. :class:`LocalBus`, the default, is one process: its publisher is the hub
itself and its feed does nothing (no Redis is needed on one machine). :class:`RedisBus`
(``redis://`` and ``rediss://`` URLs, :mod:`dockprogress.bus.redisstreams`) joins any number
of publishing nodes and dashboard replicas through Redis Streams; its semantics (retention,
late joiners, resending, heartbeats and ``stale``) are written in that module.

:func:`open_bus` turns a ``--bus`` URL into a bus; :func:`resolve_node` gives the node name
(``--node``, else ``DOCKPROGRESS_NODE``, else the host name).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, urlsplit

from dockprogress.errors import DockProgressError, UsageError
from dockprogress.events import default_node

if TYPE_CHECKING:
    from dockprogress.sinks.base import Sink
    from dockprogress.sinks.web.hub import EventHub

__all__ = ["Bus", "BusError", "Feed", "LocalBus", "open_bus", "resolve_node"]

#: Longest node name accepted (it is part of every task's key).
MAX_NODE = 200


class BusError(DockProgressError):
    """The bus could not be used: Redis refused the credentials, or never answered."""


class Feed(Protocol):
    """Puts the bus's events into a hub while started."""

    def start(self) -> Feed: ...

    def close(self) -> None: ...


class Bus(Protocol):
    """A publishing side and a feeding side (see the module docstring)."""

    def publisher(self, node: str) -> Sink: ...

    def feed(self, hub: EventHub) -> Feed: ...


class _NoFeed:
    def start(self) -> _NoFeed:
        return self

    def close(self) -> None:
        pass


class LocalBus:
    """One process: publishing is publishing into ``hub`` (given to :meth:`feed` first)."""

    def __init__(self) -> None:
        self._hub: EventHub | None = None

    def publisher(self, node: str) -> Sink:
        if self._hub is None:
            from dockprogress.sinks.web.hub import EventHub

            self._hub = EventHub()
        return self._hub

    def feed(self, hub: EventHub) -> Feed:
        self._hub = hub
        return _NoFeed()


def resolve_node(given: str | None = None) -> str:
    """The node name: ``given``, else ``DOCKPROGRESS_NODE``, else the host name.

    Raises :class:`UsageError` for an empty name, a control character or more than 200
    characters.
    """
    node = given if given is not None else os.environ.get("DOCKPROGRESS_NODE") or default_node()
    if not node or len(node) > MAX_NODE or any(ord(c) < 32 for c in node):
        raise UsageError(
            f"node name {node!r} must be 1 to {MAX_NODE} printable characters (--node NAME)"
        )
    return node


def open_bus(url: str | None) -> Bus:
    """The bus a ``--bus`` URL names; :class:`LocalBus` for ``None`` or an empty string.

    Raises :class:`UsageError` for a scheme other than ``redis``/``rediss``, a URL without a
    host, or a file named in its options (``?ssl_ca_certs=/path/ca.pem``: the CA that signed a
    ``rediss://`` server's certificate; ``ssl_certfile``/``ssl_keyfile``: a client
    certificate) that cannot be read.
    """
    if not url:
        return LocalBus()
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise UsageError(
            f"--bus {_redact(url)!r}: expected redis://[user:password@]host:port/db "
            "or rediss://... (DOCKPROGRESS_BUS)"
        )
    for name, value in parse_qsl(parts.query):
        if name in _FILE_OPTIONS and not os.access(value, os.R_OK):
            raise UsageError(f"--bus {_redact(url)!r}: cannot read {name} file {value}")
    from dockprogress.bus.redisstreams import RedisBus

    return RedisBus(url)


#: URL options naming files (rediss://…?ssl_ca_certs=/path/ca.pem): checked before connecting.
_FILE_OPTIONS = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_ca_path"})


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
