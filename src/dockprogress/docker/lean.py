"""A lean client for the local engine's unix socket: what a pull or a push needs, without
docker-py.

Importing docker-py costs about a quarter of a second (it brings requests, urllib3, and
paramiko for its ssh transport): ten times the whole of ``docker pull`` of an image that is
already up to date. For the common case, a local engine reached over its unix socket and a
registry that needs no credentials, :class:`LeanEngine` talks to the engine with the
standard library (a socket and :mod:`dockprogress.docker.http11`) and offers exactly what
:class:`~dockprogress.docker.pull.PullSession` asks of an engine:

* the API version, negotiated as the docker CLI does it (``HEAD /_ping`` answers it in its
  ``API-Version`` header: a millisecond, where ``GET /version`` takes ten as the engine asks
  containerd and runc theirs), then every path is ``/v<ApiVersion>/...``;
* ``GET /info`` for the image store, the engine's ID and its os/arch (``x86_64`` read as
  ``amd64``, as ``docker version`` says it; ``GET /version`` for a machine it does not know);
* ``POST /images/create`` streaming the engine's chunks as they come (each chunk whole, as
  docker-py's stream helper yields them), a stream that :meth:`PullStream.close` ends at
  once, from any thread (the socket is shut down, waking its reader);
* ``POST /images/{name}/push`` the same way, with the empty credentials the docker CLI sends
  for a registry it has none for (``X-Registry-Auth: e30=``, base64 of ``{}``);
* ``POST /build`` with the context's tar as the body (read as it is sent, so the caller can
  count it), then its stream; ``POST /images/{id}/tag`` for a build's other tags.

Its errors are the ones :func:`~dockprogress.docker.client.translate_errors` makes of
docker-py's: a refused request carries the engine's own explanation (:class:`EngineRefused`,
or ``EngineError("could not <action>: <explanation>")``); a socket that is missing,
forbidden or silent is said with :mod:`dockprogress.docker.hints`' words.

:func:`needs_credentials` tells when the lean path must not be used: docker-py sends the
user's registry credentials with a pull (``X-Registry-Auth``) when its config lookup finds
some. It reads the file docker-py would read (``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``, else ``~/.dockercfg``) and answers yes, conservatively, for a
``credsStore``, a ``credHelpers`` or ``auths`` entry naming the registry, a legacy file, or a
file it cannot read; :func:`has_credentials` whether the config holds any at all (a build
sends them all, for whichever registry its ``FROM`` lines name). ssh, tcp and TLS endpoints
stay with docker-py, and so do the requests that need credentials.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

from dockprogress.docker.endpoint import Endpoint
from dockprogress.docker.hints import connection_error, lost_connection
from dockprogress.docker.http11 import Connection, Readable, Response, unix_connector
from dockprogress.errors import DockProgressError, EngineError

__all__ = [
    "EngineRefused",
    "EngineStream",
    "LeanEngine",
    "PullStream",
    "engine_arch",
    "has_credentials",
    "image_store_of",
    "needs_credentials",
]

_HEADERS: Final = {"User-Agent": "dockprogress"}
# What the docker CLI sends for a registry it has no credentials for: base64 of "{}". (The
# engine refuses a push with neither this header nor a JSON body.)
_NO_CREDENTIALS: Final = {**_HEADERS, "X-Registry-Auth": "e30="}

# The engine's GOARCH (what `docker version` says) for the machine names /info reports
# (uname's): containerd's platforms.Normalize, for the architectures Docker runs on.
_ARCHES: Final = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "armhf": "arm",
    "arm": "arm",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "mips64el": "mips64le",
    "loongarch64": "loong64",
}


def engine_arch(machine: str) -> str | None:
    """``x86_64`` → ``amd64``, ``aarch64`` → ``arm64``…; ``None`` for a name not known."""
    return _ARCHES.get(machine.lower())


class EngineRefused(Exception):
    """The engine answered a request with an error status; ``message`` is its explanation."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class _ConnectFailed(Exception):
    """The socket could not be connected (``cause`` says why): nothing was sent."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def image_store_of(info: Mapping[str, Any]) -> tuple[bool, str]:
    """From ``GET /info``: whether images live in containerd, and the engine's ID."""
    status = info.get("DriverStatus") or []
    containerd = any(
        isinstance(pair, list | tuple) and pair and "containerd" in str(pair[-1]) for pair in status
    )
    return containerd, str(info.get("ID") or info.get("Name") or "engine")


