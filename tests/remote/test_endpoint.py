"""Engine resolution (docker/endpoint.py) on temporary CLI config directories, no engine.

The contexts here are written the way ``docker context create`` (CLI 28.2) writes them:
``contexts/meta/<sha256 of the name>/meta.json`` and ``contexts/tls/<sha256>/docker/*.pem``
(seen in a temporary DOCKER_CONFIG; the engine tests make theirs with the real CLI).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from dockprogress.docker.endpoint import DEFAULT_HOST, TLS, Endpoint, resolve
from dockprogress.errors import DockProgressError, UsageError


def write_context(
    config: Path,
    name: str,
    host: str,
    *,
    skip_tls_verify: bool = False,
    tls_files: tuple[str, ...] = (),
) -> Path:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(
        json.dumps(
            {
                "Name": name,
                "Metadata": {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_tls_verify}},
            }
        )
    )
    tls = config / "contexts" / "tls" / digest / "docker"
    if tls_files:
        tls.mkdir(parents=True)
        for file in tls_files:
            (tls / file).write_text("-----BEGIN CERTIFICATE-----\n")
    return tls


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A CLI config dir with contexts 'ctx' (tcp) and 'other' (ssh), current context 'ctx'."""
    root = tmp_path / "docker-config"
    root.mkdir()
    write_context(root, "ctx", "tcp://10.0.0.1:2375")
    write_context(root, "other", "ssh://me@10.0.0.2")
    (root / "config.json").write_text(json.dumps({"auths": {}, "currentContext": "ctx"}))
    return root


# Each row: flags, environment (besides DOCKER_CONFIG), expected host, expected source.
PRECEDENCE = [
    ({"host": "tcp://1.1.1.1:1"}, {"DOCKER_HOST": "tcp://2.2.2.2:2", "DOCKER_CONTEXT": "other"},
     "tcp://1.1.1.1:1", "-H"),
    ({"context": "other"}, {"DOCKER_HOST": "tcp://2.2.2.2:2", "DOCKER_CONTEXT": "ctx"},
     "ssh://me@10.0.0.2", "context 'other' (--context)"),
    ({}, {"DOCKER_HOST": "tcp://2.2.2.2:2", "DOCKER_CONTEXT": "other"},
     "tcp://2.2.2.2:2", "DOCKER_HOST"),
    ({}, {"DOCKER_CONTEXT": "other"}, "ssh://me@10.0.0.2", "context 'other' (DOCKER_CONTEXT)"),
    ({}, {}, "tcp://10.0.0.1:2375", "context 'ctx' (currentContext in {config}/config.json)"),
    ({"context": "default"}, {}, DEFAULT_HOST, "the default socket"),
    ({"context": "default"}, {"DOCKER_HOST": "unix:///x.sock"}, "unix:///x.sock", "DOCKER_HOST"),
    ({}, {"DOCKER_CONTEXT": "default"}, DEFAULT_HOST, "the default socket"),
    ({"host": "127.0.0.1:2375"}, {}, "tcp://127.0.0.1:2375", "-H"),  # no scheme: tcp, as the CLI
    ({"host": "unix://"}, {}, DEFAULT_HOST, "-H"),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "env", "host", "source"), PRECEDENCE)
def test_precedence_is_the_docker_clis(
    config: Path, flags: dict[str, str], env: dict[str, str], host: str, source: str
) -> None:
    endpoint = resolve(**flags, env={"DOCKER_CONFIG": str(config), **env})
    assert endpoint.host == host
    assert endpoint.source == source.format(config=config)
    assert endpoint.tls is None
    assert endpoint.describe() == f"{host} (from {source.format(config=config)})"


def test_no_config_at_all_is_the_default_socket(tmp_path: Path) -> None:
    endpoint = resolve(env={"HOME": str(tmp_path)})  # no ~/.docker: no current context
    assert endpoint == Endpoint(DEFAULT_HOST, None, "the default socket")
    assert endpoint.local
    assert endpoint.transport == "unix"


def test_the_config_dir_defaults_to_home_dot_docker(tmp_path: Path) -> None:
    write_context(tmp_path / ".docker", "home", "tcp://3.3.3.3:3")
    (tmp_path / ".docker" / "config.json").write_text('{"currentContext": "home"}')
    endpoint = resolve(env={"HOME": str(tmp_path)})
    assert (endpoint.host, endpoint.context) == ("tcp://3.3.3.3:3", "home")
    assert not endpoint.local


def test_a_context_is_found_by_the_sha256_of_its_name(tmp_path: Path) -> None:
    name = "a context/with odd+chars"
    write_context(tmp_path, name, "tcp://4.4.4.4:4")
    meta = tmp_path / "contexts" / "meta"
    assert [p.name for p in meta.iterdir()] == [hashlib.sha256(name.encode()).hexdigest()]
    assert resolve(context=name, env={"DOCKER_CONFIG": str(tmp_path)}).host == "tcp://4.4.4.4:4"


