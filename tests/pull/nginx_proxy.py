"""A private bandwidth-limited nginx in front of the test bed's registry, started and stopped
by pid, so pull tests can cut a registry mid-pull without touching the shared one.

Same settings as the test bed's front on :5001 (``proxy_buffering on`` is what makes
``limit_rate`` bite, see REFERENCE.md §1), on a port of our own on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

_CONF = """daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
user root;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/client_body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_buffering on;
            proxy_max_temp_file_size 0;
            proxy_read_timeout 300s;
            limit_rate {rate};
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ThrottledProxy:
    """``start()``/``stop()`` an nginx on ``127.0.0.1:port`` proxying to ``upstream``."""

    def __init__(self, upstream: str = "127.0.0.1:5000", *, rate: str = "2m", port: int = 0):
        self.upstream = upstream
        self.rate = rate
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="dp-pull-nginx-"))
        (self.root / "tmp").mkdir()
        self.conf = self.root / "nginx.conf"
        self.conf.write_text(
            _CONF.format(root=self.root, port=self.port, upstream=upstream, rate=rate)
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.root), "-e", str(self.root / "error.log"), "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.root / 'error.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not listen on {self.address}")

    def stop(self) -> None:
        """Stop by pid (SIGTERM = nginx's fast shutdown: open connections are cut)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
