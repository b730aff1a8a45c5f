"""The classic builder's two clients: the lean one (the standard library on the local socket)
for a context without ``.dockerignore`` and a docker config without credentials, docker-py
for the rest. The context is packed as docker-py packs it; both build on the real engine.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import docker
import docker.utils
import pytest

from dockprogress.docker.build import BuildSession, pack_context
from dockprogress.docker.lean import has_credentials
from dockprogress.events import State
from tests.build.recordings import assert_promises
from tests.conftest import Testbed as Bed


def _members(data: bytes) -> list[tuple[object, ...]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        found = []
        for member in tar.getmembers():
            body = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            found.append(
                (member.name, member.type, member.mode, member.size, member.linkname, body)
            )
        return found


def _context(root: Path) -> Path:
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "Dockerfile").write_text("FROM 127.0.0.1:5000/dp/base:1\nCOPY . /ctx\n")
    (root / "a" / "b" / "c.txt").write_text("deep\n")
    (root / "a" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "a" / "run.sh").chmod(0o755)
    (root / "payload.bin").write_bytes(os.urandom(300_000))
    (root / "link").symlink_to("a/b/c.txt")
    (root / "dirlink").symlink_to("a")  # a link to a directory is not followed
    return root


def test_the_context_is_packed_as_docker_py_packs_it(tmp_path: Path) -> None:
    root = _context(tmp_path / "ctx")
    ours = io.BytesIO()
    pack_context(root, ours)
    theirs = io.BytesIO()
    docker.utils.tar(str(root), exclude=None, dockerfile=("Dockerfile", None), fileobj=theirs)
    assert _members(ours.getvalue()) == _members(theirs.getvalue())
    names = [m[0] for m in _members(ours.getvalue())]
    assert names == sorted(names)
    assert {"a/b/c.txt", "empty", "link", "dirlink"} <= set(names)
    assert "dirlink/b" not in names


def test_has_credentials_reads_the_config_docker_py_reads(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path)}
    config = tmp_path / "config.json"
    for content, expected in [
        ({"auths": {}}, False),
        ({"auths": {}, "currentContext": "x"}, False),
        ({"auths": {"registry.example": {"auth": "eDp5"}}}, True),
        ({"credsStore": "desktop"}, True),
        ({"credHelpers": {"registry.example": "gcloud"}}, True),
    ]:
        config.write_text(json.dumps(content))
        assert has_credentials(env) is expected, content
    config.write_text("{not json")
    assert has_credentials(env) is True  # what it cannot read, docker-py decides


@pytest.fixture
def classic_engine(testbed: Bed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    engine = testbed.engines.get("classic")
    host = engine.docker_host if engine else testbed.docker_host
    monkeypatch.setenv("DOCKER_HOST", host)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-config"))  # no credentials
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    return host


@pytest.mark.engine
def test_lean_classic_build_counts_the_upload_and_adds_every_tag(
    classic_engine: str, tmp_path: Path
) -> None:
    root = _context(tmp_path / "ctx")
    (root / "Dockerfile").write_text(
        "FROM 127.0.0.1:5000/dp/base:1\nCOPY . /ctx\nRUN test -s /ctx/payload.bin\n"
    )
    names = [f"dp/lean-build-{uuid.uuid4().hex[:8]}:{tag}" for tag in ("1", "extra")]
    session = BuildSession(root, tags=names, builder="classic", network="none", no_cache=True)
    assert session._lean_classic()
    events = list(session)
    assert_promises(events)
    assert events[-1].state is State.DONE
    packed = io.BytesIO()
    pack_context(root, packed)
    uploads = [e.detail["upload"] for e in events if e.detail.get("upload")]
    assert uploads[-1]["total"] == len(packed.getvalue())
    assert uploads[-1]["current"] == uploads[-1]["total"]
    client = docker.DockerClient(base_url=classic_engine)
    try:
        assert client.images.get(names[0]).id == client.images.get(names[1]).id
    finally:
        for name in names:
            client.images.remove(name, force=True)
        client.close()


@pytest.mark.engine
def test_a_dockerignore_sends_the_build_through_docker_py_and_is_honoured(
    classic_engine: str, tmp_path: Path
) -> None:
    root = _context(tmp_path / "ctx")
    (root / ".dockerignore").write_text("# not sent\npayload.bin\n")
    (root / "Dockerfile").write_text(
        "FROM 127.0.0.1:5000/dp/base:1\nCOPY . /ctx\nRUN test ! -e /ctx/payload.bin\n"
    )
    name = f"dp/lean-build-{uuid.uuid4().hex[:8]}:1"
    session = BuildSession(root, tags=[name], builder="classic", network="none", no_cache=True)
    assert not session._lean_classic()
    events = list(session)
    assert events[-1].state is State.DONE, events[-1].error
    client = docker.DockerClient(base_url=classic_engine)
    try:
        client.images.remove(name, force=True)
    finally:
        client.close()
