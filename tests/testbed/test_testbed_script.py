"""scripts/testbed itself: status, idempotent `up`, the fixture images, the slow front.

Expected figures come from scripts/fixtures/images.json (the spec the bed builds from),
the registry's manifests and the front's configured rate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Testbed

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "scripts" / "testbed"
SPECS = {
    k: v
    for k, v in json.loads((REPO / "scripts/fixtures/images.json").read_text()).items()
    if not k.startswith("_")
}
MIB = 1024 * 1024
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def manifest(ref: str) -> dict[str, Any]:
    registry, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with _OPENER.open(request, timeout=10) as response:
        return dict(json.load(response))


def run_testbed(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TESTBED), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.engine
def test_status_reports_every_service_and_image(testbed: Testbed) -> None:
    result = run_testbed("status", "--json", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["engine"]
    assert report["registry"]
    assert report["slow_registry"]
    assert report["files_served"]  # the real tools' files on the front (testbed_files.py)
    assert report["files"] == testbed.files
    assert set(report["images"]) == set(SPECS) == set(testbed.images)
    for key, where in report["images"].items():
        assert where["registry"], key
        if SPECS[key].get("protected"):
            assert where["local"], f"{key} must stay tagged locally"


@pytest.mark.engine
@pytest.mark.slow
def test_second_up_is_fast_and_restarts_nothing(testbed: Testbed) -> None:
    state_file = Path(os.environ.get("TESTBED_DIR", REPO / ".testbed")) / "state.json"
    # Earlier tests restart services on purpose (the fleet tests restart Redis), which
    # leaves state.json naming the old pid: one `up` brings it up to date first.
    first = run_testbed("up", timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    before = json.loads(state_file.read_text())
    started = time.monotonic()
    result = run_testbed("up", timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    after = json.loads(state_file.read_text())
    assert after == before  # same services (same pids), same images
    assert "building" not in result.stdout
    assert "starting" not in result.stdout
    assert elapsed < 30, f"second `up` took {elapsed:.1f} s"


@pytest.mark.engine
def test_layers_image_has_one_layer_per_spec_entry_of_the_given_size(testbed: Testbed) -> None:
    layers = manifest(testbed.layers)["layers"]
    base = manifest(testbed.base)["layers"]
    assert len(base) == 1
    assert layers[0]["digest"] == base[0]["digest"]
    wanted = [entry["mib"] * MIB for entry in SPECS["layers"]["layers"]]
    got = [layer["size"] for layer in layers[1:]]
    assert len(got) == len(wanted)
    # Random bytes don't compress: gzip adds well under 1 % plus the tar headers.
    for size, raw in zip(got, wanted, strict=True):
        assert raw < size < raw * 1.01 + 4096


@pytest.mark.engine
def test_shared_images_share_base_and_two_layers_and_differ_in_the_last(testbed: Testbed) -> None:
    a = [layer["digest"] for layer in manifest(testbed.shared_a)["layers"]]
    b = [layer["digest"] for layer in manifest(testbed.shared_b)["layers"]]
    shared = [e for e in SPECS["shared_a"]["layers"] if e in SPECS["shared_b"]["layers"]]
    assert len(a) == len(b) == 1 + len(SPECS["shared_a"]["layers"])
    assert a[: 1 + len(shared)] == b[: 1 + len(shared)]
    assert set(a[1 + len(shared) :]).isdisjoint(b[1 + len(shared) :])


@pytest.mark.engine
def test_slow_front_holds_a_blob_to_the_configured_rate(testbed: Testbed) -> None:
    layer = next(x for x in manifest(testbed.layers)["layers"] if 4 * MIB < x["size"] < 10 * MIB)
    repo = testbed.layers.partition("/")[2].rpartition(":")[0]
    timings = {}
    for address in (testbed.registry, testbed.slow_registry):
        url = f"http://{address}/v2/{repo}/blobs/{layer['digest']}"
        started = time.monotonic()
        with _OPENER.open(url, timeout=60) as response:
            body = response.read()
        timings[address] = time.monotonic() - started
        assert len(body) == layer["size"]
    number, unit = testbed.rate[:-1], testbed.rate[-1].lower()
    rate = int(number) * {"k": 1024, "m": MIB}[unit] if unit in "km" else int(testbed.rate)
    # nginx meters coarsely and lets the first buffers through at once: allow half.
    assert timings[testbed.slow_registry] > 0.5 * layer["size"] / rate
    assert timings[testbed.registry] < timings[testbed.slow_registry]


@pytest.mark.engine
def test_remove_image_refuses_the_images_the_whole_suite_shares(
    testbed: Testbed, remove_image: Callable[[str], None]
) -> None:
    for key in ("base", "python", "postgres", "tools"):
        with pytest.raises(ValueError, match="must not remove"):
            remove_image(testbed.images[key])


def test_pid_check_refuses_a_pid_that_runs_another_program(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import testbed_bed
    finally:
        sys.path.remove(str(REPO / "scripts"))
    pidfile = tmp_path / "x.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    own_name = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert testbed_bed.pid_running(pidfile, own_name) == os.getpid()
    assert testbed_bed.pid_running(pidfile, "nginx") is None
    pidfile.write_text("not a pid\n")
    assert testbed_bed.pid_running(pidfile, own_name) is None


def _bed_module() -> Any:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import testbed_bed
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return testbed_bed


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def test_a_docker_cli_without_an_engine_is_missing_the_engine(tmp_path: Path) -> None:
    # A common image: the docker CLI installed, the daemon not. The bed must install it.
    _executable(tmp_path / "docker", "#!/bin/sh\necho 'Docker version 28.2.2'\n")
    required, _ = _bed_module().missing_packages(path=str(tmp_path))
    assert "docker.io" in required
    _executable(tmp_path / "dockerd", "#!/bin/sh\nexit 0\n")
    required, _ = _bed_module().missing_packages(path=str(tmp_path))
    assert "docker.io" not in required


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path is taken as root only")
def test_a_failed_install_is_one_line_that_says_what_to_run(tmp_path: Path) -> None:
    # PATH finds only a docker CLI and an apt-get that fails, as on a machine without a
    # Debian mirror: the bed says what is missing and what to run, no traceback.
    only = tmp_path / "only"
    only.mkdir()
    _executable(only / "docker", "#!/bin/sh\nexit 1\n")
    fake = tmp_path / "bin"
    fake.mkdir()
    _executable(fake / "apt-get", "#!/bin/sh\necho 'E: no mirror here' >&2\nexit 100\n")
    env = {
        **os.environ,
        "TESTBED_DIR": str(tmp_path / "bed"),
        "TESTBED_PATH": str(only),
        "PATH": f"{fake}:/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, str(TESTBED), "up"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("testbed: ")
    assert "docker.io" in last
    assert "apt-get install -y" in last


@pytest.mark.engine
def test_host_names_both_engines_and_the_modern_one_has_the_containerd_store(
    testbed: Testbed,
) -> None:
    classic = run_testbed("host", "classic", timeout=30)
    modern = run_testbed("host", "modern", timeout=30)
    assert classic.returncode == modern.returncode == 0
    assert classic.stdout.strip() == testbed.engines["classic"].docker_host
    host = modern.stdout.strip()
    assert host == testbed.engines["modern"].docker_host
    bare = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    version = subprocess.run(
        ["docker", "-H", host, "version", "--format", "{{.Server.APIVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=bare,
        check=True,
    ).stdout.strip()
    major, minor = (int(x) for x in version.split("."))
    assert (major, minor) >= (1, 45)
    info = subprocess.run(
        ["docker", "-H", host, "info", "--format", "{{json .DriverStatus}}"],
        capture_output=True,
        text=True,
        timeout=30,
        env=bare,
        check=True,
    ).stdout
    assert "io.containerd.snapshotter" in info
    # TLS: the same engine on tcp, with the client material the bed made.
    tls = run_testbed("host", "tls", "--env", timeout=30)
    tls_env = dict(
        line.removeprefix("export ").split("=", 1) for line in tls.stdout.split("\n") if line
    )
    answer = subprocess.run(
        ["docker", "version", "--format", "{{.Server.APIVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**bare, **tls_env},
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == version
