"""Asking a registry for an image's manifest before the engine pulls it (registry API v2).

:func:`fetch_manifest` returns the :class:`~dockprogress.core.manifest.ImageManifest` the
engine will pull for a platform, so the pull's total is known before its first byte:

1. ``GET /v2/<repo>/manifests/<tag|digest>`` with :data:`~dockprogress.core.manifest.ACCEPT`;
2. on ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``, fetch a token from
   the realm (anonymously, or with the user's credentials from the docker config through
   docker-py's ``docker.auth``, credential helpers included) and ask again; a ``Basic``
   challenge is answered with those credentials directly;
3. an index (OCI index or Docker manifest list) is resolved to the entry for the platform,
   and that manifest fetched the same way.

``http`` is used for loopback registries (``127.0.0.1``, ``localhost``, ``::1``, as the
engine treats them as insecure by default), ``https`` otherwise; Docker Hub's API lives at
``registry-1.docker.io``. Loopback requests ignore proxy settings from the environment.
Every failure (unreachable, timeout, 404, bad body, no matching platform) is a
:class:`~dockprogress.errors.RegistryError`; the pull adapter then falls back to a growing
total.

A loopback registry is first asked over a plain socket
(:mod:`dockprogress.docker.http11`), on one kept-alive connection for the index and the
platform's manifest; when it answers ``401``
(credentials or a token needed), and for every other registry, the lookup is made with
``requests`` (the HTTP client docker-py depends on), imported then: a pull from a local
registry that needs no login does not load it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from dockprogress.core.manifest import (
    ACCEPT,
    DOCKER_HUB,
    ImageIndex,
    ImageManifest,
    ImageRef,
    Platform,
    parse_manifest,
)
from dockprogress.docker.http11 import Connection, tcp_connector
from dockprogress.errors import RegistryError

if TYPE_CHECKING:
    import requests

__all__ = ["fetch_manifest", "parse_challenge", "registry_base_url"]

_LOOPBACK: Final = ("127.0.0.1", "localhost", "[::1]", "::1")
_CHALLENGE_RE: Final = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def registry_base_url(registry: str) -> str:
    """``http://127.0.0.1:5000``, ``https://registry-1.docker.io``, ``https://ghcr.io``…"""
    if registry == DOCKER_HUB:
        return "https://registry-1.docker.io"
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    scheme = "http" if host in _LOOPBACK else "https"
    return f"{scheme}://{registry}"


def _host_port(registry: str) -> tuple[str, int]:
    """``127.0.0.1:5000`` → ``("127.0.0.1", 5000)``; ``[::1]:5000`` → ``("::1", 5000)``;
    no port: 80 (loopback registries are asked over http)."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = registry.partition(":")
    return host, int(port) if port.isdigit() else 80


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` → ``("bearer", {"realm": …, "service": …})``."""
    scheme, _, params = header.strip().partition(" ")
    values = {
        m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _CHALLENGE_RE.finditer(params)
    }
    return scheme.lower(), values


def _credentials(registry: str) -> dict[str, Any] | None:
    """The user's docker-config credentials for ``registry`` (``None`` when there are none)."""
    try:
        import docker.auth

        config = docker.auth.load_config()
        auth = docker.auth.resolve_authconfig(config, registry)
    except Exception:  # a broken docker config must not stop a pull: ask anonymously
        return None
    if not auth:
        return None
    return dict(auth)


class _Answer(NamedTuple):
    """A registry's ``200`` answer to a manifest request."""

    content: bytes
    content_type: str | None
    digest: str | None


class _NeedsAuth(Exception):
    """The registry answered ``401``: the lookup is left to :class:`_Session`."""


def _refusal(ref: ImageRef, status: int, reference: str, text: str) -> RegistryError:
    return RegistryError(
        f"registry {ref.registry} answered {status} for the manifest "
        f"of {ref.repository}:{reference}: {text[:300].strip()}"
    )


class _LoopbackSession:
    """A manifest lookup on a loopback registry over ``http.client``, without credentials."""

    def __init__(self, ref: ImageRef, timeout: float) -> None:
        self.ref = ref
        host, port = _host_port(ref.registry)
        self.connection = Connection(tcp_connector(host, port, timeout), ref.registry)

    def close(self) -> None:
        self.connection.close()

    def manifest(self, reference: str) -> _Answer:
        path = f"/v2/{self.ref.repository}/manifests/{reference}"
        try:
            response = self.connection.request("GET", path, {"Accept": ACCEPT})
            body = response.read()
        except OSError as exc:
            self.connection.close()
            raise RegistryError(f"registry {self.ref.registry} could not be asked: {exc}") from exc
        if response.status == 401:
            raise _NeedsAuth
        if response.status != 200:
            raise _refusal(self.ref, response.status, reference, body.decode("utf-8", "replace"))
        return _Answer(
            body, response.header("Content-Type"), response.header("Docker-Content-Digest")
        )


