"""Shared fixtures: the real Docker test bed (see docs/testbed.md).

Fixtures other test files rely on (keep these names):

- ``testbed`` (session): a :class:`Testbed` read from ``.testbed/state.json``. If the bed is
  not up, ``scripts/testbed up`` is run once. Attributes: ``registry`` ("127.0.0.1:5000"),
  ``slow_registry`` ("127.0.0.1:5001", bandwidth-limited), ``rate`` (nginx limit, "5m"),
  image refs on the fast registry ``base``, ``layers``, ``shared_a``, ``shared_b``,
  ``python``, ``postgres``, ``tools`` (curl, wget, git, rsync, ffmpeg, pip, npm, apt), and
  :meth:`Testbed.slow` to name an image on the slow front; ``files`` is the URL where the
  slow front serves the files those tools download (``files + "/manifest.json"`` lists them
  with their sizes, see scripts/testbed_files.py).
- ``docker_client`` (session): a ``docker.DockerClient`` for the bed's engine.
- ``remove_image`` (function): ``remove_image(ref)`` removes that image with every tag it
  has (the :5000 and :5001 names alike), so the next pull downloads it again.
- ``engine`` (session, parametrized ``classic`` / ``modern``): an :class:`Engine` of the bed:
  Docker 20.10 with the classic image store, and Docker 26.1 with the containerd image store
  (``scripts/testbed host classic|modern``). A test suite runs on both engines by asking for
  it; ``on_engine`` (function) also points ``DOCKER_HOST`` at it for the test, so code that
  finds the engine as the docker CLI does (the trackers, the CLI, subprocesses) uses it.
  ``engine_client`` is a ``docker.DockerClient`` for it. The pull, logs and exec suites
  (tests/{pull,logs,exec}/conftest.py) make ``docker_client`` that engine's client and use
  ``on_engine`` for every ``engine``-marked test, so their engine tests run twice, ids
  ``[classic]`` and ``[modern]``.

Every test marked ``engine`` gets ``testbed`` automatically. When the bed cannot be brought
up such a test is skipped with the reason, except under ``CI=true``, where it fails: CI must
never pass by skipping the engine tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import docker
import docker.errors
import pytest

REPO = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("TESTBED_DIR", REPO / ".testbed"))
TESTBED = REPO / "scripts" / "testbed"
# Tests must leave these tagged locally: other engineers' tests and `make demo` use them.
PROTECTED = ("dp/base:", "dp/python:", "dp/postgres:", "dp/tools:")


@dataclass(frozen=True)
class Engine:
    """One engine of the bed, as ``scripts/testbed`` recorded it in state.json."""

    name: str  # "classic" or "modern"
    docker_host: str
    version: str
    containerd_store: bool
    tls_host: str | None = None
    cert_path: str | None = None
    buildx: str | None = None

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


@dataclass(frozen=True)
class Testbed:
    """Addresses and image names of the running test bed (from ``.testbed/state.json``)."""

    registry: str
    slow_registry: str
    rate: str
    docker_host: str
    images: dict[str, str] = field(repr=False)
    engines: dict[str, Engine] = field(default_factory=dict, repr=False)
    files: str = ""  # http://127.0.0.1:5001/files: the front's files (scripts/testbed_files.py)

    @property
    def base(self) -> str:
        return self.images["base"]

    @property
    def layers(self) -> str:
        return self.images["layers"]

    @property
    def shared_a(self) -> str:
        return self.images["shared_a"]

    @property
    def shared_b(self) -> str:
        return self.images["shared_b"]

    @property
    def python(self) -> str:
        return self.images["python"]

    @property
    def postgres(self) -> str:
        return self.images["postgres"]

    @property
    def tools(self) -> str:
        """Debian with curl, wget, git, rsync, ffmpeg, python3-pip, npm (and apt)."""
        return self.images["tools"]

    def slow(self, ref: str) -> str:
        """The same image named on the bandwidth-limited front: pulls take seconds."""
        prefix = self.registry + "/"
        if not ref.startswith(prefix):
            raise ValueError(f"{ref!r} is not an image of the test bed registry {self.registry}")
        return self.slow_registry + "/" + ref[len(prefix) :]


def _answers(address: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://{address}/v2/", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _read_state() -> Testbed | None:
    """The bed described by state.json, if that file exists and both registries answer."""
    try:
        state = json.loads((STATE_DIR / "state.json").read_text())
    except (OSError, ValueError):
        return None
    bed = Testbed(
        registry=state["registry"],
        slow_registry=state["slow_registry"],
        rate=state["rate"],
        docker_host=state["docker_host"],
        images=dict(state["images"]),
        files=state.get("files", f"http://{state['slow_registry']}/files"),
        engines={
            name: Engine(
                name=name,
                docker_host=entry["docker_host"],
                version=str(entry.get("version") or "0"),
                containerd_store=bool(entry.get("containerd_store")),
                tls_host=entry.get("tls_host"),
                cert_path=entry.get("cert_path"),
                buildx=entry.get("buildx"),
            )
            for name, entry in state.get("engines", {}).items()
        },
    )
    if _answers(bed.registry) and _answers(bed.slow_registry):
        return bed
    return None


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"test bed unavailable under CI: {reason}", pytrace=False)
    pytest.skip(f"test bed unavailable: {reason} (run `scripts/testbed up`)")


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    bed = _read_state()
    if bed is None:
        try:
            run = subprocess.run(
                [str(TESTBED), "up"], capture_output=True, text=True, timeout=900, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            _unavailable(f"`scripts/testbed up` did not complete: {exc}")
        if run.returncode != 0:
            tail = "\n".join((run.stdout + run.stderr).splitlines()[-15:])
            _unavailable(f"`scripts/testbed up` exited {run.returncode}:\n{tail}")
        bed = _read_state()
        if bed is None:
            _unavailable("`scripts/testbed up` succeeded but the registries do not answer")
    return bed


@pytest.fixture(autouse=True)
def _engine_tests_need_the_bed(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("engine") is not None:
        request.getfixturevalue("testbed")


@pytest.fixture(scope="session")
def docker_client(testbed: Testbed) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=testbed.docker_host, timeout=120)
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        _unavailable(f"engine at {testbed.docker_host} does not answer: {exc}")
    yield client
    client.close()


def _remove_image(client: docker.DockerClient, ref: str, registries: tuple[str, ...]) -> None:
    """Remove ``ref``'s image under every tag it has; do nothing if it isn't there.

    The same image may be tagged only under the *other* registry name (pulled as
    ``127.0.0.1:5000/dp/x`` while the test pulls ``127.0.0.1:5001/dp/x``): its layers would
    still be found locally, so both names are looked up.
    """
    if any(p in ref for p in PROTECTED):
        raise ValueError(f"{ref} is shared by the whole suite; tests must not remove it")
    path = next((ref[len(r) + 1 :] for r in registries if ref.startswith(r + "/")), None)
    names = [ref] if path is None else [f"{r}/{path}" for r in registries]
    for name in names:
        try:
            image = client.images.get(name)
        except docker.errors.ImageNotFound:
            continue
        # Removing by id with force drops every tag (the :5000 and :5001 names) in one call.
        try:
            client.images.remove(image.id, force=True)
        except docker.errors.ImageNotFound:
            continue  # another test session removed it meanwhile
    drop_untagged_copies(client, names)


def _repository(name: str) -> str:
    """``127.0.0.1:5000/dp/many:2`` -> ``127.0.0.1:5000/dp/many`` (a registry's port is not
    a tag)."""
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def drop_untagged_copies(client: docker.DockerClient, names: list[str]) -> None:
    """Remove the untagged images of ``names``' repositories.

    A bed that builds a fixture again (a fresh clone's bed on an engine that an earlier bed
    used) moves the tag to the new image and leaves the old one untagged, named only by its
    digest. Its layers are the same, so a "fresh" pull of the tag would find them locally
    and download nothing.
    """
    repositories = {_repository(name) for name in names}
    for image in client.images.list(filters={"dangling": True}):
        digests = image.attrs.get("RepoDigests") or []
        if any(digest.split("@", 1)[0] in repositories for digest in digests):
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                client.images.remove(image.id, force=True)


def drop_leftover_pull_leases(client: docker.DockerClient, testbed: Testbed) -> None:
    """On the modern engine: drop the pull leases a cancelled pull left (24 h expiry).

    Docker 26 does not release the lease of a pull whose client went away (a cancel test):
    the layers it fetched stay pinned in containerd's content store, so the next "fresh"
    pull of the image downloads nothing. Tests run one at a time, so when a test forgets an
    image no pull of the suite is running; BuildKit's leases are left alone.
    """
    modern = testbed.engines.get("modern")
    if modern is None or not _same_host(client, modern.docker_host):
        return
    sys.path.insert(0, str(REPO / "scripts"))
    import testbed_modern  # scripts/ is not a package

    testbed_modern.drop_pull_leases(testbed_modern.from_env(STATE_DIR.resolve()))


def _same_host(client: docker.DockerClient, host: str) -> bool:
    adapter = getattr(client.api, "_custom_adapter", None)
    socket_path = getattr(adapter, "socket_path", None)
    return socket_path is not None and host == f"unix://{socket_path}"


@pytest.fixture
def remove_image(docker_client: docker.DockerClient, testbed: Testbed) -> Callable[[str], None]:
    def remove(ref: str) -> None:
        _remove_image(docker_client, ref, (testbed.registry, testbed.slow_registry))
        drop_leftover_pull_leases(docker_client, testbed)

    return remove


ENGINES = ("classic", "modern")


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest, testbed: Testbed) -> Engine:
    found = testbed.engines.get(request.param)
    if found is None:
        _unavailable(
            f"the {request.param} engine is not in the bed's state.json"
            " (TESTBED_MODERN=0, or a bed from before the modern engine: run `scripts/testbed up`)"
        )
    return found


@pytest.fixture(scope="session")
def engine_client(engine: Engine) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=engine.docker_host, timeout=120)
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        _unavailable(f"the {engine.name} engine at {engine.docker_host} does not answer: {exc}")
    yield client
    client.close()


@pytest.fixture
def on_engine(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Point DOCKER_HOST at ``engine`` for this test (and the processes it starts)."""
    monkeypatch.setenv("DOCKER_HOST", engine.docker_host)
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    return engine
