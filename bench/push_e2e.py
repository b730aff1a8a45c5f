"""End-to-end push: ``dockprogress push --progress json`` against ``docker push`` (the Go CLI).

One image is built once for the family (``dp/base`` plus two layers of random bytes, 32 MB
and 16 MB, so every push has to send them: nothing compresses). Each run pushes it under a
repository name of its own on the bed's registry, and after the run the registry forgets
that repository's manifest and layers (the registry has delete enabled): the next run finds
no layer to skip and none to mount from an earlier run, so every run sends the same bytes.
The two tools run in pairs, their order alternating, so a slow spell of the shared machine
hits both. Two links, as for pulls: the registry itself (127.0.0.1:5000, loopback speed: the
push takes about a second, so start-up weighs most) and a paced upload link of 5 MB/s in
front of it (``tests/throttle.py``: the bed's nginx front cannot slow uploads), where a push
takes seconds, as it does over a network.

Figures: wall time (spawn to exit), the client process's CPU time, and for dockprogress
spawn to its first event line (start-up: interpreter, imports, engine); the paired
differences. The target is the issue's: dockprogress within 5 % of docker push.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import Family
from bench.pull_e2e import _dockprogress, add_client_rows, remove_image

__all__ = ["PushRun", "forget_repository", "push_once", "run"]

REGISTRY = "127.0.0.1:5000"
BASE = f"{REGISTRY}/dp/base:1"
PUSH_TIMEOUT = 300.0
LAYERS_MB = (32, 16)
_ACCEPT = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)


@dataclass
class PushRun:
    tool: str
    image: str
    wall: float
    cpu: float
    exit_code: int
    first_output: float | None = None  # spawn to the first line on stdout
    notes: list[str] = field(default_factory=list)


def _request(method: str, url: str, accept: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, method=method)
    if accept:
        request.add_header("Accept", accept)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return int(response.status), response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(), dict(exc.headers)


def forget_repository(repository: str, tag: str = "1") -> int:
    """Delete ``repository``'s manifest and layer links on the registry; the blobs deleted."""
    base = f"http://{REGISTRY}/v2/{repository}"
    status, body, headers = _request("GET", f"{base}/manifests/{tag}", _ACCEPT)
    if status != 200:
        return 0
    manifest = json.loads(body)
    digests = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    deleted = 0
    for digest in digests:
        if _request("DELETE", f"{base}/blobs/{digest}")[0] == 202:
            deleted += 1
    digest = headers.get("Docker-Content-Digest") or headers.get("docker-content-digest")
    if digest:
        _request("DELETE", f"{base}/manifests/{digest}")
    return deleted


def _build_image(name: str) -> None:
    """The benchmark's image: random layers on dp/base, built with the classic builder."""
    from dockprogress.docker.build import build

    with tempfile.TemporaryDirectory(prefix="dp-bench-push-") as folder:
        steps = "".join(
            f"RUN head -c {mb * 1_000_000} /dev/urandom > /random-{i}.bin\n"
            for i, mb in enumerate(LAYERS_MB)
        )
        (Path(folder) / "Dockerfile").write_text(f"FROM {BASE}\n{steps}")
        final = build(folder, tags=[name], no_cache=True, network="none", builder="classic")
    if final.state.value != "done":
        raise RuntimeError(f"could not build the benchmark image: {final.error}")


def push_once(tool: str, image: str, *, timeout: float = PUSH_TIMEOUT) -> PushRun:
    """One timed push with ``tool`` (``dockprogress`` or ``docker``); stdout read line by line."""
    if tool == "dockprogress":
        argv = [*_dockprogress(), "push", image, "--progress", "json"]
    else:
        argv = [shutil.which("docker") or "docker", "push", image]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    first: float | None = None
    tail = b""
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"}
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        for line in process.stdout:
            if first is None:
                first = time.perf_counter() - start
            tail = line
            if time.perf_counter() - start > timeout:
                process.kill()
                break
        stderr = process.stderr.read()
        code = process.wait(timeout=60)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = PushRun(tool, image, wall, cpu, code, first)
    if code != 0:
        text = (tail + stderr).decode(errors="replace")[-300:]
        result.notes.append(f"{tool} exited {code}: {text}")
    return result


LINKS = (("registry, loopback", None), ("paced upload link, 5 MB/s", 5_000_000))


def _pairs(source: str, registry: str, runs: int, family: Family) -> dict[str, list[PushRun]]:
    results: dict[str, list[PushRun]] = {"dockprogress": [], "docker": []}
    for index in range(runs):
        order = ("docker", "dockprogress") if index % 2 else ("dockprogress", "docker")
        for tool in order:
            repository = f"dp/bench-push-{uuid.uuid4().hex[:8]}"
            image = f"{registry}/{repository}:1"
            subprocess.run(["docker", "tag", source, image], check=True, timeout=60)
            try:
                outcome = push_once(tool, image)
            finally:
                remove_image([image])
                forget_repository(repository)
            results[tool].append(outcome)
            family.notes.extend(outcome.notes)
    return results


def _link(label: str, rate: int | None, source: str, runs: int, family: Family) -> None:
    if rate is None:
        results = _pairs(source, REGISTRY, runs, family)
    else:
        from tests.throttle import ThrottleProxy

        with ThrottleProxy(REGISTRY, rate) as proxy:
            results = _pairs(source, proxy.address, runs, family)
    ours, theirs = results["dockprogress"], results["docker"]
    input_text = (
        f"dp/base + {' + '.join(f'{mb} MB' for mb in LAYERS_MB)} random layers to "
        f"{REGISTRY} ({label}), a new repository each run (forgotten after it), tools "
        "alternating"
    )
    add_client_rows(
        family,
        f"Push, {label}",
        ours,
        theirs,
        subject="dockprogress push --progress json",
        baseline="docker push (Go CLI)",
        baseline_first="docker: first output line",
        input_text=input_text,
        target=f"push wall time within 5% of docker push ({label})",
    )


def run(*, runs: int = 6, links: tuple[tuple[str, int | None], ...] = LINKS) -> Family:
    """``runs`` pairs of pushes of the same image per link, tools alternating first."""
    started = time.perf_counter()
    family = Family("End-to-end push")
    source = f"{REGISTRY}/dp/bench-push-src-{uuid.uuid4().hex[:8]}:1"
    _build_image(source)
    try:
        for label, rate in links:
            _link(label, rate, source, runs, family)
    finally:
        remove_image([source])
    family.seconds = time.perf_counter() - started
    return family
