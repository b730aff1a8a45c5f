"""A push to a registry that wants credentials: refused without them, with a message that says
what to do; done with them. The registry is Debian's ``docker-registry`` with htpasswd auth,
started by the test on a free 127.0.0.1 port (tests/push/registries.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockprogress.cli.main import main
from dockprogress.docker.push import iter_push
from dockprogress.errors import PushError
from dockprogress.events import State
from tests.build.recordings import assert_promises
from tests.contract import assert_event_output
from tests.push.registries import AuthRegistry, retagged

pytestmark = pytest.mark.engine


def test_push_refused_for_want_of_credentials_says_to_log_in(
    fresh_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-logins"))  # nobody logged in
    with AuthRegistry() as registry, retagged(fresh_image, registry.address) as name:
        status = main(["push", name, "--progress", "json"])
        out = capsys.readouterr().out
        assert status == 1
        lines = assert_event_output(out)
        last = lines[-1]
        assert last["state"] == "error"
        message = last["error"]
        assert "\n" not in message
        assert f"docker login {registry.address}" in message
        with pytest.raises(PushError) as raised:
            list(iter_push(name))
        assert f"docker login {registry.address}" in str(raised.value)
        repository = name.split("/", 1)[1].rsplit(":", 1)[0]
        assert registry.status(f"/v2/{repository}/manifests/1") == 404  # nothing arrived


def test_push_with_the_credentials_of_the_cli_config_is_done(
    fresh_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuthRegistry() as registry, retagged(fresh_image, registry.address) as name:
        monkeypatch.setenv("DOCKER_CONFIG", str(registry.docker_config(tmp_path / "cfg")))
        events = list(iter_push(name))
        assert_promises(events)
        assert events[-1].state is State.DONE
        assert events[-1].total is not None
        assert events[-1].total >= 18_000_000
        repository = name.split("/", 1)[1].rsplit(":", 1)[0]
        assert registry.status(f"/v2/{repository}/manifests/1") == 200
        assert registry.status(f"/v2/{repository}/manifests/1", authenticated=False) == 401