def _explanation(body: bytes) -> str:
    """The engine's ``{"message": ...}``, else its body as text (docker-py's reading)."""
    text = body.decode("utf-8", "replace").strip()
    with suppress(ValueError):
        decoded = json.loads(text)
        if isinstance(decoded, dict) and decoded.get("message"):
            return str(decoded["message"])
    return text


class EngineStream:
    """The engine's streamed answer (a pull's, a push's), chunk by chunk; :meth:`close` ends
    it from any thread."""

    def __init__(self, connection: Connection, response: Response) -> None:
        self._connection = connection
        self._response = response
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while not self._closed:
                data = self._response.read_chunk()  # blocks until the engine sends a chunk
                if not data:
                    break
                yield data
        except Exception:
            if self._closed:  # closed under our feet: that was the point
                return
            raise

    def close(self) -> None:
        """End the stream: the socket is shut down (a blocked reader wakes) and closed."""
        if self._closed:
            return
        self._closed = True
        self._connection.shutdown()
        self._connection.close()


PullStream = EngineStream  # (its first name)


class LeanEngine:
    """The local engine over its unix socket, as a pull or a push needs it (see the module's
    doc).

    Made by :meth:`open`, which negotiates the API version. Every method raises
    ``EngineError`` (or :class:`EngineRefused` for a refused pull) with the messages
    docker-py's path gives.
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float = 60.0) -> None:
        if not endpoint.local:
            raise ValueError(f"the lean client reaches unix sockets only, not {endpoint.host}")
        self.endpoint = endpoint
        self._connect = unix_connector(endpoint.host.removeprefix("unix://"), timeout)
        self._lock = threading.Lock()
        self._idle: Connection | None = None
        self._streams: list[EngineStream] = []
        self._sent: list[Connection] = []
        self._info: dict[str, Any] | None = None
        self._info_asked: Connection | None = None  # /info sent ahead, its answer unread
        self._prefix = ""

    @classmethod
    def open(cls, endpoint: Endpoint, *, timeout: float = 60.0) -> LeanEngine:
        """Connect and negotiate the API version (``HEAD /_ping``'s ``API-Version``, as the
        docker CLI reads it; ``GET /version`` when the engine does not say)."""
        engine = cls(endpoint, timeout=timeout)
        action = "connect to the Docker engine"
        try:
            with engine.errors(action):
                api = engine._ping()
                if not api:
                    version = engine._get("/version")
                    api = str(version.get("ApiVersion") or "") if isinstance(version, dict) else ""
            if not api:
                raise EngineError(
                    f"could not {action} at {endpoint.describe()}: it does not say its API version"
                )
        except BaseException:
            engine.close()
            raise
        engine._prefix = f"/v{api}"
        return engine

    # ---------------------------------------------------------------- requests

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn failures inside into ``EngineError`` naming ``action`` and the socket."""
        try:
            yield
        except (DockProgressError, EngineRefused):
            raise
        except _ConnectFailed as exc:
            raise connection_error(exc.cause, action, self.endpoint) from exc.cause
        except OSError as exc:
            raise lost_connection(exc, action, self.endpoint) from exc

    def _connection(self) -> Connection:
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is not None and idle.idle:
            return idle
        connection = Connection(self._connect, "docker")
        try:
            connection.open()
        except OSError as exc:
            raise _ConnectFailed(exc) from exc
        return connection

    def _release(self, connection: Connection) -> None:
        if connection.idle:
            with self._lock:
                if self._idle is None:
                    self._idle = connection
                    return
        connection.close()

    def _ask(self, method: str, path: str) -> tuple[Response, bytes]:
        connection = self._connection()
        try:
            response = connection.request(method, path, _HEADERS)
            body = response.read()
        except BaseException:
            connection.close()
            raise
        self._release(connection)
        return response, body

    def _ping(self) -> str:
        response, _ = self._ask("HEAD", "/_ping")
        return (response.header("API-Version") or "") if response.status == 200 else ""

    def _get(self, path: str) -> Any:
        """``GET path``, its JSON body; ``EngineRefused`` for an error status."""
        response, body = self._ask("GET", path)
        if response.status >= 400:
            raise EngineRefused(_explanation(body), response.status)
        try:
            return json.loads(body)
        except ValueError:
            raise EngineError(
                f"the Docker engine at {self.endpoint.describe()} answered {path} with no JSON: "
                f"{body[:200]!r}"
            ) from None

    def _checked(self, action: str, path: str) -> Any:
        with self.errors(action):
            try:
                return self._get(path)
            except EngineRefused as exc:
                raise EngineError(f"could not {action}: {exc.message}") from exc

    # ---------------------------------------------------------------- what a pull asks

    def prefetch_info(self) -> None:
        """Send ``GET /info`` now, on a connection of its own, for :meth:`info` to read: the
        engine answers while this process goes on (the engine takes several milliseconds,
        asking containerd). A failure here is left to :meth:`info` to meet and say."""
        if self._info is not None or self._info_asked is not None:
            return
        try:
            connection = self._connection()
            connection.send("GET", self._prefix + "/info", _HEADERS)
        except Exception:
            return
        self._info_asked = connection

    def info(self) -> dict[str, Any]:
        """``GET /info`` (asked once)."""
        if self._info is None:
            asked, self._info_asked = self._info_asked, None
            if asked is not None:
                self._info = self._read_info(asked)
        if self._info is None:
            info = self._checked(
                "ask the Docker engine for its image store", self._prefix + "/info"
            )
            self._info = info if isinstance(info, dict) else {}
        return self._info

    def _read_info(self, connection: Connection) -> dict[str, Any] | None:
        """The answer of :meth:`prefetch_info`'s request; ``None`` if anything is amiss (then
        :meth:`info` asks again, and says what fails as it always does)."""
        try:
            response = connection.response("GET")
            body = response.read()
            info = json.loads(body) if response.status < 400 else None
        except Exception:
            connection.close()
            return None
        self._release(connection)
        return info if isinstance(info, dict) else None

    def platform(self) -> tuple[str, str]:
        """The engine's ``(os, arch)`` as ``docker version`` reports them (``linux``,
        ``amd64``): from ``/info``, or ``/version`` for a machine name not in the table."""
        info = self.info()
        arch = engine_arch(str(info.get("Architecture") or ""))
        if arch is not None and info.get("OSType"):
            return str(info["OSType"]), arch
        version = self._checked("ask the Docker engine for its version", self._prefix + "/version")
        version = version if isinstance(version, dict) else {}
        return str(version.get("Os") or "linux"), str(version.get("Arch") or "amd64")

    def image_store(self) -> tuple[bool, str]:
        """Whether the engine keeps images in containerd, and its ID (:func:`image_store_of`)."""
        return image_store_of(self.info())

    def pull(self, name: str, tag: str, platform: str | None = None) -> EngineStream:
        """``POST /images/create``: the engine's stream of progress messages (raw chunks).

        Raises :class:`EngineRefused` with the engine's explanation when it refuses before
        streaming (unknown tag, unreachable registry); connection failures as the raw
        exception (wrap the call and the iteration in :meth:`errors`).
        """
        return self.prepare_pull(name, tag, platform)()

    def prepare_pull(
        self, name: str, tag: str, platform: str | None = None
    ) -> Callable[[], EngineStream]:
        """Send the pull's request now; the function returned reads its answer (what
        :meth:`pull` returns, or raises). The engine starts on the pull while this process
        asks for what else it needs (``/info``, the registry's manifest); the stream waits
        in the socket, unread, not a message lost. A failed send is raised by the function.
        """
        params = {"tag": tag, "fromImage": name}
        if platform:
            params["platform"] = platform
        return self._prepare(f"{self._prefix}/images/create?{urlencode(params)}", _HEADERS)

    def push(self, name: str, tag: str) -> EngineStream:
        """``POST /images/{name}/push``: the engine's stream of progress messages (raw
        chunks), for a registry that needs no credentials. Raises as :meth:`pull` does (a
        refusal before the stream: no such image)."""
        path = f"{self._prefix}/images/{quote(name, safe='/:')}/push?{urlencode({'tag': tag})}"
        return self._prepare(path, _NO_CREDENTIALS)()

    def build(self, params: Mapping[str, str], body: Readable, length: int) -> EngineStream:
        """``POST /build`` with the context's tar (``length`` bytes of ``body``, read as they
        are sent: a reader that raises stops the upload), then the engine's stream of build
        messages (raw chunks). Raises as :meth:`pull` does."""
        headers = {**_HEADERS, "Content-Type": "application/tar"}
        return self._prepare(f"{self._prefix}/build?{urlencode(params)}", headers, body, length)()

    def tag(self, image: str, repository: str, tag: str) -> None:
        """``POST /images/{image}/tag``; :class:`EngineRefused` with the engine's words."""
        query = urlencode({"repo": repository, "tag": tag})
        response, body = self._ask("POST", f"{self._prefix}/images/{quote(image)}/tag?{query}")
        if response.status >= 400:
            raise EngineRefused(_explanation(body), response.status)

    def _prepare(
        self,
        path: str,
        headers: Mapping[str, str],
        body: Readable | None = None,
        length: int = 0,
    ) -> Callable[[], EngineStream]:
        """``POST path`` (with ``length`` bytes of ``body``) sent now on a connection of its
        own; the function returned reads the answer: an :class:`EngineStream`, or
        :class:`EngineRefused`."""
        failure: BaseException | None = None
        connection: Connection | None = None
        try:
            connection = self._connection()
            with self._lock:
                self._sent.append(connection)  # closed by close(), even if never read
            if connection.sock is not None:
                # No read timeout on a stream, as docker-py's (timeout=None): the engine may
                # be silent for minutes while it unpacks or compresses a large layer.
                connection.sock.settimeout(None)
            connection.send("POST", path, headers, body, length)
        except Exception as exc:  # said when the answer is asked for, as pull() would
            failure = exc

        def answer() -> EngineStream:
            if failure is not None:
                raise failure
            assert connection is not None
            try:
                response = connection.response("POST")
                if response.status >= 400:
                    raise EngineRefused(_explanation(response.read()), response.status)
            except BaseException:
                connection.close()
                raise
            stream = EngineStream(connection, response)
            with self._lock:
                self._streams.append(stream)
            return stream

        return answer

    def close(self) -> None:
        """Close every connection, ending open streams (their readers wake)."""
        with self._lock:
            idle, self._idle = self._idle, None
            streams, self._streams = self._streams, []
            sent, self._sent = self._sent, []
            asked, self._info_asked = self._info_asked, None
        if idle is not None:
            idle.close()
        if asked is not None:
            asked.close()
        for stream in streams:
            stream.close()
        for connection in sent:  # requests sent but never read
            connection.shutdown()
            connection.close()


