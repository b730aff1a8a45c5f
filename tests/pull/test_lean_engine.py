"""The lean engine client (no docker-py) against docker-py's path, on both engines of the bed.

A pull through :class:`~dockprogress.docker.lean.LeanEngine` (what ``dockprogress pull`` uses
for a local socket and a registry that needs no credentials) must say what the docker-py
path says: the same events for an up-to-date image and a fresh one, the same engine message
for an unknown tag, the same words when the socket is missing, and a cancel that ends it.
The docker-py path is a :class:`PullSession` given a ``docker.DockerClient``.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.auth
import docker.errors
import pytest

from dockprogress.docker.client import connect, engine_platform
from dockprogress.docker.endpoint import resolve
from dockprogress.docker.http11 import Connection
from dockprogress.docker.lean import LeanEngine, engine_arch, needs_credentials
from dockprogress.docker.pull import PullSession
from dockprogress.errors import EngineError, PullError
from dockprogress.events import State, TaskEvent
from tests.conftest import Engine, drop_leftover_pull_leases, drop_untagged_copies
from tests.conftest import Testbed as Bed
from tests.contract import assert_event_lines
from tests.importtime import cli_imports, heavy

# ----------------------------------------------------------------- no engine needed


def _docker_py_sends_credentials(config: Path, registry: str) -> bool:
    """What docker-py's pull decides (``auth.get_config_header``) for this config file."""
    auth = docker.auth.load_config(config_path=str(config))
    return bool(docker.auth.resolve_authconfig(auth, registry))


CONFIGS: list[tuple[str, dict[str, Any], str, bool]] = [
    ("no auth", {"currentContext": "default"}, "127.0.0.1:5000", False),
    ("auths for it", {"auths": {"127.0.0.1:5000": {"auth": "dTpw"}}}, "127.0.0.1:5000", True),
    ("auths url form", {"auths": {"https://ghcr.io/v2/": {"auth": "dTpw"}}}, "ghcr.io", True),
    ("hub key", {"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"}}}, "docker.io", True),
    ("auths elsewhere", {"auths": {"ghcr.io": {"auth": "dTpw"}}}, "127.0.0.1:5000", False),
    ("credsStore", {"credsStore": "desktop"}, "127.0.0.1:5000", True),
    ("credHelpers for it", {"credHelpers": {"127.0.0.1:5000": "pass"}}, "127.0.0.1:5000", True),
    ("credHelpers elsewhere", {"credHelpers": {"ghcr.io": "pass"}}, "127.0.0.1:5000", False),
    ("bare legacy entries", {"127.0.0.1:5000": {"auth": "dTpw"}}, "127.0.0.1:5000", True),
]


