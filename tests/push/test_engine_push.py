"""Pushes on the real engine through the test bed's registry front (127.0.0.1:5001).

A fresh image (``fresh_image`` of tests/push/conftest.py: two layers of random bytes, 12 MB
and 6 MB, on dp/base) is built on each engine, under a repository name unique to the session,
so its first push sends every byte; the second push of it finds every layer in the registry.
"""

from __future__ import annotations

import docker
import pytest

from dockprogress.cli.main import main
from dockprogress.docker.push import PushSession, iter_push
from dockprogress.errors import PushError
from dockprogress.events import State, TaskEvent
from tests.build.recordings import assert_promises
from tests.conftest import Testbed as Bed
from tests.contract import assert_event_output
from tests.push.conftest import build_unpushed

pytestmark = pytest.mark.engine


def test_fresh_push_counts_every_byte_with_an_early_fixed_total(
    fresh_image: str, testbed: Bed, request: pytest.FixtureRequest
) -> None:
    # Its own build (on the engine fresh_image set): the module's image may have been pushed
    # already by another test of this module, whatever order they run in.
    image = build_unpushed(testbed)
    only: list[TaskEvent] = []
    try:
        only.extend(iter_push(image))
    finally:
        client = docker.from_env()
        try:
            client.images.remove(image, force=True)
        finally:
            client.close()
    assert_promises(only)
    last = only[-1]
    assert last.state is State.DONE
    assert last.total is not None
    if request.node.callspec.params["fresh_image"] == "classic":
        assert last.total >= 18_000_000  # two random layers (the base may be mounted)
    else:
        # The containerd store reports a push's bytes on a clock: a 6 MB layer sent between
        # two reports arrives as a bare "Pushed", like a layer the registry already had (the
        # base is "Pushed" too), so the stream alone cannot count it; the 12 MB one it can.
        assert last.total >= 12_000_000
    assert last.current == last.total
    totals = [e.total for e in only if e.total is not None]
    assert totals == sorted(totals), "the total never shrinks"  # (containerd: layers named late)
    if request.node.callspec.params["fresh_image"] == "classic":
        # The classic store announces every layer first: the total is fixed early. (The
        # containerd store names each layer with its first bytes, in MB steps: its total
        # grows in the first moments; the recordings test that it never shrinks.)
        assert len(set(totals)) == 1
    # As early as the engine allows: from the first event where every layer it named has
    # told its size or been found in the registry.
    for event in only:
        layers = event.detail.get("layers", {}).values()
        if layers and all(
            layer["total"] is not None or layer["state"] in ("exists", "mounted")
            for layer in layers
        ):
            assert event.total is not None
    # No assertion on the figures between the first byte and the end: both engines report a
    # push's bytes on a clock (the classic one at most every 100 ms, the containerd store in
    # about one-second steps), and on loopback 18 MB can go between two reports.
    # test_engine_paced.py pushes through a paced link and asserts live percents over seconds.


def test_second_push_finds_every_layer_in_the_registry(fresh_image: str) -> None:
    list(iter_push(fresh_image))  # whichever test runs first, the registry has it now
    events = list(iter_push(fresh_image))
    assert_promises(events)
    last = events[-1]
    assert last.state is State.DONE
    assert last.total == 0
    assert set(last.detail["counts"]) <= {"exists", "mounted"}


def test_push_to_no_registry_is_an_error_exit_1(
    fresh_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = docker.from_env()
    nowhere = "127.0.0.1:5999/" + fresh_image.split("/", 1)[1]
    client.images.get(fresh_image).tag(nowhere)
    try:
        status = main(["push", nowhere, "--progress", "json"])
        out = capsys.readouterr().out
        assert status == 1
        lines = assert_event_output(out)
        assert lines[-1]["state"] == "error"
        assert "127.0.0.1:5999" in lines[-1]["error"]
        with pytest.raises(PushError, match="connection refused"):
            list(iter_push(nowhere))
    finally:
        client.images.remove(nowhere)
        client.close()


def test_push_of_an_image_that_is_not_there_says_so() -> None:
    events: list[TaskEvent] = []
    with pytest.raises(PushError) as raised:
        events.extend(PushSession("127.0.0.1:5000/dp/no-such-image:1"))
    assert "does not exist" in str(raised.value)
