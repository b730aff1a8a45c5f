"""``rediss://``: the bus over TLS to the bed's Redis, the server's certificate verified against
the bed's CA; a CA that did not sign it is refused at once, in one line."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from dockprogress.bus import open_bus
from dockprogress.bus.feed import RedisFeed
from dockprogress.bus.publisher import RedisPublisher
from dockprogress.errors import UsageError
from dockprogress.events import Kind, Operation, State
from dockprogress.sinks.web.hub import EventHub
from dockprogress.task import Task
from tests.fleet.conftest import REPO, Replica, cli, testbed_redis, ws_tasks


@pytest.fixture
def tls_url(redis_bed: Path) -> str:
    """The bed's Redis over TLS (database 0 of the ACL user), verified with the bed's CA."""
    if not testbed_redis.tls_answers(redis_bed):
        reason = (
            f"the bed's Redis has no TLS port {testbed_redis.TLS_PORT} (started before "
            "scripts/testbed_redis.py had one): restart the bed"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return testbed_redis.tls_url(redis_bed).replace("/0?", "/3?")


@pytest.fixture
def wrong_ca(tmp_path: Path) -> Path:
    """A CA of its own, which signed nothing the bed uses."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(tmp_path / "ca-key.pem"), "-out", str(tmp_path / "ca.pem"),
         "-subj", "/CN=not the bed's CA"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return tmp_path / "ca.pem"


def test_events_go_through_rediss_with_the_certificate_verified(
    tls_url: str, tmp_path: Path
) -> None:
    assert tls_url.startswith("rediss://")
    assert "ssl_ca_certs=" in tls_url
    hub = EventHub()
    feed = RedisFeed(tls_url, hub, node_timeout=60).start()
    publisher = RedisPublisher(tls_url, "tls-node")
    try:
        task = Task("run:tls", Operation.RUN, Kind.COUNT, total=4)
        for step in range(1, 4):
            event = task.update(current=step)
            assert event is not None
            publisher.send(event)
        done = task.finish()
        assert done is not None
        publisher.send(done)
        publisher.close()
        deadline = time.monotonic() + 10
        while (seen := hub.get("run:tls", "tls-node")) is None or seen.state is not State.DONE:
            assert time.monotonic() < deadline, "the final state did not come through TLS"
            time.sleep(0.05)
        assert seen.percent == 100
        assert feed.connected
        assert publisher.sent >= 1
        assert publisher.failures == 0
    finally:
        feed.close()

    # The command line, both ways: a replica fed over TLS, a node publishing over TLS.
    replica = Replica(tls_url, tmp_path / "replica.log")
    try:
        run = subprocess.run(
            cli("run", "--bus", tls_url, "--node", "tls-cli", "--progress", "json", "--",
                "sh", "-c", 'printf "\\r50%%"; sleep 0.3; printf "\\r100%%\\n"'),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert "warning" not in run.stderr, run.stderr
        seen = ws_tasks(
            replica.url,
            lambda tasks: any(
                k[0] == "tls-cli" and v["event"]["state"] == "done" for k, v in tasks.items()
            ),
            timeout=20,
        )
        assert ("tls-node", "run:tls") in seen  # the snapshot, read over TLS too
    finally:
        replica.stop()


@pytest.mark.parametrize("ca", ["wrong", "system"], ids=["wrong-ca", "system-store"])
def test_a_ca_that_did_not_sign_the_certificate_is_refused_in_one_line(
    tls_url: str, wrong_ca: Path, ca: str
) -> None:
    base = tls_url.split("?", 1)[0]
    url = f"{base}?ssl_ca_certs={wrong_ca}" if ca == "wrong" else base  # system: the OS store
    started = time.monotonic()
    serve = subprocess.run(
        cli("serve", "--port", "0", "--bus", url),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert serve.returncode == 1
    refusals = [line for line in serve.stderr.splitlines() if "not trusted" in line]
    assert len(refusals) == 1, serve.stderr  # said once, in one line
    assert refusals[0].startswith("dockprogress: error: Redis at rediss://")
    assert "certificate" in refusals[0]
    assert "ssl_ca_certs=" in refusals[0]
    assert testbed_redis.PASSWORD not in serve.stderr  # the password is never printed

    run = subprocess.run(
        cli("run", "--bus", url, "--progress", "plain", "--", "true"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 0  # the command's own result: the bus is an extra display
    warnings = [line for line in run.stderr.splitlines() if "not trusted" in line]
    assert len(warnings) == 1, run.stderr
    assert "did not take" not in run.stderr  # it gave up at once, not after a 5 s wait
    assert time.monotonic() - started < 30


def test_an_unreadable_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    with pytest.raises(UsageError, match="cannot read ssl_ca_certs file"):
        open_bus(f"rediss://127.0.0.1:{testbed_redis.TLS_PORT}/0?ssl_ca_certs={missing}")
    run = subprocess.run(
        cli("run", "--bus", f"rediss://127.0.0.1:1/0?ssl_ca_certs={missing}", "--", "true"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 2
    assert "cannot read ssl_ca_certs file" in run.stderr
