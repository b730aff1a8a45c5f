"""The test bed's Redis: Debian 12's ``redis-server`` (7.0) for the fleet bus tests.

``ensure_redis(state_dir)`` installs the package when missing (as root, without letting apt
start Debian's own service) and starts one ``redis-server`` on 127.0.0.1:$TESTBED_REDIS_PORT
(default 6390) with its folder, configuration, log and append-only file under
``<state_dir>/redis``; its pid is in ``<state_dir>/redis.pid``. ``stop_redis`` signals only
that pid (after checking it still runs redis-server); ``redis_status`` reports.

Two users: ``default`` without a password (the tests' plain URL) and ``dockprogress`` with
the password ``testbed-secret`` (the tests of ACL credentials and of a wrong password).

TLS: the same server also listens on 127.0.0.1:$TESTBED_REDIS_TLS_PORT (default 6391) for
``rediss://``, with the bed's TLS material in ``<state_dir>/tls`` (made by
``testbed_modern.ensure_tls`` when missing: a CA, and a server certificate for 127.0.0.1 and
localhost that it signed). Client certificates are optional (``tls-auth-clients optional``):
a client verifies the server with ``?ssl_ca_certs=<state_dir>/tls/ca.pem`` in its URL
(:func:`tls_url`). A server started before this existed has no TLS port until it is
restarted (``scripts/testbed down`` and ``up``; the AOF keeps its data).
Standard library only, like the other testbed modules.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

PORT = int(os.environ.get("TESTBED_REDIS_PORT", "6390"))
TLS_PORT = int(os.environ.get("TESTBED_REDIS_TLS_PORT", "6391"))
USER, PASSWORD = "dockprogress", "testbed-secret"
# Servers started by this process: kept so that Popen never warns that one still runs (it
# is meant to outlive this script), and reaped by stop_redis.
_STARTED: list[subprocess.Popen[bytes]] = []


@atexit.register
def _leave_running() -> None:
    """At exit, the servers this process started stay up (the bed's, stopped by pid): their
    Popen objects are told so, or each would warn "still running" as it is collected."""
    for proc in _STARTED:
        if proc.poll() is None:
            proc.returncode = 0  # (not waited for: the server outlives this process)


_SBIN = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def url(user: bool = False, port: int = PORT) -> str:
    """The bus URL of the bed's Redis (with the ACL user's credentials when ``user``)."""
    auth = f"{USER}:{PASSWORD}@" if user else ""
    return f"redis://{auth}127.0.0.1:{port}/0"


def tls_url(
    state_dir: Path, user: bool = True, port: int = TLS_PORT, ca: Path | None = None
) -> str:
    """The ``rediss://`` URL of the bed's Redis, verifying it with the bed's CA (or ``ca``)."""
    auth = f"{USER}:{PASSWORD}@" if user else ""
    ca = ca if ca is not None else tls_dir(state_dir) / "ca.pem"
    return f"rediss://{auth}127.0.0.1:{port}/0?ssl_ca_certs={ca}"


def tls_dir(state_dir: Path) -> Path:
    return state_dir / "tls"


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


def tls_answers(state_dir: Path, port: int = TLS_PORT, timeout: float = 2.0) -> bool:
    """True when Redis on 127.0.0.1:``port`` answers PING over TLS verified by the bed's CA."""
    ca = tls_dir(state_dir) / "ca.pem"
    if not ca.exists():
        return False
    try:
        context = ssl.create_default_context(cafile=str(ca))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except (OSError, ssl.SSLError):
        return False


def _ensure_tls(state_dir: Path) -> Path | None:
    """The bed's TLS folder with a CA and a server certificate, made if missing; None without
    openssl (the server then has no TLS port, and says so)."""
    import testbed_modern  # the bed's one maker of TLS material (same folder as this module)

    folder = tls_dir(state_dir)
    try:
        testbed_modern.ensure_tls(folder)
    except testbed_modern.SetupError as exc:
        print(f"testbed: redis without TLS: {exc}", flush=True)
        return None
    return folder


def _pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / "redis.pid").read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    return pid if comm.startswith("redis-server") else None


def _config(folder: Path, port: int, tls: Path | None = None, tls_port: int = TLS_PORT) -> str:
    with_tls = (
        [
            f"tls-port {tls_port}",
            f"tls-cert-file {tls / 'server-cert.pem'}",
            f"tls-key-file {tls / 'server-key.pem'}",
            f"tls-ca-cert-file {tls / 'ca.pem'}",
            "tls-auth-clients optional",
        ]
        if tls is not None
        else []
    )
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            *with_tls,
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
        if port != PORT or tls_answers(state_dir) or _ensure_tls(state_dir) is None:
            return running
        # Started before the bed had TLS for Redis: restart it with the TLS port (the AOF
        # keeps its data), so an existing bed picks the change up with one `up`.
        print("testbed: redis-server has no TLS port yet: restarting it", flush=True)
        stop_redis(state_dir)
    if answers(port):
        return None  # someone else's Redis on that port: use it as it is
    folder = state_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    tls = _ensure_tls(state_dir)
    conf = folder / "redis.conf"
    conf.write_text(_config(folder, port, tls, TLS_PORT))
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
    while tls is not None and not tls_answers(state_dir):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"testbed: redis-server's TLS port {TLS_PORT} did not answer")
        time.sleep(0.05)
    where = f"127.0.0.1:{port}" + (f" and TLS on {TLS_PORT}" if tls is not None else "")
    print(f"testbed: redis-server on {where} (pid {proc.pid})", flush=True)
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
    return {
        "redis": answers(port),
        "redis_pid": _pid(state_dir),
        "redis_port": port,
        "redis_tls": tls_answers(state_dir),
        "redis_tls_port": TLS_PORT,
    }
