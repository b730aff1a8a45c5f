"""A unix-socket transport for docker-py that closes the socket of a failed connect.

docker-py's ``UnixHTTPConnection.connect`` (``docker/transport/unixconn.py``) creates a
socket, and when ``connect()`` on it raises (the engine is down, the socket file is gone)
nobody closes it: the garbage collector does, later, with a ``ResourceWarning``. The log
follower asks the engine again every second while it is down (inspect, logs, events), so a
minute of outage used to leave about a hundred descriptors to the collector.

:func:`close_failed_connects` swaps the client's unix adapter for one whose connections
close their socket when the connect fails. The swap changes nothing else: same socket path,
timeout, pool sizes; clients of other transports (tcp, ssh, npipe) are returned as they are.
"""

from __future__ import annotations

import socket
from typing import Any

import docker
from docker.transport.unixconn import (
    UnixHTTPAdapter,
    UnixHTTPConnection,
    UnixHTTPConnectionPool,
)

__all__ = ["close_failed_connects"]

_MOUNT = "http+docker://"


class _ClosingUnixConnection(UnixHTTPConnection):  # type: ignore[misc]
    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_socket)
        except BaseException:
            sock.close()  # the line docker-py lacks
            raise
        self.sock = sock


class _ClosingUnixPool(UnixHTTPConnectionPool):  # type: ignore[misc]
    def _new_conn(self) -> _ClosingUnixConnection:
        return _ClosingUnixConnection(self.base_url, self.socket_path, self.timeout)


class _ClosingUnixAdapter(UnixHTTPAdapter):  # type: ignore[misc]
    def get_connection(self, url: Any, proxies: Any = None) -> _ClosingUnixPool:
        with self.pools.lock:
            pool = self.pools.get(url)
            if pool:
                return pool  # type: ignore[no-any-return]
            pool = _ClosingUnixPool(url, self.socket_path, self.timeout, maxsize=self.max_pool_size)
            self.pools[url] = pool
        return pool


def close_failed_connects(client: docker.DockerClient) -> docker.DockerClient:
    """``client``, its unix transport made to close failed connects' sockets (see above)."""
    api = client.api
    adapter: Any = getattr(api, "_custom_adapter", None)
    if type(adapter) is not UnixHTTPAdapter:  # another transport, or already swapped
        return client
    closing = _ClosingUnixAdapter(
        "http+unix://" + adapter.socket_path,
        timeout=adapter.timeout,
        pool_connections=getattr(adapter.pools, "_maxsize", 25),
        max_pool_size=adapter.max_pool_size,
    )
    api._custom_adapter = closing
    api.mount(_MOUNT, closing)
    adapter.close()
    return client