def test_context_tls_material_turns_tls_on(tmp_path: Path) -> None:
    files = ("ca.pem", "cert.pem", "key.pem")
    tls = write_context(tmp_path, "secure", "tcp://5.5.5.5:2376", tls_files=files)
    endpoint = resolve(context="secure", env={"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.tls == TLS(
        verify=True, ca=str(tls / "ca.pem"), cert=str(tls / "cert.pem"), key=str(tls / "key.pem")
    )
    assert endpoint.transport == "tls"


def test_skip_tls_verify_without_material(tmp_path: Path) -> None:
    write_context(tmp_path, "insecure", "tcp://6.6.6.6:2376", skip_tls_verify=True)
    endpoint = resolve(context="insecure", env={"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.tls == TLS(verify=False)


def test_a_context_without_tls_is_plain(tmp_path: Path) -> None:
    write_context(tmp_path, "plain", "tcp://7.7.7.7:2375")
    assert resolve(context="plain", env={"DOCKER_CONFIG": str(tmp_path)}).tls is None


def test_a_client_pair_needs_both_files(tmp_path: Path) -> None:
    tls = write_context(tmp_path, "half", "tcp://8.8.8.8:2376", tls_files=("ca.pem", "cert.pem"))
    endpoint = resolve(context="half", env={"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.tls == TLS(verify=True, ca=str(tls / "ca.pem"))


def test_docker_tls_verify_and_cert_path(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    env = {"DOCKER_HOST": "tcp://9.9.9.9:2376", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": str(tmp_path)}  # fmt: skip
    endpoint = resolve(env=env)
    assert endpoint.tls == TLS(
        verify=True,
        ca=str(tmp_path / "ca.pem"),
        cert=str(tmp_path / "cert.pem"),
        key=str(tmp_path / "key.pem"),
    )
    # The CLI reads any non-empty DOCKER_TLS_VERIFY as "on" (its flag's default), "0" too.
    assert resolve(env={**env, "DOCKER_TLS_VERIFY": "0"}).tls == endpoint.tls
    # DOCKER_TLS alone: TLS without verification; -H takes the same TLS settings.
    loose = resolve(
        host="tcp://9.9.9.9:2376", env={**env, "DOCKER_TLS_VERIFY": "", "DOCKER_TLS": "1"}
    )
    assert loose.tls is not None
    assert not loose.tls.verify
    assert resolve(env={"DOCKER_HOST": "tcp://9.9.9.9:2376"}).tls is None


def test_cert_path_defaults_to_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    env = {"DOCKER_HOST": "tcp://9.9.9.9:2376", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CONFIG": str(tmp_path)}  # fmt: skip
    assert resolve(env=env).tls == TLS(verify=True, ca=str(tmp_path / "ca.pem"))


def test_tls_settings_do_not_apply_to_a_unix_socket() -> None:
    env = {"DOCKER_HOST": "unix:///run/x.sock", "DOCKER_TLS_VERIFY": "1"}
    assert resolve(env=env).tls is None


def test_missing_context_says_what_to_run(config: Path) -> None:
    for flags, env in (({"context": "nope"}, {}), ({}, {"DOCKER_CONTEXT": "nope"})):
        with pytest.raises(UsageError, match=r"context 'nope'.*does not exist.*docker context ls"):
            resolve(**flags, env={"DOCKER_CONFIG": str(config), **env})
    (config / "config.json").write_text('{"currentContext": "gone"}')
    with pytest.raises(DockProgressError, match=r"currentContext in .*docker context ls"):
        resolve(env={"DOCKER_CONFIG": str(config)})


def test_unreadable_config_is_an_error(config: Path) -> None:
    (config / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"not valid JSON.*docker context ls"):
        resolve(env={"DOCKER_CONFIG": str(config)})
    # ... but only when it is needed: -H, --context and DOCKER_HOST never read it.
    assert resolve(host="tcp://1.2.3.4:5", env={"DOCKER_CONFIG": str(config)}).host
    assert resolve(env={"DOCKER_CONFIG": str(config), "DOCKER_HOST": "tcp://1.2.3.4:5"}).host
    if os.geteuid() != 0:  # root reads anything
        (config / "config.json").write_text("{}")
        (config / "config.json").chmod(0)
        with pytest.raises(UsageError, match="cannot read the docker CLI config"):
            resolve(env={"DOCKER_CONFIG": str(config)})


def test_a_context_without_a_docker_endpoint(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"k8s").hexdigest()
    meta = tmp_path / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text('{"Name": "k8s", "Endpoints": {}}')
    with pytest.raises(UsageError, match=r"no docker endpoint.*docker context inspect k8s"):
        resolve(context="k8s", env={"DOCKER_CONFIG": str(tmp_path)})


def test_host_and_context_together_conflict() -> None:
    with pytest.raises(UsageError, match="either -H/--host or --context"):
        resolve(host="tcp://1.1.1.1:1", context="x", env={})


@pytest.mark.parametrize("address", ["http://1.2.3.4:2375", "npipe:////./pipe/docker", "fd://"])
def test_addresses_the_cli_would_refuse(address: str) -> None:
    with pytest.raises(UsageError, match="not an engine address"):
        resolve(host=address, env={})
    with pytest.raises(UsageError, match="DOCKER_HOST"):
        resolve(env={"DOCKER_HOST": address})


def test_transports() -> None:
    assert resolve(host="ssh://u@h:22", env={}).transport == "ssh"
    assert resolve(host="tcp://h:2375", env={}).transport == "tcp"
    tls = resolve(host="tcp://h:2376", env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/no"})
    assert tls.transport == "tls"