class _Session:
    """One manifest lookup: a requests session plus the token it earned."""

    def __init__(self, ref: ImageRef, timeout: float) -> None:
        import requests

        self.ref = ref
        self.base = registry_base_url(ref.registry)
        self.timeout = (min(timeout, 5.0), timeout)
        self.http = requests.Session()
        if self.base.startswith("http://"):
            self.http.trust_env = False  # loopback: never through a proxy
        self.authorization: str | None = None

    def close(self) -> None:
        self.http.close()

    def get(self, url: str, headers: dict[str, str]) -> requests.Response:
        import requests

        try:
            return self.http.get(url, headers=headers, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise RegistryError(f"registry {self.ref.registry} could not be asked: {exc}") from exc

    def manifest(self, reference: str) -> _Answer:
        url = f"{self.base}/v2/{self.ref.repository}/manifests/{reference}"
        headers = {"Accept": ACCEPT}
        if self.authorization:
            headers["Authorization"] = self.authorization
        response = self.get(url, headers)
        if response.status_code == 401 and self.authorization is None:
            self.authorization = self._authorize(response.headers.get("WWW-Authenticate", ""))
            headers["Authorization"] = self.authorization
            response = self.get(url, headers)
        if response.status_code != 200:
            raise _refusal(self.ref, response.status_code, reference, response.text)
        return _Answer(
            response.content,
            response.headers.get("Content-Type"),
            response.headers.get("Docker-Content-Digest"),
        )

    def _authorize(self, challenge: str) -> str:
        scheme, params = parse_challenge(challenge)
        creds = _credentials(self.ref.registry)
        if scheme == "basic":
            if not creds or not creds.get("username"):
                raise RegistryError(
                    f"registry {self.ref.registry} wants a login: run `docker login "
                    f"{self.ref.registry}`"
                )
            import base64

            pair = f"{creds['username']}:{creds.get('password') or ''}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if scheme != "bearer" or not params.get("realm"):
            raise RegistryError(
                f"registry {self.ref.registry} answered 401 with an unknown challenge {challenge!r}"
            )
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{self.ref.repository}:pull")
        import requests

        auth: tuple[str, str] | None = None
        if creds and creds.get("username") and creds.get("password"):
            auth = (str(creds["username"]), str(creds["password"]))
        try:
            answer = self.http.get(params["realm"], params=query, auth=auth, timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            raise RegistryError(
                f"token service {params['realm']} could not be asked: {exc}"
            ) from exc
        if answer.status_code != 200:
            raise RegistryError(
                f"token service {params['realm']} answered {answer.status_code}: "
                f"{answer.text[:300].strip()}"
            )
        try:
            body = answer.json()
        except ValueError as exc:
            raise RegistryError(f"token service {params['realm']} answered no JSON") from exc
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise RegistryError(f"token service {params['realm']} answered no token")
        return f"Bearer {token}"


def fetch_manifest(ref: ImageRef, platform: Platform, *, timeout: float = 10.0) -> ImageManifest:
    """The manifest the engine will pull for ``ref`` on ``platform``; ``RegistryError`` if not."""
    if registry_base_url(ref.registry).startswith("http://"):
        loopback = _LoopbackSession(ref, timeout)
        try:
            return _lookup(loopback, ref, platform)
        except _NeedsAuth:
            pass  # credentials or a token: requests' session below knows how
        finally:
            loopback.close()
    session = _Session(ref, timeout)
    try:
        return _lookup(session, ref, platform)
    finally:
        session.close()


def _lookup(
    session: _LoopbackSession | _Session, ref: ImageRef, platform: Platform
) -> ImageManifest:
    answer = session.manifest(ref.reference)
    found = parse_manifest(answer.content, answer.content_type, digest=answer.digest)
    if isinstance(found, ImageIndex):
        entry = found.choose(platform)
        answer = session.manifest(entry.digest)
        found = parse_manifest(answer.content, answer.content_type, digest=entry.digest)
        if isinstance(found, ImageIndex):
            raise RegistryError(f"manifest index of {ref.canonical} points to another index")
    return found
