"""The test bed's services: Docker engine, registry, bandwidth-limited front, state file.

What ``up`` guarantees when it returns 0:

- a Docker engine answers (the one at ``DOCKER_HOST`` / the default socket if it already
  answers; otherwise Debian's ``dockerd --bridge=none --iptables=false``, started here);
- Debian's ``docker-registry`` answers on 127.0.0.1:$TESTBED_REGISTRY_PORT (default 5000),
  storage in ``.testbed/registry``;
- nginx answers on 127.0.0.1:$TESTBED_SLOW_PORT (default 5001), proxying that registry with
  ``limit_rate $TESTBED_RATE`` (default ``5m``, per connection, so per layer);
- the same nginx serves ``.testbed/files/`` at ``/files/`` with the same rate: the files
  the real tools download in the tests (a wheel index, an apt repository, npm tarballs, big
  files; see testbed_files.py);
- every fixture image of ``scripts/fixtures/images.json`` is in the registry
  (see testbed_images.py), and ``.testbed/state.json`` names them.

Every process started here has its pid in ``.testbed/<name>.pid``; ``down`` signals only
those pids, after checking that the pid still runs the same program. Nothing here talks to
an address other than 127.0.0.1, apart from apt-get and debootstrap using the machine's own
Debian mirror.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import testbed_files
import testbed_images
import testbed_modern
import testbed_redis
import testbed_remote
from testbed_modern import SetupError

REPO = Path(__file__).resolve().parent.parent
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# binary (or dpkg package, for busybox-static) -> Debian package that provides it
REQUIRED = {
    # The engine daemon, not the CLI: many images ship a `docker` CLI and no engine.
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "nginx": "nginx-light",
    "debootstrap": "debootstrap",
    "busybox-static": "busybox-static",
    **testbed_remote.PACKAGES,  # sshd, socat: the remote ways in (tcp, ssh)
}
# The dashboard tests need a browser; a non-root user without it still gets the rest.
OPTIONAL = {"chromium": "chromium", "chromedriver": "chromium-driver"}


@dataclass(frozen=True)
class Config:
    """Where the bed lives and which ports and rate it uses (environment overrides)."""

    state_dir: Path
    registry_port: int
    slow_port: int
    rate: str

    @classmethod
    def from_env(cls) -> Config:
        rate = os.environ.get("TESTBED_RATE", "5m")
        if not re.fullmatch(r"[1-9][0-9]*[kKmM]?", rate):
            raise SystemExit(f"testbed: TESTBED_RATE={rate!r} is not an nginx rate like 5m or 800k")
        return cls(
            state_dir=Path(os.environ.get("TESTBED_DIR", REPO / ".testbed")).resolve(),
            registry_port=int(os.environ.get("TESTBED_REGISTRY_PORT", "5000")),
            slow_port=int(os.environ.get("TESTBED_SLOW_PORT", "5001")),
            rate=rate,
        )

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def slow_registry(self) -> str:
        return f"127.0.0.1:{self.slow_port}"


def say(message: str) -> None:
    print(f"testbed: {message}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


# ---------------------------------------------------------------- processes and ports


def pid_running(pidfile: Path, program: str) -> int | None:
    """The pid recorded in ``pidfile`` if it is alive and still runs ``program``."""
    try:
        pid = int(pidfile.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return None
    # A recycled pid would run something else: never signal that. (comm is the program's
    # name cut to 15 characters; nginx rewrites its cmdline, so cmdline can't be used.)
    return pid if comm == program[:15] else None


def start_background(
    argv: list[str], log: Path, pidfile: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (it outlives this script); record its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if env is None:
        env = {**os.environ, "PATH": SBIN_PATH + ":" + os.environ.get("PATH", "")}
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        except OSError as exc:
            raise SetupError(f"cannot start {argv[0]}: {exc.strerror}") from exc
    pidfile.write_text(f"{proc.pid}\n")
    return proc


def stop_pid(pidfile: Path, program: str, grace: float = 20.0) -> None:
    pid = pid_running(pidfile, program)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    say(f"stopping {program} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_running(pidfile, program) == pid:
        time.sleep(0.2)
    if pid_running(pidfile, program) == pid:
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    pidfile.unlink(missing_ok=True)


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def files_answer(address: str, timeout: float = 2.0) -> bool:
    """True if the front serves the files' manifest at the current version."""
    try:
        with _NO_PROXY.open(f"http://{address}/files/manifest.json", timeout=timeout) as response:
            return bool(json.load(response).get("version") == testbed_files.VERSION)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def registry_answers(address: str, timeout: float = 2.0) -> bool:
    """True if ``GET http://<address>/v2/`` answers 200 (a Docker registry is there)."""
    try:
        with _NO_PROXY.open(f"http://{address}/v2/", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until(check: object, what: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise SystemExit(f"testbed: {what} exited with status {proc.returncode}; see its log")
        time.sleep(0.2)
    raise SystemExit(f"testbed: {what} did not answer within {timeout:.0f} s; see its log")


# ---------------------------------------------------------------- packages


def search_path() -> str:
    """Where the bed looks for programs: ``TESTBED_PATH`` if set, else PATH and the sbin dirs
    (a non-root PATH often lacks /usr/sbin, where dockerd lives)."""
    return os.environ.get("TESTBED_PATH") or SBIN_PATH + ":" + os.environ.get("PATH", "")


def missing_packages(path: str | None = None) -> tuple[list[str], list[str]]:
    """Debian packages (required, optional) whose program is not on ``path``.

    A machine may have a ``docker`` CLI and no engine: the engine's daemon, ``dockerd``, is
    what is looked for, so such a machine gets ``docker.io``.
    """
    path = search_path() if path is None else path

    def have(name: str) -> bool:
        if name == "busybox-static":  # /bin/busybox may be the dynamic build
            probe = subprocess.run(
                ["dpkg-query", "-W", "-f=${Status}", "busybox-static"],
                capture_output=True,
                text=True,
                check=False,
            )
            return probe.stdout.strip() == "install ok installed"
        return shutil.which(name, path=path) is not None

    required = sorted({pkg for name, pkg in REQUIRED.items() if not have(name)})
    optional = sorted({pkg for name, pkg in OPTIONAL.items() if not have(name)})
    return required, optional


def ensure_packages() -> None:
    required, optional = missing_packages()
    if not (required or optional):
        return
    if not is_root():
        if required:
            raise SystemExit(
                "testbed: missing Debian packages: "
                + " ".join(required + optional)
                + "\n  run as root: apt-get install -y "
                + " ".join(required + optional)
                + "\n  or run `sudo scripts/testbed up` once"
            )
        say(f"warning: {' '.join(optional)} missing (browser tests will not run); need root")
        return
    packages = required + optional
    say(f"installing {' '.join(packages)} from the machine's Debian mirror")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_SUSPEND": "1"}
    # Keep apt from starting the packages' own services (a second dockerd, a registry on
    # :5000, nginx on :80): the bed starts exactly what it needs itself.
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = not policy.exists()
    if added_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        for argv in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        ):
            try:
                run = subprocess.run(argv, check=False, env=env)
            except OSError as exc:
                raise SetupError(
                    f"missing {' '.join(packages)} and cannot run {argv[0]} ({exc.strerror});"
                    f" install them: apt-get install -y {' '.join(packages)}"
                ) from exc
            if run.returncode != 0:
                raise SetupError(
                    f"`{' '.join(argv[:2])}` exited {run.returncode} while installing"
                    f" {' '.join(packages)}; see its output above, then run:"
                    f" apt-get update && apt-get install -y {' '.join(packages)}"
                )
    finally:
        if added_policy:
            policy.unlink(missing_ok=True)


# ---------------------------------------------------------------- the engine


def engine_answers(timeout: float = 20.0) -> bool:
    try:
        probe = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def ensure_engine(cfg: Config) -> int | None:
    """Use the answering engine, or start Debian's dockerd. Returns the pid if started here."""
    pidfile = cfg.state_dir / "dockerd.pid"
    if engine_answers():
        return pid_running(pidfile, "dockerd")
    if os.environ.get("DOCKER_HOST"):
        raise SystemExit(
            f"testbed: DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer; fix it, or unset"
            " it to let the test bed start its own engine on the default socket"
        )
    if not is_root():
        raise SystemExit(
            "testbed: no Docker engine answers and only root can start one.\n"
            "  start one (`sudo dockerd --bridge=none --iptables=false &`), or add yourself to\n"
            "  the docker group, or run `sudo scripts/testbed up` once"
        )
    if shutil.which("dockerd", path=search_path()) is None:
        raise SetupError(
            "no Docker engine answers and dockerd is missing: apt-get install -y docker.io"
        )
    say("no engine answers: starting dockerd --bridge=none --iptables=false")
    proc = start_background(
        ["dockerd", "--bridge=none", "--iptables=false"],
        cfg.state_dir / "dockerd.log",
        pidfile,
    )
    wait_until(engine_answers, "dockerd", 90, proc)
    return proc.pid


# ---------------------------------------------------------------- registry and its slow front


def registry_config(cfg: Config) -> str:
    return f"""\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {cfg.state_dir / "registry"}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: {cfg.registry}
"""


def nginx_config(cfg: Config) -> str:
    d = cfg.state_dir / "nginx"
    # proxy_buffering must stay on: with it off nginx applies no limit_rate at all.
    # proxy_max_temp_file_size 0 keeps the buffered body in memory, never in a temp file.
    # /files/: testbed_files.py's files, at the same rate; pip wants its index pages as
    # text/html, so the types are given (this config includes no mime.types).
    return f"""\
daemon off;
worker_processes 1;
pid {d / "nginx.pid"};
error_log {d / "error.log"} warn;
{"user root;" if is_root() else ""}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d / "tmp" / "client_body"};
    proxy_temp_path {d / "tmp" / "proxy"};
    fastcgi_temp_path {d / "tmp" / "fastcgi"};
    uwsgi_temp_path {d / "tmp" / "uwsgi"};
    scgi_temp_path {d / "tmp" / "scgi"};
    server {{
        listen {cfg.slow_registry};
        client_max_body_size 0;
        location / {{
            proxy_pass http://{cfg.registry};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_buffering on;
            proxy_max_temp_file_size 0;
            proxy_read_timeout 300s;
            limit_rate {cfg.rate};
        }}
        location /files/ {{
            alias {cfg.state_dir / "files"}/;
            types {{ text/html html; application/json json; }}
            default_type application/octet-stream;
            limit_rate {cfg.rate};
        }}
    }}
}}
"""


def _write_if_changed(path: Path, text: str) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def ensure_registry(cfg: Config) -> int | None:
    pidfile = cfg.state_dir / "registry.pid"
    conf = cfg.state_dir / "registry.yml"
    _write_if_changed(conf, registry_config(cfg))
    (cfg.state_dir / "registry").mkdir(parents=True, exist_ok=True)
    pid = pid_running(pidfile, "docker-registry")
    if registry_answers(cfg.registry):
        if pid is None:
            say(f"a registry not started by the test bed answers on {cfg.registry}: using it")
        return pid
    if pid is not None:
        stop_pid(pidfile, "docker-registry")
    say(f"starting docker-registry on {cfg.registry}")
    proc = start_background(
        ["docker-registry", "serve", str(conf)], cfg.state_dir / "registry.log", pidfile
    )
    wait_until(lambda: registry_answers(cfg.registry), "docker-registry", 30, proc)
    return proc.pid


def ensure_front(cfg: Config) -> int | None:
    d = cfg.state_dir / "nginx"
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    pidfile = cfg.state_dir / "nginx-master.pid"
    conf = d / "nginx.conf"
    changed = _write_if_changed(conf, nginx_config(cfg))
    pid = pid_running(pidfile, "nginx")
    if pid is not None and registry_answers(cfg.slow_registry):
        if changed:
            say(f"nginx config changed (rate {cfg.rate}): reloading pid {pid}")
            os.kill(pid, signal.SIGHUP)
            time.sleep(0.5)
        return pid
    if pid is None and registry_answers(cfg.slow_registry):
        say(f"something not started by the test bed answers on {cfg.slow_registry}: using it")
        return None
    if pid is not None:
        stop_pid(pidfile, "nginx")
    say(f"starting nginx on {cfg.slow_registry} (limit_rate {cfg.rate}) -> {cfg.registry}")
    proc = start_background(
        ["nginx", "-p", str(d), "-e", str(d / "error.log"), "-c", str(conf)],
        d / "stdout.log",
        pidfile,
    )
    wait_until(lambda: registry_answers(cfg.slow_registry), "nginx", 20, proc)
    return proc.pid


# ---------------------------------------------------------------- state and commands


@contextlib.contextmanager
def bed_lock(cfg: Config) -> Iterator[None]:
    """One ``up``/``down`` at a time: several test sessions may start at once."""
    try:
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        handle = (cfg.state_dir / "lock").open("a")
    except PermissionError as exc:
        raise SystemExit(
            f"testbed: cannot write {cfg.state_dir} ({exc.strerror}): it belongs to whoever ran"
            " `up` first; run as that user, or set TESTBED_DIR and other TESTBED_*_PORTs"
        ) from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def engine_entry(docker_host: str, **extra: object) -> dict[str, object]:
    """What the tests need to know of one engine: address, version, API, image store."""
    info = testbed_modern.engine_info(docker_host) or {}
    return {
        "docker_host": docker_host,
        "version": info.get("ServerVersion"),
        "containerd_store": testbed_modern.containerd_store(info) if info else None,
        **extra,
    }


def engines(cfg: Config) -> dict[str, dict[str, object]]:
    found = {"classic": engine_entry(classic_host())}
    if testbed_modern.enabled():
        modern = testbed_modern.from_env(cfg.state_dir)
        found["modern"] = engine_entry(
            modern.docker_host,
            tls_host=modern.tls_host,
            cert_path=str(modern.tls_dir),
            buildx=str(modern.buildx),
        )
    return found


def classic_host() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def write_state(cfg: Config, pids: dict[str, int | None]) -> dict[str, object]:
    state: dict[str, object] = {
        "registry": cfg.registry,
        "slow_registry": cfg.slow_registry,
        "rate": cfg.rate,
        "docker_host": classic_host(),
        "engines": engines(cfg),
        "remote": testbed_remote.status(testbed_remote.from_env(cfg.state_dir)),
        "images": {
            key: f"{cfg.registry}/{spec['ref']}" for key, spec in testbed_images.specs().items()
        },
        "files": f"http://{cfg.slow_registry}/files",
        "started_here": pids,
    }
    tmp = cfg.state_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(cfg.state_dir / "state.json")
    return state


def up(cfg: Config, skip_debian: bool) -> int:
    t0 = time.monotonic()
    with bed_lock(cfg):
        ensure_packages()
        pids = {"dockerd": ensure_engine(cfg)}
        pids["registry"] = ensure_registry(cfg)
        pids["nginx"] = ensure_front(cfg)
        pids["redis"] = testbed_redis.ensure_redis(cfg.state_dir)
        testbed_files.ensure_files(cfg.state_dir, say)
        testbed_images.ensure_all(cfg.registry, cfg.state_dir / "cache", skip_debian=skip_debian)
        if testbed_modern.enabled():
            modern = testbed_modern.from_env(cfg.state_dir)
            started, just_started = testbed_modern.ensure(
                modern, say, start_background, wait_until, pid_running
            )
            pids |= started
            shared = [
                f"{cfg.registry}/{spec['ref']}"
                for key, spec in testbed_images.specs().items()
                if key in testbed_modern.SHARED_IMAGES
                and not (skip_debian and spec.get("kind") == "debootstrap")
            ]
            testbed_modern.ensure_images(modern, shared, say, just_started=just_started)
        if classic_host().startswith("unix://"):  # tcp and ssh ways into the classic engine
            remote = testbed_remote.from_env(cfg.state_dir)
            pids |= testbed_remote.ensure(
                remote, classic_host()[7:], say=say, start=start_background, wait=wait_until,
                pid_running=pid_running,
            )  # fmt: skip
        if skip_debian:
            say("--skip-debian: state.json not written (the bed is not complete)")
        else:
            write_state(cfg, pids)
    say(f"up in {time.monotonic() - t0:.1f} s")
    return 0


def down(cfg: Config) -> int:
    with bed_lock(cfg):
        (cfg.state_dir / "state.json").unlink(missing_ok=True)
        stop_pid(cfg.state_dir / "nginx-master.pid", "nginx")
        testbed_remote.stop(testbed_remote.from_env(cfg.state_dir), stop_pid)
        testbed_redis.stop_redis(cfg.state_dir)
        stop_pid(cfg.state_dir / "registry.pid", "docker-registry")
        modern = testbed_modern.from_env(cfg.state_dir)
        stop_pid(modern.dockerd_pidfile, "dockerd", grace=40.0)
        stop_pid(modern.containerd_pidfile, "containerd", grace=20.0)
        stop_pid(cfg.state_dir / "dockerd.pid", "dockerd", grace=40.0)
    say("down (registry storage and image cache kept in .testbed/ for the next up)")
    return 0


def status(cfg: Config, as_json: bool) -> int:
    engine = engine_answers(timeout=10)
    report: dict[str, object] = {
        "engine": engine,
        "engine_started_here": pid_running(cfg.state_dir / "dockerd.pid", "dockerd"),
        "registry": registry_answers(cfg.registry),
        "registry_pid": pid_running(cfg.state_dir / "registry.pid", "docker-registry"),
        "slow_registry": registry_answers(cfg.slow_registry),
        "nginx_pid": pid_running(cfg.state_dir / "nginx-master.pid", "nginx"),
        "state_file": (cfg.state_dir / "state.json").exists(),
        "files": f"http://{cfg.slow_registry}/files",
        "files_served": files_answer(cfg.slow_registry),
        **testbed_redis.redis_status(cfg.state_dir),
        "images": {},
    }
    modern_ok = True
    if testbed_modern.enabled():
        modern = testbed_modern.from_env(cfg.state_dir)
        info = testbed_modern.engine_info(modern.docker_host)
        modern_ok = info is not None
        report["modern_engine"] = {
            "docker_host": modern.docker_host,
            "answers": modern_ok,
            "version": info.get("ServerVersion") if info else None,
            "containerd_store": testbed_modern.containerd_store(info) if info else None,
            "pid": pid_running(modern.dockerd_pidfile, "dockerd"),
        }
    images: dict[str, dict[str, bool]] = {}
    for key, spec in testbed_images.specs().items():
        ref = f"{cfg.registry}/{spec['ref']}"
        images[key] = {
            "registry": bool(report["registry"]) and testbed_images.registry_has(ref),
            "local": engine and testbed_images.local_has(ref),
        }
    report["images"] = images
    report["remote"] = remote = testbed_remote.status(testbed_remote.from_env(cfg.state_dir))
    ok = (
        all(
            report[k]
            for k in ("engine", "registry", "slow_registry", "files_served", "state_file", "redis")
        )
        and all(v["registry"] for v in images.values())
        and modern_ok
        and (bool(remote["tcp"] and remote["ssh"]) or not classic_host().startswith("unix://"))
    )
    report["ok"] = ok
    if as_json:
        print(json.dumps(report, indent=2))
    else:

        def up_down(flag: object) -> str:
            return "answers" if flag else "DOWN"

        def who(pid: object) -> str:
            return f"started here, pid {pid}" if pid else "not started here"

        print(f"engine         {up_down(engine)} ({who(report['engine_started_here'])})")
        print(
            f"registry       {cfg.registry} {up_down(report['registry'])}"
            f" ({who(report['registry_pid'])})"
        )
        print(
            f"slow registry  {cfg.slow_registry} {up_down(report['slow_registry'])}"
            f" ({who(report['nginx_pid'])}, limit_rate {cfg.rate})"
        )
        print(f"files          {report['files']}/ {up_down(report['files_served'])}")
        if "modern_engine" in report:
            m = report["modern_engine"]
            assert isinstance(m, dict)
            print(
                f"modern engine  {m['docker_host']} {up_down(m['answers'])}"
                f" (Docker {m['version']}, containerd store {m['containerd_store']},"
                f" {who(m['pid'])})"
            )
        for way in ("tcp", "ssh"):
            print(f"{way + ' way in':<15}{remote[way + '_host']} {up_down(remote[way])}")
        print(f"redis          127.0.0.1:{report['redis_port']} {up_down(report['redis'])}")
        for key, where in images.items():
            marks = ", ".join(k for k, v in where.items() if v) or "missing"
            print(f"image {key:<9}{cfg.registry}/{testbed_images.specs()[key]['ref']}: {marks}")
        print("status: " + ("up" if ok else "NOT up (run scripts/testbed up)"))
    return 0 if ok else 1


def host(cfg: Config, name: str, as_env: bool) -> int:
    """Print an engine's DOCKER_HOST value (``--env``: the shell lines that select it)."""
    modern = testbed_modern.from_env(cfg.state_dir)
    if name == "classic":
        lines = {"DOCKER_HOST": classic_host()}
    elif name in ("tcp", "ssh"):  # the classic engine through socat / the private sshd
        remote = testbed_remote.from_env(cfg.state_dir)
        lines = {"DOCKER_HOST": remote.tcp_host if name == "tcp" else remote.ssh_host}
    elif not testbed_modern.enabled():
        raise SetupError("TESTBED_MODERN=0: this bed has no modern engine")
    elif name == "modern":
        lines = {"DOCKER_HOST": modern.docker_host}
    else:  # tls
        lines = {
            "DOCKER_HOST": modern.tls_host,
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(modern.tls_dir),
        }
    if as_env:
        for key, value in lines.items():
            print(f"export {key}={value}")
    else:
        print(lines["DOCKER_HOST"])
    return 0


def main(argv: list[str]) -> int:
    """Run a command; a set-up failure is one line that says what to do, never a traceback."""
    try:
        return _main(argv)
    except SetupError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        argv0 = exc.cmd[0] if isinstance(exc.cmd, list) else exc.cmd
        print(f"testbed: {argv0} exited {exc.returncode}; see its output above", file=sys.stderr)
    except OSError as exc:
        print(f"testbed: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
    return 1


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/testbed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="bring the bed up (idempotent)")
    p_up.add_argument(
        "--skip-debian", action="store_true", help="skip the two debootstrap images (faster)"
    )
    sub.add_parser("down", help="stop what `up` started")
    p_status = sub.add_parser("status", help="report; exit 0 only when all is up")
    p_status.add_argument("--json", action="store_true")
    p_host = sub.add_parser("host", help="print an engine's DOCKER_HOST value")
    p_host.add_argument("engine", choices=("classic", "modern", "tls", "tcp", "ssh"))
    p_host.add_argument("--env", action="store_true", help="print export lines instead")
    args = parser.parse_args(argv)
    cfg = Config.from_env()
    if args.command == "up":
        return up(cfg, args.skip_debian)
    if args.command == "down":
        return down(cfg)
    if args.command == "host":
        return host(cfg, args.engine, args.env)
    return status(cfg, args.json)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