@pytest.mark.parametrize(
    ("config", "registry", "expected"), [c[1:] for c in CONFIGS], ids=[c[0] for c in CONFIGS]
)
def test_needs_credentials_whenever_docker_py_would_send_them(
    config: dict[str, Any],
    registry: str,
    expected: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.docker of this machine
    directory = tmp_path / "docker"
    directory.mkdir()
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    env = {"DOCKER_CONFIG": str(directory)}
    assert needs_credentials([registry], env) is expected
    if "credsStore" not in config and "credHelpers" not in config:  # no helper to run
        # Never lean where docker-py would send credentials (the reverse may be conservative).
        assert not _docker_py_sends_credentials(path, registry) or expected


def test_needs_credentials_without_a_file_and_for_what_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    assert needs_credentials(["127.0.0.1:5000"], {}) is False
    (home / ".dockercfg").write_text("auth = dTpw\nemail = a@b\n")  # docker-py reads it
    assert needs_credentials(["127.0.0.1:5000"], {}) is True
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text("{not json")  # docker-py decides then
    assert needs_credentials(["127.0.0.1:5000"], {}) is True


def test_engine_arch_reads_uname_names_as_docker_version_says_them() -> None:
    assert engine_arch("x86_64") == "amd64"
    assert engine_arch("aarch64") == "arm64"
    assert engine_arch("armv7l") == "arm"
    assert engine_arch("i686") == "386"
    assert engine_arch("sparc") is None  # unknown: /version is asked instead


# ----------------------------------------------------------------- on the engines

VOLATILE = ("ts", "speed", "eta")


def _comparable(event: TaskEvent) -> dict[str, Any]:
    data = json.loads(event.to_json())
    for key in VOLATILE:
        data.pop(key, None)
    return data


def _gone(client: docker.DockerClient, testbed: Bed, ref: str) -> None:
    """Remove ``ref`` under both registry names, tag by tag (on the containerd store, a
    forced removal by ID may leave the other name's tag, and with it every layer)."""
    path = ref.split("/", 1)[1]
    for registry in (testbed.registry, testbed.slow_registry):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(f"{registry}/{path}", force=True)
    for registry in (testbed.registry, testbed.slow_registry):
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(f"{registry}/{path}")
    drop_untagged_copies(client, [f"{r}/{path}" for r in (testbed.registry, testbed.slow_registry)])
    drop_leftover_pull_leases(client, testbed)


def _events(session: PullSession) -> tuple[list[TaskEvent], BaseException | None]:
    events: list[TaskEvent] = []
    try:
        for event in session:
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
def test_lean_client_negotiates_as_docker_py_and_reads_the_same_platform(
    engine: Engine, engine_client: docker.DockerClient
) -> None:
    lean = LeanEngine.open(resolve())
    try:
        assert lean._prefix == f"/v{engine_client.api._version}"
        client = connect()
        try:
            assert lean.platform() == engine_platform(client)
        finally:
            client.close()
        containerd, engine_id = lean.image_store()
        assert containerd is engine.containerd_store
        assert engine_id == engine_client.info()["ID"]
    finally:
        lean.close()


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
def test_up_to_date_pull_has_the_same_events_on_both_paths(
    testbed: Bed, engine_client: docker.DockerClient
) -> None:
    lean = PullSession(testbed.base)
    ours, failure = _events(lean)
    assert failure is None
    assert isinstance(lean._engine, LeanEngine)  # the lean path was the one taken
    theirs, failure = _events(PullSession(testbed.base, client=engine_client))
    assert failure is None
    assert_event_lines([e.to_json() for e in ours])
    assert [_comparable(e) for e in ours] == [_comparable(e) for e in theirs]
    assert ours[-1].state is State.DONE
    assert ours[-1].detail["status"].startswith("Image is up to date")


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
def test_unknown_tag_is_the_engines_message_on_both_paths(
    testbed: Bed, engine_client: docker.DockerClient
) -> None:
    ref = testbed.registry + "/dp/layers:no-such-tag-lean"
    messages = []
    for client in (None, engine_client):
        session = PullSession(ref, client=client)
        events, failure = _events(session)
        assert isinstance(failure, PullError)
        assert events[-1].state is State.ERROR
        assert events[-1].error == failure.message  # the engine's own words
        assert "manifest_error" in events[-1].detail  # the registry said 404 first
        messages.append(str(failure))
    assert messages[0] == messages[1]
    assert "not found" in messages[0]


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
def test_missing_or_refusing_socket_says_the_same_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = f"unix://{tmp_path}/no-such.sock"
    # The lean path (no credentials) and docker-py's (an auths entry for the registry).
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {"127.0.0.1:5000": {}}}))
    said: dict[str, str] = {}
    for path in ("lean", "docker-py"):
        if path == "docker-py":
            monkeypatch.setenv("DOCKER_CONFIG", str(config))
        session = PullSession("127.0.0.1:5000/dp/base:1", host=missing)
        events, failure = _events(session)
        assert isinstance(failure, EngineError)
        assert [e.state for e in events] == [State.ERROR]
        assert events[0].error == str(failure)
        said[path] = str(failure)
    assert said["lean"] == said["docker-py"]
    assert said["lean"] == (
        f"could not connect to the Docker engine at {missing} (from -H): "
        f"{missing.removeprefix('unix://')} does not exist: is dockerd running? "
        "(or set DOCKER_HOST)"
    )
    # A socket file nobody listens on: the same address and hint, the OS's reason.
    monkeypatch.delenv("DOCKER_CONFIG")
    dead = tmp_path / "dead.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(dead))
    listener.close()  # the file stays, nobody listens: connection refused
    session = PullSession("127.0.0.1:5000/dp/base:1", host=f"unix://{dead}")
    _, failure = _events(session)
    assert isinstance(failure, EngineError)
    assert str(failure) == (
        f"could not connect to the Docker engine at unix://{dead} (from -H): "
        "[Errno 111] Connection refused; is dockerd running and answering on it?"
    )


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", ["lean", "docker-py"])
def test_fresh_pull_has_byte_progress_on_both_paths(
    path: str,
    testbed: Bed,
    engine_client: docker.DockerClient,
) -> None:
    # dp/many (41 MB in one layer) through the 5 MB/s front: on the bed's containerd store
    # dp/layers' blobs outlive the image (other images hold them), so it would download nothing.
    image = testbed.slow(testbed.images["many"])
    _gone(engine_client, testbed, image)
    session = PullSession(image, client=engine_client if path == "docker-py" else None)
    events, failure = _events(session)
    assert failure is None, f"{path}: {failure}"
    assert isinstance(session._engine, LeanEngine) is (path == "lean")
    assert_event_lines([e.to_json() for e in events])
    first, end = events[0], events[-1]
    assert first.detail["exact_total"] is True
    assert first.current == 0
    assert (first.total or 0) > 0
    moving = [e for e in events if 0 < e.current < (end.total or 0)]
    assert len(moving) > 3, f"{path}: no byte progress"
    currents = [e.current for e in events]
    assert currents == sorted(currents), f"{path}: bytes went backwards"
    assert end.state is State.DONE
    assert end.current == end.total
    assert set(end.detail["layers"]) == set(first.detail["layers"])  # the manifest's layers
    assert {layer["state"] for layer in end.detail["layers"].values()} <= {"complete", "present"}


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
@pytest.mark.parametrize("path", ["lean", "docker-py"])
def test_cancel_from_another_thread_ends_a_pull_on_both_paths(
    path: str,
    testbed: Bed,
    engine_client: docker.DockerClient,
) -> None:
    image = testbed.slow(testbed.images["many"])
    _gone(engine_client, testbed, image)
    session = PullSession(image, client=engine_client if path == "docker-py" else None)
    events: list[TaskEvent] = []
    cancelled: list[TaskEvent] = []
    finished = threading.Event()

    def iterate() -> None:
        for event in session:
            events.append(event)
            if event.current > 0 and not cancelled:
                canceller = threading.Thread(target=lambda: cancelled.extend(session.cancel()))
                canceller.start()
                canceller.join()
        finished.set()

    started = time.monotonic()
    threading.Thread(target=iterate, daemon=True).start()
    assert finished.wait(60), f"{path}: the iteration never ended after cancel()"
    # (the modern engine keeps a cancelled pull's lease, pinning dp/many for later tests)
    drop_leftover_pull_leases(engine_client, testbed)
    assert time.monotonic() - started < 60
    assert [e.state for e in cancelled] == [State.CANCELLED]
    assert 0 < cancelled[0].current < (cancelled[0].total or 0)
    assert all(not e.terminal for e in events)
    if path == "lean":
        assert isinstance(session._engine, LeanEngine)
        assert session._engine._streams == []
        assert session._engine._sent == []
    _gone(engine_client, testbed, image)


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
def test_cli_pull_of_an_up_to_date_image_imports_no_docker_py_requests_or_paramiko(
    testbed: Bed,
) -> None:
    last, imported = cli_imports("pull", testbed.base, timeout=120)
    assert last["state"] == "done"
    assert "dockprogress.docker.lean" in imported  # the importtime lines were read
    assert heavy(imported) == []


