"""Registries the push tests start themselves: Debian's ``docker-registry`` with htpasswd auth.

:class:`AuthRegistry` writes a config (``auth: htpasswd``, a bcrypt entry made with the
``bcrypt`` package), serves it on a free 127.0.0.1 port with storage in a temporary folder,
waits for ``/v2/`` to answer 401, and stops the process it started by its pid. The engines
treat 127.0.0.0/8 as an insecure registry by default (plain HTTP), as they do the bed's own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import bcrypt
import docker
import pytest

__all__ = ["AuthRegistry", "forget_repository", "registry_status", "retagged"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def registry_status(url: str, *, user: str | None = None, password: str | None = None) -> int:
    """The HTTP status of a GET on the registry ``url`` (no proxy, optional basic auth)."""
    request = urllib.request.Request(url)
    if user is not None and password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    request.add_header(
        "Accept",
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.oci.image.manifest.v1+json",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _call(method: str, url: str, accept: str | None = None) -> tuple[int, bytes, str | None]:
    request = urllib.request.Request(url, method=method)
    if accept:
        request.add_header("Accept", accept)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return (
                int(response.status),
                response.read(),
                response.headers.get("Docker-Content-Digest"),
            )
    except urllib.error.HTTPError as exc:
        return int(exc.code), b"", None


def forget_repository(registry: str, repository: str, tag: str = "1") -> int:
    """Make ``registry`` (delete enabled, as the bed's) forget ``repository``: its layer and
    config links, then its manifest. An engine that remembers pushing the layers there can no
    longer mount them from it into another repository (the containerd store would: its
    records of where a layer came from do not mind the port). Returns the links deleted."""
    base = f"http://{registry}/v2/{repository}"
    accept = (
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.oci.image.manifest.v1+json"
    )
    status, body, digest = _call("GET", f"{base}/manifests/{tag}", accept)
    if status != 200:
        return 0
    manifest = json.loads(body)
    blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    deleted = sum(_call("DELETE", f"{base}/blobs/{blob}")[0] == 202 for blob in blobs)
    if digest:
        _call("DELETE", f"{base}/manifests/{digest}")
    return deleted


class AuthRegistry:
    """A registry on 127.0.0.1:<free port> that answers only ``user`` with ``password``."""

    def __init__(self) -> None:
        self.user = "dp-pusher"
        self.password = secrets.token_urlsafe(12)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="dp-auth-registry-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AuthRegistry:
        binary = shutil.which("docker-registry")
        if binary is None:
            pytest.skip("Debian's docker-registry is not installed (the test bed installs it)")
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=5)).decode()
        (self._dir / "htpasswd").write_text(f"{self.user}:{hashed}\n")
        (self._dir / "storage").mkdir()
        config = self._dir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self._dir / 'storage'}\n"
            f"http:\n  addr: {self.address}\n"
            "auth:\n  htpasswd:\n    realm: dp-test-registry\n"
            f"    path: {self._dir / 'htpasswd'}\n"
        )
        log = (self._dir / "registry.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 20
        while registry_status(f"http://{self.address}/v2/") != 401:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the auth registry did not start: {self.log()}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self._dir / "registry.log").read_text(errors="replace")[-2000:]
        return ""

    def status(self, path: str, *, authenticated: bool = True) -> int:
        user, password = (self.user, self.password) if authenticated else (None, None)
        return registry_status(f"http://{self.address}{path}", user=user, password=password)

    def docker_config(self, folder: Path) -> Path:
        """A docker CLI config folder whose ``auths`` log in to this registry."""
        folder.mkdir(parents=True, exist_ok=True)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        (folder / "config.json").write_text(json.dumps({"auths": {self.address: {"auth": token}}}))
        return folder

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()  # by its pid: only the process this object started
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> AuthRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def retagged(image: str, registry: str, suffix: str = "") -> Iterator[str]:
    """``image`` tagged under ``registry`` (its repository name + ``suffix``) on the engine of
    ``DOCKER_HOST``; untagged after. A new repository name keeps the engine from mounting
    layers it pushed to another repository of the same registry."""
    repository, _, tag = image.split("/", 1)[1].rpartition(":")
    name = f"{registry}/{repository}{suffix}:{tag}"
    client = docker.from_env()
    try:
        client.images.get(image).tag(name)
        yield name
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(name)
        client.close()
