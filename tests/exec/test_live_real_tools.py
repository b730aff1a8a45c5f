"""The real tools of issue 17, followed live by ``dockprogress exec`` on both engines.

One container of the tools fixture image (Debian 12's curl, wget, git, rsync, ffmpeg, pip,
npm and apt) per engine, on the host's network so that it reaches the bed's throttled front
at 127.0.0.1 and nothing else: the files it downloads are the front's ``/files/`` (see
scripts/testbed_files.py: a wheel index, an apt repository, npm tarballs, big files, each
with its exact size in ``manifest.json``); the git repository, the rsync tree and the video
are made in the container at set-up. Each test runs

    dockprogress exec CONTAINER --progress json --size 100x30 -- <tool command>

and checks: three live percents or more, never backwards, the final figures against the
truth (the file's size, the object count, the video's duration) within the precision the
tool's display gives, and the state ``done``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.request import ProxyHandler, build_opener

import pytest

from tests.contract import assert_event_output

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("on_engine")]

MIB = 1024 * 1024
_OPENER = build_opener(ProxyHandler({}))

# Made once per container (see the script): apt's only source the bed's repository, a git
# repository, a tree for rsync, a 5 s video.
SETUP = Path(__file__).resolve().parents[1] / "fixtures" / "tty" / "tools_setup.sh"
VIDEO_SECONDS = 5.0


def _get_json(url: str) -> Any:
    with _OPENER.open(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def files(testbed: Any) -> dict[str, Any]:
    """The front's files and their sizes (``/files/manifest.json``)."""
    try:
        manifest = _get_json(f"{testbed.files}/manifest.json")
    except OSError as exc:
        pytest.fail(
            f"the bed's front does not serve {testbed.files}/ ({exc}): run scripts/testbed up"
        )
    return {"url": testbed.files, **manifest}


@pytest.fixture(scope="module")
def box(testbed: Any, docker_client: Any, files: dict[str, Any]) -> Iterator[Any]:
    name = f"dp-tools-test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    container = docker_client.containers.run(
        testbed.tools, ["sleep", "1200"], detach=True, name=name, network_mode="host"
    )
    try:
        code, output = container.exec_run(
            ["sh", "-c", SETUP.read_text()], environment={"FILES": files["url"]}
        )
        assert code == 0, output.decode(errors="replace")
        print(f"tools container set up in {time.monotonic() - started:.1f} s")
        yield container
    finally:
        container.remove(force=True)


def _shell(box: Any, script: str) -> str:
    code, output = box.exec_run(["sh", "-c", script])
    assert code == 0, output.decode(errors="replace")
    return str(output.decode())


