"""The test bed's modern engine: Docker 26.1 with the containerd image store, beside 20.10.

Debian 12 ships engine 20.10 (API 1.41, classic image store); users run 26 to 29, where the
containerd image store is the default from 29. This module runs Debian 13's engine beside the
classic one, without touching the system's apt set-up or its engine:

- ``apt-get download`` of Debian 13's ``docker.io``, ``containerd`` and ``docker-buildx`` with a
  private source list, list and cache folder under ``$TESTBED_DIR/modern/apt`` (the mirror is
  the one the system's own Debian source names), then ``dpkg-deb -x`` into
  ``$TESTBED_DIR/modern/root``. Debian 13's ``runc`` needs glibc 2.38, so the containers run
  with Debian 12's ``runc`` (installed with ``docker.io`` for the classic engine).
- its own ``containerd`` (config, root, state and socket of its own; CRI plugin off) and its
  own ``dockerd`` with ``{"features": {"containerd-snapshotter": true}}``, ``--data-root``,
  ``--exec-root``, ``--pidfile``, ``--bridge=none --iptables=false``, listening on a unix
  socket and on ``tcp://127.0.0.1:$TESTBED_TLS_PORT`` (default 23761) with ``--tlsverify``:
  a CA, a server certificate and a client certificate are made here with ``openssl`` into
  ``$TESTBED_DIR/tls`` (``ca.pem``, ``cert.pem``, ``key.pem``: a ``DOCKER_CERT_PATH``).
- the suite's shared fixture images (``dp/base``, ``dp/python``, ``dp/postgres``) pulled into it
  from the bed's registry, so logs and exec tests find them there as on the classic engine.

Every process started here has its pid recorded next to the others in ``$TESTBED_DIR``;
:func:`stop` signals only those pids. BuildKit's client is
``$TESTBED_DIR/modern/root/usr/libexec/docker/cli-plugins/docker-buildx``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Say = Callable[[str], None]

PACKAGES = ("docker.io", "containerd", "docker-buildx")
SUITE = "trixie"  # Debian 13
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The fixture images every engine must hold (tests may never remove them).
SHARED_IMAGES = ("base", "python", "postgres", "tools")


class SetupError(Exception):
    """A set-up step failed; the message is one line that says what to do."""


@dataclass(frozen=True)
class Modern:
    """Where the modern engine's files, sockets and pid files are."""

    state_dir: Path
    tls_port: int

    @property
    def home(self) -> Path:
        return self.state_dir / "modern"

    @property
    def root(self) -> Path:
        """The extracted Debian 13 packages."""
        return self.home / "root"

    @property
    def run_dir(self) -> Path:
        # Unix socket paths are limited to 107 bytes: a deep checkout would overflow them, so
        # sockets and the exec root live under /run, named after this bed's folder.
        tag = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:10]
        return Path("/run") / f"dockprogress-{tag}"

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tls_host(self) -> str:
        return f"tcp://127.0.0.1:{self.tls_port}"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def buildx(self) -> Path:
        return self.root / "usr/libexec/docker/cli-plugins/docker-buildx"

    @property
    def dockerd_pidfile(self) -> Path:
        return self.state_dir / "modern-dockerd.pid"

    @property
    def containerd_pidfile(self) -> Path:
        return self.state_dir / "modern-containerd.pid"

    def env(self) -> dict[str, str]:
        """The environment the modern daemons run in: their own binaries first, then the
        system's (Debian 12's runc)."""
        path = f"{self.root / 'usr/sbin'}:{self.root / 'usr/bin'}:{SYSTEM_PATH}"
        return {**os.environ, "PATH": path}


def from_env(state_dir: Path) -> Modern:
    return Modern(state_dir=state_dir, tls_port=int(os.environ.get("TESTBED_TLS_PORT", "23761")))


def enabled() -> bool:
    """``TESTBED_MODERN=0`` leaves the modern engine out (a quicker bed for one engine)."""
    return os.environ.get("TESTBED_MODERN", "1") not in ("0", "false", "no")


