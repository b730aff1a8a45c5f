"""The test bed's Redis: Debian 12's ``redis-server`` (7.0) for the fleet bus tests.

``ensure_redis(state_dir)`` installs the package when missing (as root, without letting apt
start Debian's own service) and starts one ``redis-server`` on 127.0.0.1:$TESTBED_REDIS_PORT
(default 6390) with its folder, configuration, log and append-only file under
``<state_dir>/redis``; its pid is in ``<state_dir>/redis.pid``. ``stop_redis`` signals only
that pid (after checking it still runs redis-server); ``redis_status`` reports.

Two users: ``default`` without a password (the tests' plain URL) and ``dockprogress`` with
the password ``testbed-secret`` (the tests of ACL credentials and of a wrong password).
Standard library only, like the other testbed modules.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PORT = int(os.environ.get("TESTBED_REDIS_PORT", "6390"))
USER, PASSWORD = "dockprogress", "testbed-secret"
# Servers started by this process: kept so that Popen never warns that one still runs (it
# is meant to outlive this script), and reaped by stop_redis.
_STARTED: list[subprocess.Popen[bytes]] = []
_SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def url(user: bool = False, port: int = PORT) -> str:
    """The bus URL of the bed's Redis (with the ACL user's credentials when ``user``)."""
    auth = f"{USER}:{PASSWORD}@" if user else ""
    return f"redis://{auth}127.0.0.1:{port}/0"


def _binary() -> str | None:
    return shutil.which("redis-server", path=_SBIN + ":" + os.environ.get("PATH", ""))


def _install() -> None:
    if os.geteuid() != 0:
        raise SystemExit("testbed: redis-server missing; run as root: apt-get install redis-server")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1"}
    policy = Path("/usr/sbin/policy-rc.d")  # keep apt from starting Debian's redis on :6379
    added = not policy.exists()
    if added:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        for _ in range(30):  # another apt may hold the lock for a while
            done = subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", "redis-server"],
                env=env,
                check=False,
            )
            if done.returncode == 0:
                return
            subprocess.run(["apt-get", "update"], env=env, check=False)
            time.sleep(5)
        raise SystemExit("testbed: apt-get install redis-server failed")
    finally:
        if added:
            policy.unlink(missing_ok=True)


def answers(port: int = PORT, timeout: float = 1.0) -> bool:
    """True when a Redis on 127.0.0.1:``port`` answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "redis.pid").read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm.startswith("redis-server") else None


def _config(folder: Path, port: int) -> str:
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            "daemonize no",
            f"dir {folder}",
            "logfile redis.log",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "maxmemory 512mb",
            "user default on nopass ~* &* +@all",
            f"user {USER} on >{PASSWORD} ~* &* +@all",
            "",
        ]
    )


def ensure_redis(state_dir: Path, port: int = PORT) -> int | None:
    """Start the bed's redis-server unless one answers; return the pid started here."""
    if _binary() is None:
        _install()
    running = _pid(state_dir)
    if running is not None and answers(port):
        return running
    if answers(port):
        return None  # someone else's Redis on that port: use it as it is
    folder = state_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "redis.conf"
    conf.write_text(_config(folder, port))
    binary = _binary()
    assert binary is not None
    proc = subprocess.Popen(
        [binary, str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=folder,
    )
    _STARTED.append(proc)
    (state_dir / "redis.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 30
    while not answers(port):
        if proc.poll() is not None:
            raise SystemExit(f"testbed: redis-server exited ({proc.returncode}); see {folder}")
        if time.monotonic() > deadline:
            raise SystemExit(f"testbed: redis-server did not answer on {port}; see {folder}")
        time.sleep(0.05)
    print(f"testbed: redis-server on 127.0.0.1:{port} (pid {proc.pid})", flush=True)
    return proc.pid


def stop_redis(state_dir: Path, grace: float = 10.0) -> None:
    """Stop the redis-server started here (SIGTERM: it writes its AOF and exits)."""
    pid = _pid(state_dir)
    if pid is None:
        (state_dir / "redis.pid").unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid(state_dir) == pid:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if _pid(state_dir) == pid:
        os.kill(pid, signal.SIGKILL)
    for proc in [p for p in _STARTED if p.pid == pid]:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        _STARTED.remove(proc)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    (state_dir / "redis.pid").unlink(missing_ok=True)


def redis_status(state_dir: Path, port: int = PORT) -> dict[str, object]:
    return {"redis": answers(port), "redis_pid": _pid(state_dir), "redis_port": port}
