"""The lean push path (the standard library on the local engine's socket) against docker-py's,
on both engines of the bed: the same events, the same refusals, and no docker-py import for a
CLI push to a registry the docker CLI's config has no credentials for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pytest

from dockprogress.docker.lean import LeanEngine
from dockprogress.docker.push import PushSession, _DockerPyEngine
from dockprogress.errors import PushError
from dockprogress.events import State, TaskEvent
from tests.build.recordings import assert_promises
from tests.contract import assert_event_lines
from tests.importtime import cli_imports, heavy

pytestmark = pytest.mark.engine

VOLATILE = ("ts", "speed", "eta")


def _comparable(event: TaskEvent) -> dict[str, Any]:
    data = json.loads(event.to_json())
    for key in VOLATILE:
        data.pop(key, None)
    return data


def _events(session: PushSession) -> tuple[list[TaskEvent], BaseException | None]:
    events: list[TaskEvent] = []
    try:
        events.extend(session)
    except Exception as exc:
        return events, exc
    return events, None


def test_push_of_layers_the_registry_has_ends_the_same_on_both_paths(
    fresh_image: str,
) -> None:
    list(PushSession(fresh_image))  # whichever test ran first, the registry has it now
    lean = PushSession(fresh_image)
    ours, failure = _events(lean)
    assert failure is None
    assert isinstance(lean._engine, LeanEngine)  # the lean path was the one taken
    client = docker.from_env()
    try:
        theirs, failure = _events(PushSession(fresh_image, client=client))
    finally:
        client.close()
    assert failure is None
    assert_promises(ours)
    assert_event_lines([e.to_json() for e in ours])
    assert ours[-1].state is State.DONE
    assert ours[-1].detail["digest"].startswith("sha256:")
    # The same end, layer by layer (the events between may differ: the engine checks the
    # layers in parallel and says so in whatever order they answer).
    assert _comparable(ours[-1]) == _comparable(theirs[-1])
    assert set(ours[-1].detail["counts"]) <= {"exists", "mounted"}


def test_push_of_an_image_that_is_not_there_is_refused_alike_on_both_paths() -> None:
    missing = "127.0.0.1:5000/dp/no-such-image-lean:1"
    said = []
    client = docker.from_env()
    try:
        for given in (None, client):
            session = PushSession(missing, client=given)
            events, failure = _events(session)
            assert isinstance(failure, PushError)
            assert [e.state for e in events][-1] is State.ERROR
            assert all(e.state is State.RUNNING for e in events[:-1])
            assert events[-1].error == failure.message
            expected = LeanEngine if given is None else _DockerPyEngine
            assert isinstance(session._engine, expected)
            said.append(str(failure))
    finally:
        client.close()
    assert said[0] == said[1]
    assert "does not exist" in said[0]


def test_a_registry_with_credentials_in_the_cli_config_goes_through_docker_py(
    fresh_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = fresh_image.split("/", 1)[0]
    (tmp_path / "config.json").write_text(json.dumps({"auths": {registry: {}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    session = PushSession(fresh_image)
    events, failure = _events(session)
    assert failure is None
    assert isinstance(session._engine, _DockerPyEngine)
    assert events[-1].state is State.DONE


def test_cli_push_imports_no_docker_py_requests_or_paramiko(fresh_image: str) -> None:
    last, imported = cli_imports("push", fresh_image)
    assert last["state"] == "done"
    assert "dockprogress.docker.lean" in imported  # the importtime lines were read
    assert heavy(imported) == []
