"""Private fault-injection pieces for the engine cases: started, stopped and cleaned up by pid.

Everything here is our own, so a case can kill it without touching the shared test bed:

* :class:`OwnRegistry`: ``/usr/bin/docker-registry`` on a free 127.0.0.1 port, storage in a
  temporary directory (kept across stop/start, so a registry "comes back" with its images);
* :class:`OwnFront`: an nginx with ``limit_rate`` in front of it (``proxy_buffering on``
  makes the limit bite, see REFERENCE.md §1), so a pull lasts seconds and can be cut;
* :class:`OwnDockerd`: a second dockerd (``--live-restore``, no bridge, no iptables) with
  its own data root, exec root, pid file and socket, and the containerd it starts itself;
  restarting it does not touch the engine everyone else uses;
* :func:`build_unique_image`: an image of random (incompressible) layers that exist nowhere
  else, so no other session's pull or cache can make its layers ``Already exists``.

Processes are stopped by the pid we started (never by name).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import docker.errors

from dockprogress.docker.unixsock import close_failed_connects


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


class OwnRegistry:
    """A registry of our own on ``127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dpf-reg-"))
        self.port = free_port()
        self.config = self.root / "config.yml"
        self.config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["/usr/bin/docker-registry", "serve", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_listening(self.port, self.process, "docker-registry", 15)

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


_NGINX = """daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log crit;
user root;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/t/body;
    proxy_temp_path {root}/t/proxy;
    fastcgi_temp_path {root}/t/fcgi;
    uwsgi_temp_path {root}/t/uwsgi;
    scgi_temp_path {root}/t/scgi;
    server {{
        listen 127.0.0.1:{port} reuseport;
        client_max_body_size 0;
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_buffering on;
            proxy_max_temp_file_size 0;
            limit_rate {rate};
        }}
    }}
}}
"""


class OwnFront:
    """A bandwidth-limited nginx of our own in front of ``upstream``; stop/start keeps the port."""

    def __init__(self, upstream: str, rate: str = "3m") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dpf-nginx-"))
        (self.root / "t").mkdir()
        self.port = free_port()
        self.conf = self.root / "nginx.conf"
        self.conf.write_text(
            _NGINX.format(root=self.root, port=self.port, upstream=upstream, rate=rate)
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.root), "-e", str(self.root / "error.log"), "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
        )
        wait_listening(self.port, self.process, "nginx", 15)

    def stop(self) -> None:
        """SIGTERM is nginx's fast shutdown: transfers in progress are cut."""
        process, self.process = self.process, None
        stop_process(process)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class OwnDockerd:
    """A second dockerd on ``unix://<tmp>/docker.sock``, with live-restore."""

    def __init__(self) -> None:
        # Short path: a unix socket path is limited to 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="dpf-d-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 60.0) -> None:
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                dockerd,
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
                "--live-restore",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "docker.pid"),
                "-H",
                self.host,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log.read_text()[-2000:]}")
            # docker-py leaks the socket of a failed unix connect: probe it ourselves first.
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(str(self.socket))
            except OSError:
                time.sleep(0.2)
                continue
            # A pinned API version: the client then asks nothing when built, so a failed
            # ping is the only failure and the client is always closed.
            with contextlib.closing(
                docker.DockerClient(base_url=self.host, timeout=5, version="1.41")
            ) as client:
                try:
                    client.ping()
                    return
                except docker.errors.DockerException:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer on {self.host} within {timeout} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, timeout: int = 60) -> docker.DockerClient:
        return close_failed_connects(docker.DockerClient(base_url=self.host, timeout=timeout))

    def load_from(self, main: docker.DockerClient, ref: str) -> None:
        """Copy image ``ref`` from the main engine (``docker save | docker load``)."""
        data = b"".join(main.images.get(ref).save(named=True))
        with contextlib.closing(self.client()) as client:
            client.images.load(data)

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(Exception), contextlib.closing(self.client()) as client:
                for container in client.containers.list(all=True):
                    container.remove(force=True)
        self.stop()
        # dockerd bind-mounts its data root onto itself; undo that before removing it.
        data = self.root / "data"
        for _ in range(3):
            if subprocess.run(["mountpoint", "-q", str(data)], check=False).returncode != 0:
                break
            subprocess.run(["umount", str(data)], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def build_unique_image(
    client: docker.DockerClient, repository: str, layer_sizes_mb: tuple[int, ...]
) -> str:
    """Build ``repository:<random tag>`` FROM scratch with random layers; return the ref."""
    tag = uuid.uuid4().hex[:12]
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        lines = ["FROM scratch"]
        for index, size in enumerate(layer_sizes_mb):
            name = f"blob{index}"
            payload = os.urandom(size << 20)
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
            lines.append(f"COPY {name} /{name}")
        dockerfile = ("\n".join(lines) + "\n").encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    ref = f"{repository}:{tag}"
    client.images.build(fileobj=context, custom_context=True, tag=ref, rm=True)
    return ref


def push(client: docker.DockerClient, ref: str) -> None:
    repository, _, tag = ref.rpartition(":")
    for message in client.api.push(repository, tag=tag, stream=True, decode=True):
        if "errorDetail" in message or "error" in message:
            raise RuntimeError(f"push of {ref} failed: {message}")


def remove_everywhere(client: docker.DockerClient, *refs: str) -> None:
    """Remove our own images (force, every tag); absent ones are fine."""
    for ref in refs:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            image: Any = client.images.get(ref)
            client.images.remove(image.id, force=True)


#: Where cases note what they observed (figures for RELIABILITY.md); one JSON object a line.
OBSERVED = Path(os.environ.get("DOCKPROGRESS_FAULTS_OBSERVED", tempfile.gettempdir()))


def observe(case: str, **figures: Any) -> None:
    """Append what ``case`` observed to ``$DOCKPROGRESS_FAULTS_OBSERVED/faults-observed.jsonl``."""
    import json

    with contextlib.suppress(OSError), (OBSERVED / "faults-observed.jsonl").open("a") as out:
        out.write(json.dumps({"case": case, "ts": time.time(), **figures}, default=str) + "\n")