# ---------------------------------------------------------------- packages


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the system's own apt sources name (not the security archive)."""
    uris: list[str] = []
    for path in sorted((sources / "sources.list.d").glob("*.sources")):
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "uris":
                uris.extend(value.split())
    for name in [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.list"))]:
        if name.exists():
            for line in name.read_text(errors="replace").splitlines():
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb":
                    uris.append(words[1])
    for uri in uris:
        if re.match(r"https?://", uri) and "security" not in uri and "/debian" in uri:
            return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def _apt_options(apt_dir: Path) -> list[str]:
    return [
        "-o", "Dir::Etc::SourceList=/dev/null",
        "-o", f"Dir::Etc::SourceParts={apt_dir / 'parts'}",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", f"Dir::Cache={apt_dir / 'cache'}",
        "-o", f"Dir::Cache::Archives={apt_dir / 'archives'}",
        "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip


def _run(argv: list[str], what: str, cwd: Path | None = None, **kwargs: object) -> None:
    try:
        run = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    except OSError as exc:
        raise SetupError(f"{what}: cannot run {argv[0]} ({exc.strerror})") from exc
    if run.returncode != 0:
        last = (run.stderr.strip() or run.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise SetupError(f"{what} failed (exit {run.returncode}): {last[0]}")


def ensure_packages(modern: Modern, say: Say) -> None:
    """Download and unpack Debian 13's engine, containerd and buildx (once)."""
    stamp = modern.root / ".unpacked"
    if stamp.exists() and stamp.read_text().split() == list(PACKAGES):
        return
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SetupError(
            "the modern engine needs apt-get and dpkg-deb (a Debian machine);"
            " set TESTBED_MODERN=0 to run the bed with the classic engine only"
        )
    apt_dir = modern.home / "apt"
    for sub in ("parts", "lists/partial", "cache", "archives/partial", "debs"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "parts" / "debian13.sources").write_text(
        f"Types: deb\nURIs: {debian_mirror()}\nSuites: {SUITE}\nComponents: main\n"
        f"Signed-By: {KEYRING}\n"
    )
    say(f"downloading Debian 13's {', '.join(PACKAGES)} (private apt state, system untouched)")
    options = _apt_options(apt_dir)
    _run(["apt-get", *options, "update"], "apt-get update (Debian 13 lists)")
    debs = apt_dir / "debs"
    for old in debs.glob("*.deb"):
        old.unlink()
    _run(["apt-get", *options, "download", *PACKAGES], "apt-get download", cwd=debs)
    if modern.root.exists():
        shutil.rmtree(modern.root)
    modern.root.mkdir(parents=True)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(modern.root)], f"dpkg-deb -x {deb.name}")
    if not (modern.root / "usr/sbin/dockerd").exists():
        raise SetupError(
            f"Debian 13's docker.io unpacked without usr/sbin/dockerd in {modern.root}"
        )
    stamp.write_text(" ".join(PACKAGES) + "\n")


# ---------------------------------------------------------------- TLS material


def ensure_tls(tls_dir: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    wanted = ("ca.pem", "cert.pem", "key.pem", "server-cert.pem", "server-key.pem")
    if all((tls_dir / name).exists() for name in wanted):
        return
    if shutil.which("openssl") is None:
        raise SetupError("openssl is missing: apt-get install -y openssl")
    tls_dir.mkdir(parents=True, exist_ok=True)

    def ssl(*args: str) -> None:
        _run(["openssl", *args], f"openssl {args[0]}", cwd=tls_dir)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-keyout",
        "ca-key.pem", "-out", "ca.pem", "-subj", "/CN=dockprogress test bed CA")  # fmt: skip
    (tls_dir / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    (tls_dir / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=dockprogress client")):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out",
            f"{name}.csr", "-subj", subject)  # fmt: skip
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-days", "3650", "-out", f"{name}-cert.pem", "-extfile",
            f"{name}.ext")  # fmt: skip
    # The names DOCKER_CERT_PATH expects for the client's side.
    shutil.copyfile(tls_dir / "client-cert.pem", tls_dir / "cert.pem")
    shutil.copyfile(tls_dir / "client-key.pem", tls_dir / "key.pem")
    for key in tls_dir.glob("*key.pem"):
        key.chmod(0o600)


# ---------------------------------------------------------------- daemons


def containerd_config(modern: Modern) -> str:
    return f"""\
version = 2
root = "{modern.home / "containerd"}"
state = "{modern.run_dir / "containerd-state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{modern.containerd_socket}"

[ttrpc]
  address = "{modern.run_dir / "containerd.sock.ttrpc"}"

# Collect garbage after every deletion (the default waits for 100 changes): a removed
# image's layers really leave, so the next pull of it downloads them again, as tests need.
[plugins."io.containerd.gc.v1.scheduler"]
  deletion_threshold = 1
  schedule_delay = "0s"
  startup_delay = "100ms"
"""


def daemon_json() -> str:
    return json.dumps({"features": {"containerd-snapshotter": True}}, indent=2) + "\n"


def engine_info(docker_host: str, timeout: float = 10.0) -> dict[str, object] | None:
    """``docker version``'s server part and the driver status, or None if no answer."""
    try:
        probe = subprocess.run(
            ["docker", "-H", docker_host, "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    try:
        info = json.loads(probe.stdout)
    except ValueError:
        return None
    return info if isinstance(info, dict) and info.get("ServerVersion") else None


def containerd_store(info: dict[str, object]) -> bool:
    """True when the engine keeps images in containerd (``driver-type`` io.containerd…)."""
    status = info.get("DriverStatus") or []
    return any(isinstance(pair, list) and pair and "containerd" in str(pair[-1]) for pair in status)


def ensure(
    modern: Modern,
    say: Say,
    start: Callable[..., Any],
    wait: Callable[..., None],
    pid_running: Callable[[Path, str], int | None],
) -> tuple[dict[str, int | None], bool]:
    """Bring the modern engine up; return its pids (None: not started by the bed) and
    whether its dockerd was started by this call.

    ``start``, ``wait`` and ``pid_running`` are testbed_bed's helpers (pid files, logs).
    """
    ensure_packages(modern, say)
    ensure_tls(modern.tls_dir)
    modern.run_dir.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int | None] = {"modern-containerd": None, "modern-dockerd": None}
    if engine_info(modern.docker_host) is not None:
        pids["modern-containerd"] = pid_running(modern.containerd_pidfile, "containerd")
        pids["modern-dockerd"] = pid_running(modern.dockerd_pidfile, "dockerd")
        return pids, False
    env = modern.env()
    if pid_running(modern.containerd_pidfile, "containerd") is None:
        config = modern.home / "containerd.toml"
        config.write_text(containerd_config(modern))
        modern.containerd_socket.unlink(missing_ok=True)  # a stale one would pass the wait
        say("starting Debian 13's containerd for the modern engine")
        proc = start(
            [str(modern.root / "usr/bin/containerd"), "--config", str(config)],
            modern.home / "containerd.log",
            modern.containerd_pidfile,
            env,
        )
        wait(modern.containerd_socket.exists, "modern containerd", 30, proc)
        pids["modern-containerd"] = proc.pid
    config = modern.home / "daemon.json"
    config.write_text(daemon_json())
    tls = modern.tls_dir
    say(
        f"starting Docker 26 (containerd image store) on {modern.docker_host} and {modern.tls_host}"
    )
    proc = start(
        [
            str(modern.root / "usr/sbin/dockerd"),
            "--config-file",
            str(config),
            "--containerd",
            str(modern.containerd_socket),
            "--data-root",
            str(modern.home / "data"),
            "--exec-root",
            str(modern.run_dir / "exec"),
            "--pidfile",
            str(modern.run_dir / "dockerd.pid"),
            "-H",
            modern.docker_host,
            "-H",
            modern.tls_host,
            "--tlsverify",
            "--tlscacert",
            str(tls / "ca.pem"),
            "--tlscert",
            str(tls / "server-cert.pem"),
            "--tlskey",
            str(tls / "server-key.pem"),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--userland-proxy=false",
        ],
        modern.home / "dockerd.log",
        modern.dockerd_pidfile,
        env,
    )
    wait(lambda: engine_info(modern.docker_host) is not None, "modern dockerd", 90, proc)
    pids["modern-dockerd"] = proc.pid
    return pids, True


def ensure_images(modern: Modern, refs: list[str], say: Say, *, just_started: bool) -> None:
    """Pull the suite's shared fixture images into the modern engine (from the registry)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    for ref in refs:
        have = subprocess.run(
            ["docker", "-H", modern.docker_host, "image", "inspect", ref],
            capture_output=True,
            check=False,
            env=env,
        )
        if have.returncode == 0:
            continue
        t0 = time.monotonic()
        _run(
            ["docker", "-H", modern.docker_host, "pull", "-q", ref], f"pull {ref} (modern)", env=env
        )
        say(f"{ref}: pulled into the modern engine in {time.monotonic() - t0:.1f} s")
    if just_started:
        drop_pull_leases(modern)


# containerd's own random lease ids (``leases.WithRandomID``), as the engine's pulls use;
# BuildKit's leases have other ids and must never be touched (its cache lives on them).
_PULL_LEASE = re.compile(r"^[0-9]+-[A-Za-z0-9_-]{4}$")  # base64url: _ and - too


def drop_pull_leases(modern: Modern) -> None:
    """Drop pull leases left over from before this start of the engine.

    Seen on a first start: two pull leases (24 h expiry, no pull running) that kept every
    layer pulled meanwhile, so a removed image's layers stayed and its next pull downloaded
    nothing. Only right after the bed started the engine (no pull of anyone's can run yet),
    and only leases shaped like the engine's pull leases: BuildKit's are left alone.
    """
    ctr = [str(modern.root / "usr/bin/ctr"), "-a", str(modern.containerd_socket), "-n", "moby"]
    found = subprocess.run([*ctr, "leases", "ls"], capture_output=True, text=True, check=False)
    for line in found.stdout.splitlines()[1:]:
        words = line.split()
        labels = words[-1] if len(words) >= 3 else ""  # ID, CREATED AT, LABELS
        only_expiry = labels.startswith("containerd.io/gc.expire=") and "," not in labels
        if words and _PULL_LEASE.match(words[0]) and only_expiry:
            subprocess.run([*ctr, "leases", "rm", words[0]], capture_output=True, check=False)
