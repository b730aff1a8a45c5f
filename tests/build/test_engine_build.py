"""Builds on the real engines: the classic builder (20.10) and BuildKit (26.1 with buildx).

Contexts are tests/fixtures/build/contexts (FROM the bed's dp/base, never Docker Hub). RUN
steps get ``--network none`` (the bed's engines have no bridge). Calibration profiles go to
a temporary XDG_CACHE_HOME.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import docker
import pytest

from dockprogress.cli.main import main
from dockprogress.docker.build import BuildSession, build, iter_build
from dockprogress.errors import BuildError
from dockprogress.events import State, TaskEvent
from tests.build.recordings import FIXTURES, assert_promises
from tests.conftest import Testbed as Bed
from tests.contract import assert_event_output
from tests.importtime import cli_imports, heavy

pytestmark = pytest.mark.engine

CONTEXTS = FIXTURES / "contexts"
TAG = "127.0.0.1:5000/dp/bptest"


@pytest.fixture(params=["classic", "buildkit"])
def builder(
    request: pytest.FixtureRequest,
    testbed: Bed,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> str:
    """The engine and builder under test, DOCKER_HOST pointed at it, a fresh profile cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT", "DOCKER_BUILDKIT"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "classic":
        engine = testbed.engines.get("classic")
        monkeypatch.setenv("DOCKER_HOST", engine.docker_host if engine else testbed.docker_host)
        return "classic"
    modern = testbed.engines.get("modern")
    if modern is None or not modern.buildx:
        pytest.skip("the modern engine with buildx is not in this test bed")
    monkeypatch.setenv("DOCKER_HOST", modern.docker_host)
    monkeypatch.setenv("DOCKPROGRESS_BUILDX", modern.buildx)
    return "buildkit"


def _context(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(CONTEXTS / name, target)
    return target


def _sleepy(tmp_path: Path, seconds: float, tag: str) -> Path:
    """Six steps, the fourth one slow, with a unique echo so no cache is reused across runs."""
    context = tmp_path / "sleepy"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM 127.0.0.1:5000/dp/base:1\n"
        f"RUN echo {tag} one > /one\n"
        f"RUN echo {tag} two > /two\n"
        f"RUN for i in 1 2 3 4; do echo tick $i; sleep {seconds / 4}; done\n"
        f"RUN echo {tag} four > /four\n"
        f"RUN echo {tag} five > /five\n"
    )
    return context


def test_multistage_build_with_a_target(builder: str, tmp_path: Path) -> None:
    events = list(
        iter_build(
            _context(tmp_path, "multistage"),
            tags=[f"{TAG}:{builder}", f"{TAG}:{builder}-also"],
            target="final",
            build_args={"WHO": "tests"},
            network="none",
            no_cache=True,
            builder=builder,
        )
    )
    assert_promises(events)
    last = events[-1]
    assert last.state is State.DONE
    # classic: every instruction up to the target (10); BuildKit: the 5 steps 'final' needs
    # plus the export.
    assert last.total == (10 if builder == "classic" else 6)
    assert last.current == last.total
    live = {round(e.percent or 0) for e in events if e.state is State.RUNNING}
    assert len(live) >= 4
    assert any("step 3 for tests" in line for e in events for line in e.detail["last_lines"])
    if builder == "classic":  # the context upload is counted in bytes, before step 1
        uploads = [e.detail["upload"] for e in events if e.phase == "uploading"]
        assert uploads
        assert uploads[-1]["current"] == uploads[-1]["total"] > 0
    client = docker.from_env()
    try:  # both tags name the built image
        first, second = (client.images.get(f"{TAG}:{builder}{s}") for s in ("", "-also"))
        assert first.id == second.id
        client.images.remove(f"{TAG}:{builder}-also")
    finally:
        client.close()


def test_failing_step_is_an_error_with_exit_status_and_last_lines(
    builder: str, tmp_path: Path
) -> None:
    events: list[TaskEvent] = []
    with pytest.raises(BuildError) as raised:
        build(
            _context(tmp_path, "fail"),
            network="none",
            no_cache=True,
            builder=builder,
            on_event=events.append,
        )
    assert_promises(events)
    assert events[-1].state is State.ERROR
    assert raised.value.exit_code == 3
    assert "about to fail" in raised.value.last_lines
    assert "exit status 3" in (events[-1].error or "")


def test_failing_build_exits_1_with_event_lines(
    builder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["build", str(_context(tmp_path, "fail")), "--network", "none", "--no-cache"]
    status = main([*argv, "--builder", builder, "--progress", "json"])
    out = capsys.readouterr().out
    assert status == 1
    lines = assert_event_output(out)
    assert lines[-1]["state"] == "error"
    assert lines[-1]["operation"] == "build"


def test_cancelled_build_stops(builder: str, tmp_path: Path) -> None:
    tag = f"{TAG}:cancel-{builder}"
    session = BuildSession(
        _sleepy(tmp_path, 20, f"cancel-{tmp_path.name}"),
        tags=[tag],
        network="none",
        builder=builder,
    )
    events: list[TaskEvent] = []
    cancelled = threading.Event()

    def cancel() -> None:  # as the dashboard's cancel button does, from another thread
        events.extend(session.cancel("cancelled by the test"))
        cancelled.set()

    for event in session:
        events.append(event)
        if "tick 1" in event.detail.get("last_lines", ()) and not cancelled.is_set():
            threading.Thread(target=cancel).start()
            assert cancelled.wait(10)
    assert_promises(events)
    assert events[-1].state is State.CANCELLED
    client = docker.from_env()
    try:
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(tag)  # the build stopped before its end
    finally:
        client.close()


def test_second_build_is_calibrated_by_the_first(builder: str, tmp_path: Path) -> None:
    context = _sleepy(tmp_path, 2, f"calibrate-{tmp_path.name}")
    first = build(context, network="none", no_cache=True, builder=builder)
    assert first.state is State.DONE
    assert first.detail["calibrated"] is False
    events: list[TaskEvent] = []
    second = build(context, network="none", no_cache=True, builder=builder, on_event=events.append)
    assert second.state is State.DONE
    assert_promises(events)
    running = [e for e in events if e.state is State.RUNNING]
    assert running[-1].detail["calibrated"] is True
    etas = [e.eta for e in running if e.eta is not None]
    assert len(etas) >= 4
    assert etas[-1] < etas[0]
    percents = {round(e.percent or 0) for e in running}
    assert len(percents) >= 6  # the calibrated bar moves during the slow step too


def test_cli_build_imports_no_docker_py(builder: str, tmp_path: Path) -> None:
    # BuildKit runs buildx; the classic builder goes to /build through the lean client when
    # the context has no .dockerignore and the docker config no credentials.
    context = _sleepy(tmp_path, 0.2, f"imports-{time.monotonic_ns()}")
    last, imported = cli_imports("build", str(context), "--builder", builder, "--network", "none")
    assert last["state"] == "done"
    assert "dockprogress.docker.build" in imported  # the importtime lines were read
    assert heavy(imported) == []
