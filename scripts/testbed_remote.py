"""The test bed's remote ways into the classic engine: plain tcp and ssh, on 127.0.0.1 only.

- **tcp**: Debian's ``socat`` listening on ``127.0.0.1:$TESTBED_TCP_PORT`` (default 23750) and
  forwarding each connection to the classic engine's unix socket: ``DOCKER_HOST=tcp://…``
  reaches the engine as a remote one would be reached (no TLS: loopback only, test use only).
- **ssh**: Debian's ``openssh-server`` as a private ``sshd`` on ``127.0.0.1:$TESTBED_SSH_PORT``
  (default 2222), with its own config, host key, pid file and log under ``$TESTBED_DIR/ssh``,
  keys only (``PermitRootLogin prohibit-password``, no passwords, no PAM). A client key made
  for the test (``id_ed25519``) is its only authorized key. ``$TESTBED_DIR/ssh/client-home``
  is a home directory for the client side: ``.ssh/config`` names that key for 127.0.0.1 and
  ``.ssh/known_hosts`` holds the host key, so ``HOME=…/client-home`` with
  ``DOCKER_HOST=ssh://USER@127.0.0.1:2222`` reaches the engine (the remote side runs
  ``docker system dial-stdio`` with the docker CLI on its PATH, as the docker CLI would).

Both processes run in the foreground of their own session; their pids are recorded in
``$TESTBED_DIR`` (``sshd.pid``, ``socat.pid``) and :func:`stop` signals only those. Standard
library only, like the rest of scripts/testbed.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# binary -> Debian package (merged into testbed_bed.REQUIRED)
PACKAGES = {"sshd": "openssh-server", "socat": "socat", "ssh-keygen": "openssh-client"}
SSHD = "/usr/sbin/sshd"  # sshd must be started by its absolute path (it re-executes itself)
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it; the service makes it


@dataclass(frozen=True)
class Remote:
    """Ports and files of the tcp forwarder and the private sshd."""

    state_dir: Path
    tcp_port: int
    ssh_port: int

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def client_home(self) -> Path:
        return self.ssh_dir / "client-home"

    @property
    def key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def user(self) -> str:
        return getpass.getuser()

    @property
    def tcp_host(self) -> str:
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def ssh_host(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.ssh_port}"

    @property
    def sshd_pidfile(self) -> Path:
        return self.state_dir / "sshd.pid"

    @property
    def socat_pidfile(self) -> Path:
        return self.state_dir / "socat.pid"


def from_env(state_dir: Path) -> Remote:
    return Remote(
        state_dir=state_dir,
        tcp_port=int(os.environ.get("TESTBED_TCP_PORT", "23750")),
        ssh_port=int(os.environ.get("TESTBED_SSH_PORT", "2222")),
    )


# ---------------------------------------------------------------- probes


def tcp_answers(remote: Remote, timeout: float = 3.0) -> bool:
    """``GET /_ping`` through the forwarder answers ``OK``."""
    try:
        with socket.create_connection(("127.0.0.1", remote.tcp_port), timeout=timeout) as conn:
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = conn.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK")


def ssh_answers(remote: Remote, timeout: float = 3.0) -> bool:
    """An SSH server greets on the port (``SSH-2.0-…``)."""
    try:
        with socket.create_connection(("127.0.0.1", remote.ssh_port), timeout=timeout) as conn:
            return conn.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


# ---------------------------------------------------------------- files


def sshd_config(remote: Remote) -> str:
    d = remote.ssh_dir
    return f"""\