# -------------------------------------------------------------------- credentials


def _hostname(url: str) -> str:
    """docker-py's ``resolve_index_name``: ``https://index.docker.io/v1/`` → ``docker.io``."""
    host = url.replace("http://", "").replace("https://", "").split("/", 1)[0]
    return "docker.io" if host == "index.docker.io" else host


def _auth_file(env: Mapping[str, str]) -> Path | None:
    """The file docker-py's auth lookup reads (``docker.utils.config.find_config_file``)."""
    home = Path(os.path.expanduser("~"))
    candidates = [home / ".docker" / "config.json", home / ".dockercfg"]
    if env.get("DOCKER_CONFIG"):
        candidates.insert(0, Path(env["DOCKER_CONFIG"]) / "config.json")
    return next((path for path in candidates if path.exists()), None)


def _config(env: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The docker config docker-py reads: ``{}`` when there is none, ``None`` when it cannot
    be told what it holds (a legacy ``.dockercfg``, a file that is not readable JSON)."""
    path = _auth_file(os.environ if env is None else env)
    if path is None:
        return {}
    if path.name != "config.json":
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def needs_credentials(registries: Iterable[str], env: Mapping[str, str] | None = None) -> bool:
    """Whether docker-py would send credentials when pulling from any of ``registries``.

    Conservative: ``True`` also for anything it cannot tell (a legacy ``.dockercfg``, a
    config file that is not readable JSON), so that docker-py decides as before.
    """
    config = _config(env)
    if config is None:
        return True
    if config.get("credsStore"):
        return True
    wanted = {_hostname(registry) for registry in registries}
    helpers = config.get("credHelpers") or {}
    if not isinstance(helpers, dict):
        return True
    if any(_hostname(str(key)) in wanted for key in helpers):
        return True
    auths = config.get("auths")
    if not auths and not helpers:
        # docker-py reads a file with no auth section as nothing but auth entries.
        auths = {key: value for key, value in config.items() if isinstance(value, dict)}
    auths = auths or {}
    if not isinstance(auths, dict):
        return True
    return any(_hostname(str(key)) in wanted for key in auths)


def has_credentials(env: Mapping[str, str] | None = None) -> bool:
    """Whether the docker config docker-py reads holds any credentials (a build sends them
    all, as ``X-Registry-Config``). Conservative: ``True`` for what it cannot tell."""
    config = _config(env)
    if config is None:
        return True
    if config.get("credsStore") or config.get("credHelpers"):
        return True
    auths = config.get("auths")
    if auths is None:  # docker-py reads a file with no auth section as nothing but entries
        return any(isinstance(value, dict) for value in config.values())
    return bool(auths)
