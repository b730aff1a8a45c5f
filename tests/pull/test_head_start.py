"""The pull's head start (``docker/headstart.py``): ``dockprogress pull`` sends its requests
before the rest of the command loads, only when nothing can refuse the command line later,
and the pull session takes them over; on both engines of the bed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockprogress.docker import headstart
from dockprogress.docker.endpoint import resolve
from dockprogress.docker.headstart import head_start, plain_pull
from dockprogress.docker.lean import LeanEngine
from dockprogress.docker.pull import PullSession
from dockprogress.events import State
from tests.conftest import Engine
from tests.conftest import Testbed as Bed

MODES = ("auto", "tty", "plain", "json")


@pytest.fixture(autouse=True)
def _no_head_start_left() -> Iterator[None]:
    headstart.discard()
    yield
    headstart.discard()


@pytest.mark.parametrize(
    ("args", "images"),
    [
        (["a"], ["a"]),
        (["a", "b:1"], ["a", "b:1"]),
        (["--progress", "json", "a"], ["a"]),
        (["a", "b", "--progress=plain"], ["a", "b"]),
        (["a", "--progress", "json", "b"], None),  # argparse refuses the second run of images
        (["--progress", "bars", "a"], None),  # not a mode
        (["--progress"], None),
        (["--progress", "json"], None),  # no image: a usage error
        (["-H", "unix:///x.sock", "a"], None),
        (["--platform", "linux/arm64", "a"], None),
        (["a", "--dashboard", "http://127.0.0.1:1"], None),
        (["--", "a"], None),
        ([], None),
    ],
)
def test_only_a_plain_command_line_gives_images(args: list[str], images: list[str] | None) -> None:
    assert plain_pull(args, MODES) == images


def test_nothing_is_sent_for_what_the_command_would_refuse_or_route_elsewhere(
    testbed: Bed, tmp_path: Path
) -> None:
    home = {"HOME": str(tmp_path), "DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert head_start(["NOT/Valid:ref:"], home) is None  # the parser's usage error
    assert head_start(["--platform", "linux/amd64", testbed.base], home) is None
    assert head_start([testbed.base], {**home, "DOCKPROGRESS_BUS": "nope://"}) is None
    assert head_start([testbed.base], {**home, "DOCKER_HOST": "tcp://127.0.0.1:9"}) is None
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {"127.0.0.1:5000": {"auth": "e30="}}}))
    assert head_start([testbed.base], {**home, "DOCKER_CONFIG": str(config)}) is None
    # An engine that is not there: nothing sent, the command says it with its own words.
    missing = {**home, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    assert head_start([testbed.base], missing) is None
    assert headstart._started is None


def test_the_session_takes_the_sent_pulls_over(
    on_engine: Engine, testbed: Bed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no credentials of this machine
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    images = [testbed.base]
    started = head_start(["--progress", "json", *images])
    assert started is not None, "a plain pull on a local socket gets its head start"
    assert started.images == tuple(images)
    assert started.engine._info_asked is not None  # /info asked too, answered meanwhile
    session = PullSession(images)
    events = list(session)
    assert session._engine is started.engine
    assert headstart._started is None
    assert events[-1].state is State.DONE
    assert events[-1].total == events[-1].current or events[-1].percent == 100.0


def test_a_head_start_for_other_images_is_closed_not_taken(
    on_engine: Engine, testbed: Bed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    started = head_start([testbed.base])
    assert started is not None
    taken = headstart.take([testbed.base, testbed.base], resolve(), None)
    assert taken is None
    assert not started.engine._sent
    events = list(PullSession([testbed.base]))  # and a session then pulls on its own
    assert events[-1].state is State.DONE


_ORDER = r"""
import sys
seen = []
def hook(event, args):
    if event == "import" and args[0] in ("argparse", "dockprogress.events"):
        seen.append("import " + args[0])
    elif event == "socket.connect" and isinstance(args[1], str):
        seen.append("connect " + args[1])
sys.addaudithook(hook)
sys.argv = ["dockprogress", "pull", "--progress", "json", IMAGE]
from dockprogress.cli.main import main
status = main()
print(repr(seen), file=sys.stderr)
raise SystemExit(status)
"""


def _pull_in_order(image: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``dockprogress pull image`` under the _ORDER audit, with no credentials configured."""
    env = {**os.environ, "HOME": str(home)}
    env.pop("DOCKER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-c", _ORDER.replace("IMAGE", repr(image))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_cli_asks_the_engine_before_loading_its_parser_and_event_model(
    on_engine: Engine, testbed: Bed, tmp_path: Path
) -> None:
    run = _pull_in_order(testbed.base, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.splitlines()[-1])["state"] == "done"
    seen: list[str] = eval(run.stderr.strip().splitlines()[-1])
    socket_path = on_engine.docker_host.removeprefix("unix://")
    assert seen[0] == f"connect {socket_path}", seen
    assert "import argparse" in seen
    assert "import dockprogress.events" in seen


def test_info_asked_ahead_is_the_info_asked_then(on_engine: Engine) -> None:
    endpoint = resolve()
    ahead, then = LeanEngine.open(endpoint), LeanEngine.open(endpoint)
    try:
        ahead.prefetch_info()
        assert ahead._info_asked is not None  # sent, not read
        assert ahead.image_store() == then.image_store()
        assert ahead.platform() == then.platform()
        assert ahead._info_asked is None
    finally:
        ahead.close()
        then.close()


def test_info_asked_ahead_on_a_lost_connection_is_asked_again(on_engine: Engine) -> None:
    engine = LeanEngine.open(resolve())
    try:
        engine.prefetch_info()
        asked = engine._info_asked
        assert asked is not None
        asked.shutdown()  # the answer can no longer be read
        info = engine.info()
        assert info.get("ID"), "the engine's own /info, asked again"
    finally:
        engine.close()


def test_a_missing_image_sent_ahead_ends_in_the_engines_error(
    on_engine: Engine, testbed: Bed, tmp_path: Path
) -> None:
    """The head start sends the pull of an image the registry does not have; the session
    reads the engine's refusal from that request: exit 1, the engine's words, no traceback."""
    run = _pull_in_order(testbed.registry + "/dp/base:no-such-tag", tmp_path)
    assert run.returncode == 1, run.stderr[-2000:]
    seen: list[str] = eval(run.stderr.strip().splitlines()[-1])
    assert seen[0].startswith("connect "), seen  # sent before the parser loaded
    end = json.loads(run.stdout.splitlines()[-1])
    assert end["state"] == "error"
    assert "not found" in end["error"]
    assert end["error"] in run.stderr
    assert "Traceback" not in run.stderr