def _follow(box: Any, *cmd: str, env: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``dockprogress exec`` of ``cmd`` in ``box``: its JSON events (checked), ended ``done``."""
    options = [arg for pair in env for arg in ("-e", pair)]
    args = ["exec", *options, box.name, "--progress", "json", "--size", "100x30", "--", *cmd]
    proc = subprocess.run(
        [sys.executable, "-m", "dockprogress", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    events = assert_event_output(proc.stdout)
    assert events[-1]["state"] == "done", events[-1]
    return events


def _live_percents(events: list[dict[str, Any]]) -> list[float]:
    """The running events' percents: at least three distinct ones, never going back."""
    percents = [e["percent"] for e in events if e["state"] == "running" and e["percent"]]
    assert all(b >= a for a, b in itertools.pairwise(percents)), percents
    assert len(set(percents)) >= 3, percents
    return percents


def _bars(events: list[dict[str, Any]], description: str) -> list[dict[str, Any]]:
    """Every reading of the bars called ``description`` (``detail.bars``), in order."""
    return [
        bar
        for e in events
        for bar in e["detail"].get("bars", [])
        if bar["description"] == description
    ]


def _size(box: Any, path: str) -> int:
    return int(_shell(box, f"stat -c %s {path}").strip())


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def test_pip_install_of_three_wheels_from_the_local_index(box: Any, files: dict[str, Any]) -> None:
    target = f"/tmp/pip-{_tag()}"
    events = _follow(
        box,
        "pip",
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--index-url",
        f"{files['url']}/simple/",
        "--target",
        target,
        "dp-pad-a",  # requires dp-pad-b, which requires dp-pad-c: three downloads in a row
    )
    _live_percents(events)
    assert {e["kind"] for e in events} == {"download"}
    truth = sum(w["size"] for w in files["wheels"])
    # pip shows each size with one decimal in MB ("6.3 MB"): 0.05 MB each at most
    assert events[-1]["total"] == pytest.approx(truth, abs=0.05e6 * len(files["wheels"]))
    assert events[-1]["current"] == events[-1]["total"]
    assert events[-1]["detail"]["approximate"] is True
    _shell(box, f"test -s {target}/dp_pad_c/pad.bin")


def test_curl_progress_meter(box: Any, files: dict[str, Any]) -> None:
    blob = next(b for b in files["blobs"] if b["name"] == "blob-25mb.bin")
    out = f"/tmp/curl-{_tag()}"
    events = _follow(box, "curl", "-o", out, f"{files['url']}/{blob['file']}")
    _live_percents(events)
    assert _size(box, out) == blob["size"]
    assert {e["kind"] for e in events} == {"download"}
    # curl's "23.8M" is MiB with one decimal: within 0.05 MiB
    assert events[-1]["total"] == pytest.approx(blob["size"], abs=0.05 * MIB)
    assert events[-1]["detail"]["approximate"] is True


def test_curl_hash_bar(box: Any, files: dict[str, Any]) -> None:
    blob = next(b for b in files["blobs"] if b["name"] == "blob-10mb.bin")
    out = f"/tmp/curl-{_tag()}"
    events = _follow(box, "curl", "-#", "-o", out, f"{files['url']}/{blob['file']}")
    percents = _live_percents(events)
    assert _size(box, out) == blob["size"]
    # The bar gives a percent with one decimal and no bytes: that percent is all there is.
    assert any(p != int(p) for p in percents)
    assert max(_bar["percent"] for _bar in _bars(events, "download")) == 100.0


def test_wget(box: Any, files: dict[str, Any]) -> None:
    blob = next(b for b in files["blobs"] if b["name"] == "blob-10mb.bin")
    out = f"/tmp/wget-{_tag()}"
    events = _follow(box, "wget", "-O", out, f"{files['url']}/{blob['file']}")
    _live_percents(events)
    assert _size(box, out) == blob["size"]
    running = [e for e in events if e["state"] == "running"]
    assert {e["kind"] for e in running} == {"download"}
    assert {e["total"] for e in running} == {blob["size"]}  # "Length: 10000000 (9.5M)"
    assert events[-1]["current"] == blob["size"]


def test_git_clone_over_file_url(box: Any) -> None:
    objects = int(_shell(box, "git -C /srv/repo rev-list --objects --all | wc -l"))
    events = _follow(box, "git", "clone", "--progress", "file:///srv/repo", f"/tmp/clone-{_tag()}")
    _live_percents(events)
    receiving = _bars(events, "Receiving objects")
    assert receiving[-1]["total"] == objects
    assert receiving[-1]["n"] == objects
    phases = [p for p, _ in itertools.groupby(e["phase"] for e in events if e["phase"])]
    assert phases.index("Receiving objects") < phases.index("Resolving deltas")


def test_rsync_info_progress2(box: Any) -> None:
    dest = f"/tmp/tree-{_tag()}/"
    events = _follow(box, "rsync", "-a", "--info=progress2", "--bwlimit=4000", "/srv/tree/", dest)
    _live_percents(events)
    truth = int(_shell(box, f"du -b --apparent-size -s {dest} | cut -f1")) - _size(box, dest)
    assert truth == 12_000_000
    assert events[-1]["current"] == truth  # rsync counts the bytes exactly
    assert events[-1]["total"] == truth


def test_apt_get_install_from_the_local_repository(box: Any, files: dict[str, Any]) -> None:
    names = [d["name"] for d in files["debs"]]
    events = _follow(
        box,
        "apt-get",
        "install",
        "-y",
        "-o",
        "Dpkg::Progress-Fancy=1",
        *names,
        env=("DEBIAN_FRONTEND=noninteractive",),
    )
    _live_percents(events)
    truth = sum(d["size"] for d in files["debs"])
    # "Need to get 15.8 MB of archives.": three significant digits, powers of 1000
    downloads = _bars(events, "download")
    assert downloads[-1]["total"] == pytest.approx(truth, abs=0.05e6)
    phases = {e["phase"] for e in events}
    assert {"download", "unpack and set up"} <= phases
    installed = _shell(box, "dpkg-query -W -f='${Status}\\n' " + " ".join(names))
    assert installed.split("\n")[: len(names)] == ["install ok installed"] * len(names)
    _shell(box, "apt-get remove -y -qq " + " ".join(names))


def test_ffmpeg_time_against_the_duration(box: Any) -> None:
    out = f"/tmp/out-{_tag()}.mp4"
    events = _follow(box, "ffmpeg", "-y", "-re", "-i", "/srv/src.mkv", "-c:v", "mpeg4", out)
    _live_percents(events)
    running = [e for e in events if e["state"] == "running"]
    assert {e["total"] for e in running} == {VIDEO_SECONDS}  # "Duration: 00:00:05.00"
    # the last frame starts one frame (1/25 s) before the end; ffmpeg prints centiseconds
    assert running[-1]["current"] == pytest.approx(VIDEO_SECONDS - 0.04, abs=0.1)


def test_npm_install_of_local_tarballs(box: Any, files: dict[str, Any]) -> None:
    prefix = f"/tmp/npm-{_tag()}"
    urls = [f"{files['url']}/{t['file']}" for t in files["npm"]]
    # (a fresh cache, so that the tarballs are downloaded whatever ran before)
    events = _follow(
        box,
        "npm",
        "install",
        "--no-audit",
        "--no-fund",
        "--no-update-notifier",
        "--registry",
        "http://127.0.0.1:9/",  # nothing to ask a registry for; if npm did, it would fail here
        "--prefix",
        prefix,
        "--cache",
        f"{prefix}-cache",
        *urls,
    )
    # npm 9 draws npmlog's gauge: its filled share, npm's own estimate, read to one cell.
    _live_percents(events)
    running = [e for e in events if e["state"] == "running" and e["percent"] is not None]
    assert all(e["detail"]["approximate"] for e in running)
    assert {b["description"] for e in running for b in e["detail"]["bars"]} <= {
        "idealTree",
        "reify",
    }
    for tarball in files["npm"]:
        _shell(box, f"test -s {prefix}/node_modules/{tarball['name']}/pad.bin")
