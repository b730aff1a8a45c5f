"""Which Docker engine to talk to, found the way the docker CLI finds it (no I/O but reads).

:func:`resolve` is a function of the flags, the environment and the CLI's files; it returns
an :class:`Endpoint`: the engine's address, its TLS settings, and where they came from (for
error messages: ``tcp://10.0.0.5:2376 (from context 'build')``). The precedence is the
docker CLI's (``cli/command/cli.go`` ``resolveContextName``):

1. ``host`` (``-H``/``--host``); giving both it and ``context`` is a usage error, as there;
2. ``context`` (``--context``);
3. ``DOCKER_HOST`` (TLS from ``DOCKER_TLS_VERIFY``/``DOCKER_TLS``/``DOCKER_CERT_PATH``);
4. ``DOCKER_CONTEXT``;
5. ``currentContext`` in the CLI config (``$DOCKER_CONFIG/config.json``, else
   ``~/.docker/config.json``; a missing file means no current context);
6. the default socket ``unix:///var/run/docker.sock``.

A context is ``<config dir>/contexts/meta/<sha256 hex of its name>/meta.json``
(``Endpoints.docker.Host``, ``SkipTLSVerify``) with its TLS material, when it has some, in
``contexts/tls/<sha256>/docker/{ca,cert,key}.pem``; TLS is used when that material exists or
``SkipTLSVerify`` is set. The context named ``default`` is steps 1, 3 and 6 (the environment,
or the default socket). For ``-H``, ``DOCKER_HOST`` and the default socket, TLS follows the
CLI's flags' defaults: ``DOCKER_TLS_VERIFY`` non-empty means TLS with verification,
``DOCKER_TLS`` non-empty TLS without it; the files are ``ca.pem``, ``cert.pem``, ``key.pem``
in ``DOCKER_CERT_PATH`` (else the config dir), each used only if it exists.

Raises :class:`~dockprogress.errors.UsageError` for ``-H`` with ``--context``, an address
whose scheme the CLI would refuse, a context that does not exist, and an unreadable config or
context file; each message says what to run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from dockprogress.errors import UsageError

__all__ = ["DEFAULT_CONTEXT", "DEFAULT_HOST", "TLS", "Endpoint", "config_dir", "resolve"]

DEFAULT_HOST: Final = "unix:///var/run/docker.sock"
DEFAULT_CONTEXT: Final = "default"
_SCHEMES: Final = ("unix://", "tcp://", "ssh://")


@dataclass(frozen=True, slots=True)
class TLS:
    """TLS towards the engine: CA to verify against (``None``: the system's), client pair."""

    verify: bool
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An engine's address (``unix://…``, ``tcp://…``, ``ssh://user@host:port``).

    ``tls`` is ``None`` for plain connections; ``source`` says where the address came from
    (``-H``, ``DOCKER_HOST``, ``context 'x' (DOCKER_CONTEXT)``, ``the default socket``);
    ``context`` is the context's name when one was used.
    """

    host: str
    tls: TLS | None
    source: str
    context: str | None = None

    @property
    def transport(self) -> str:
        """``unix``, ``tcp``, ``tls`` or ``ssh``."""
        scheme = self.host.partition("://")[0]
        return "tls" if scheme == "tcp" and self.tls is not None else scheme

    @property
    def local(self) -> bool:
        """A unix socket: the engine runs on this machine (its pids may be ours to see)."""
        return self.host.startswith("unix://")

    def describe(self) -> str:
        """``tcp://127.0.0.1:23750 (from DOCKER_HOST)``: the address and its origin."""
        return f"{self.host} (from {self.source})"


def config_dir(env: Mapping[str, str]) -> Path:
    """The docker CLI's config directory: ``DOCKER_CONFIG``, else ``~/.docker``."""
    given = env.get("DOCKER_CONFIG")
    if given:
        return Path(given)
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".docker"


def context_dir_name(name: str) -> str:
    """The directory a context's files live in: the sha256 hex of its name."""
    import hashlib  # (only contexts need it: not loaded for the default socket)

    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def resolve(
    host: str | None = None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Endpoint:
    """The endpoint the docker CLI would use with these flags and this environment."""
    env = os.environ if env is None else env
    if host and context:
        raise UsageError(
            "conflicting options: give either -H/--host or --context, not both (as with docker)"
        )
    if host:
        return _from_environment(_normalise(host, "-H"), "-H", env)
    if context:
        return _from_context(context, "--context", env)
    if env.get("DOCKER_HOST"):
        return _from_environment(_normalise(env["DOCKER_HOST"], "DOCKER_HOST"), "DOCKER_HOST", env)
    if env.get("DOCKER_CONTEXT"):
        return _from_context(env["DOCKER_CONTEXT"], "DOCKER_CONTEXT", env)
    current, where = _current_context(env)
    if current:
        return _from_context(current, where, env)
    return _from_environment(DEFAULT_HOST, "the default socket", env)


def _normalise(host: str, source: str) -> str:
    """The CLI's reading of an address: no scheme means tcp; only unix, tcp and ssh reach."""
    host = host.strip()
    if "://" not in host:
        host = "tcp://" + host
    if host == "unix://":
        return DEFAULT_HOST
    if not host.startswith(_SCHEMES):
        raise UsageError(
            f"{source}: {host!r} is not an engine address dockprogress can reach "
            "(use unix:///path, tcp://host:port or ssh://[user@]host[:port])"
        )
    return host


def _from_environment(host: str, source: str, env: Mapping[str, str]) -> Endpoint:
    """``-H``, ``DOCKER_HOST`` or the default socket, with the CLI's TLS defaults."""
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    if not (verify or env.get("DOCKER_TLS")) or not host.startswith("tcp://"):
        return Endpoint(host, None, source)
    cert_dir = Path(env.get("DOCKER_CERT_PATH") or config_dir(env))
    ca, cert, key = (_existing(cert_dir / name) for name in ("ca.pem", "cert.pem", "key.pem"))
    if cert is None or key is None:
        cert = key = None
    return Endpoint(host, TLS(verify=verify, ca=ca, cert=cert, key=key), source)


def _from_context(name: str, how: str, env: Mapping[str, str]) -> Endpoint:
    if name == DEFAULT_CONTEXT:
        # The default context is the environment (DOCKER_HOST was not set, or it came first).
        host = env.get("DOCKER_HOST") or DEFAULT_HOST
        source = "DOCKER_HOST" if env.get("DOCKER_HOST") else "the default socket"
        return _from_environment(_normalise(host, source), source, env)
    root = config_dir(env) / "contexts"
    digest = context_dir_name(name)
    meta_path = root / "meta" / digest / "meta.json"
    source = f"context {name!r} ({how})"
    if not meta_path.exists():
        raise UsageError(
            f"{source} does not exist (no {meta_path}): run `docker context ls` to see the "
            "contexts, or `docker context create` to make it"
        )
    meta = _read_json(meta_path, f"the metadata of context {name!r}")
    endpoint = (meta.get("Endpoints") or {}).get("docker") if isinstance(meta, dict) else None
    if not isinstance(endpoint, dict) or not endpoint.get("Host"):
        raise UsageError(
            f"{source} has no docker endpoint in {meta_path}: "
            f"run `docker context inspect {name}`, or recreate it with `docker context create`"
        )
    host = _normalise(str(endpoint["Host"]), source)
    skip = bool(endpoint.get("SkipTLSVerify"))
    tls_dir = root / "tls" / digest / "docker"
    ca, cert, key = (_existing(tls_dir / name) for name in ("ca.pem", "cert.pem", "key.pem"))
    if cert is None or key is None:
        cert = key = None
    tls = None
    if (ca or cert or skip) and host.startswith("tcp://"):
        tls = TLS(verify=not skip, ca=ca, cert=cert, key=key)
    return Endpoint(host, tls, source, context=name)


def _current_context(env: Mapping[str, str]) -> tuple[str | None, str]:
    """``currentContext`` of the CLI config, and how to name where it was read."""
    path = config_dir(env) / "config.json"
    if not path.exists():
        return None, ""
    config = _read_json(path, "the docker CLI config")
    current = config.get("currentContext") if isinstance(config, dict) else None
    return (str(current) if current else None), f"currentContext in {path}"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(
            f"cannot read {what} ({path}): {exc.strerror or exc}; fix its permissions, or set "
            "DOCKER_CONFIG to another directory (`docker context ls` shows what the CLI sees)"
        ) from exc
    except ValueError as exc:
        raise UsageError(
            f"{what} ({path}) is not valid JSON: {exc}; fix or remove it "
            "(`docker context ls` shows what the CLI sees)"
        ) from exc


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None