# The test bed's private sshd (scripts/testbed_remote.py); loopback only, keys only.
Port {remote.ssh_port}
ListenAddress 127.0.0.1
HostKey {d / "ssh_host_ed25519_key"}
PidFile none
AuthorizedKeysFile {d / "authorized_keys"}
PermitRootLogin prohibit-password
AllowUsers {remote.user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
MaxStartups 100:30:200
MaxSessions 100
LogLevel VERBOSE
"""


def _keygen(path: Path) -> None:
    if path.exists() and path.with_suffix(".pub").exists():
        return
    path.unlink(missing_ok=True)
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "dockprogress-testbed",
            "-f",
            str(path),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def ensure_files(remote: Remote) -> tuple[Path, bool]:
    """Host key, client key, authorized_keys, the client's home; the sshd config, changed?"""
    d = remote.ssh_dir
    d.mkdir(parents=True, exist_ok=True)
    host_key = d / "ssh_host_ed25519_key"
    _keygen(host_key)
    _keygen(remote.key)
    (d / "authorized_keys").write_text(remote.key.with_suffix(".pub").read_text())
    home_ssh = remote.client_home / ".ssh"
    home_ssh.mkdir(parents=True, exist_ok=True)
    home_ssh.chmod(0o700)
    (home_ssh / "config").write_text(
        f"Host 127.0.0.1\n    Port {remote.ssh_port}\n    User {remote.user}\n"
        f"    IdentityFile {remote.key}\n"
    )
    host_pub = host_key.with_suffix(".pub").read_text().split()
    (home_ssh / "known_hosts").write_text(
        f"[127.0.0.1]:{remote.ssh_port} {host_pub[0]} {host_pub[1]}\n"
    )
    config = d / "sshd_config"
    text = sshd_config(remote)
    changed = not config.exists() or config.read_text() != text
    if changed:
        config.write_text(text)
    return config, changed


# ---------------------------------------------------------------- up, down


class _Running:
    """What testbed_bed.wait_until polls for a process it did not start: still running?"""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return None if Path(f"/proc/{self.pid}").exists() else -1


def ensure(
    remote: Remote,
    engine_socket: str,
    *,
    say: Callable[[str], None],
    start: Callable[..., Any],
    wait: Callable[..., None],
    pid_running: Callable[[Path, str], int | None],
) -> dict[str, int | None]:
    """Start what is not answering; return the pids started here (None: not ours)."""
    pids: dict[str, int | None] = {}
    if tcp_answers(remote):
        pids["socat"] = pid_running(remote.socat_pidfile, "socat")
    else:
        say(f"starting socat on {remote.tcp_host} -> unix://{engine_socket}")
        proc = start(
            [
                "socat",
                f"TCP-LISTEN:{remote.tcp_port},bind=127.0.0.1,reuseaddr,fork,backlog=128",
                f"UNIX-CONNECT:{engine_socket}",
            ],
            remote.state_dir / "socat.log",
            remote.socat_pidfile,
        )
        wait(lambda: tcp_answers(remote), "socat", 20, proc)
        pids["socat"] = proc.pid
    config, changed = ensure_files(remote)
    if ssh_answers(remote):
        pids["sshd"] = pid = pid_running(remote.sshd_pidfile, "sshd")
        if changed and pid is not None:
            say(f"sshd config changed: reloading pid {pid}")
            os.kill(pid, signal.SIGHUP)  # sshd re-executes itself with the new config
            wait(lambda: ssh_answers(remote), "sshd", 20, _Running(pid))
    else:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        say(f"starting a private sshd on 127.0.0.1:{remote.ssh_port} (keys in {remote.ssh_dir})")
        proc = start(
            [SSHD, "-D", "-e", "-f", str(config)],
            remote.ssh_dir / "sshd.log",
            remote.sshd_pidfile,
        )
        wait(lambda: ssh_answers(remote), "sshd", 20, proc)
        pids["sshd"] = proc.pid
    return pids


def stop(remote: Remote, stop_pid: Callable[[Path, str], None]) -> None:
    stop_pid(remote.sshd_pidfile, "sshd")
    stop_pid(remote.socat_pidfile, "socat")


def status(remote: Remote) -> dict[str, object]:
    return {
        "tcp_host": remote.tcp_host,
        "tcp": tcp_answers(remote),
        "ssh_host": remote.ssh_host,
        "ssh": ssh_answers(remote),
        "ssh_client_home": str(remote.client_home),
    }