@pytest.mark.engine
@pytest.mark.usefixtures("on_engine")
def test_http_reader_parses_a_recorded_engine_answer_whole_byte_by_byte_and_split(
    engine: Engine,
) -> None:
    """A pull answer recorded off the engine's socket, read back by the HTTP/1.1 reader fed
    in every way: the chunks it yields are the recording's chunks, in order."""
    path = engine.docker_host.removeprefix("unix://")
    lean = LeanEngine.open(resolve())
    prefix = lean._prefix
    lean.close()
    recorder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    recorder.connect(path)
    recorder.sendall(
        f"POST {prefix}/images/create?fromImage=127.0.0.1%3A5000%2Fdp%2Fbase&tag=1 HTTP/1.1\r\n"
        "Host: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    recording = b""
    while piece := recorder.recv(65536):
        recording += piece
    recorder.close()
    head, _, body = recording.partition(b"\r\n\r\n")
    assert b"chunked" in head.lower()
    expected: list[bytes] = []  # the chunks, read from the recording independently
    rest = body
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        expected.append(rest[:size])
        rest = rest[size + 2 :]
    assert b"Image is up to date" in b"".join(expected)

    rng = random.Random(16)
    splits: list[list[bytes]] = [[recording], [recording[i : i + 1] for i in range(len(recording))]]
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(recording)), 12))
        splits.append(
            [recording[a:b] for a, b in zip([0, *cuts], [*cuts, len(recording)], strict=True)]
        )
    for pieces in splits:
        ours, theirs = socket.socketpair()

        def feed(pieces: list[bytes] = pieces, theirs: socket.socket = theirs) -> None:
            for piece in pieces:
                theirs.sendall(piece)
                if len(pieces) > 1:
                    time.sleep(0)  # let the reader see each piece on its own
            theirs.close()

        writer = threading.Thread(target=feed)
        writer.start()
        connection = Connection(lambda ours=ours: ours, "docker")
        connection.open()
        response = connection.response("POST")
        assert response.status == 200
        chunks = []
        while chunk := response.read_chunk():
            chunks.append(chunk)
        writer.join()
        connection.close()
        assert chunks == expected
