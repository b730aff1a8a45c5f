"""End-to-end build: ``dockprogress build --progress json`` against the docker CLI's build.

The same context on each of the bed's builders: the classic builder of engine 20.10 (the
docker CLI with ``DOCKER_BUILDKIT=0``), and BuildKit on engine 26.1 through the bed's
``docker-buildx`` (the baseline is ``docker-buildx build --progress plain``, the command
dockprogress runs with ``--progress rawjson``). The context sends 8 MB of random bytes, and
five steps do real work (a copy, 16 MB of random bytes written, a second of sleep, a
checksum), built with ``--no-cache --network none`` under a new tag each run, removed after
it: every run does the same work. The two tools run in pairs, their order alternating, so a
slow spell of the shared machine hits both.

Figures: wall time (spawn to exit), the client process's CPU time (for BuildKit, buildx's
own CPU is in both), spawn to the first output line; the paired differences. The target is
issue 15's: dockprogress within 5 % of the docker CLI doing the same work.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import Family
from bench.pull_e2e import _dockprogress, add_client_rows

__all__ = ["BuildRun", "build_once", "run"]

ROOT = Path(__file__).resolve().parents[1]
BASE = "127.0.0.1:5000/dp/base:1"
BUILD_TIMEOUT = 300.0
DOCKERFILE = f"""\
FROM {BASE}
COPY payload.bin /payload.bin
RUN head -c 16000000 /dev/urandom > /random.bin
RUN sleep 1
RUN sha256sum /payload.bin /random.bin > /sums
RUN echo built > /built
"""
BUILDERS = ("classic", "buildkit")


@dataclass
class BuildRun:
    tool: str
    wall: float
    cpu: float
    exit_code: int
    first_output: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Builder:
    """One builder of the bed: the engine it builds on, and the docker CLI's way to build."""

    name: str
    label: str
    docker_host: str
    baseline: list[str]  # argv before the build's options
    baseline_name: str
    env: dict[str, str]


def _state() -> dict[str, object]:
    folder = Path(os.environ.get("TESTBED_DIR", ROOT / ".testbed")).resolve()
    state: dict[str, object] = json.loads((folder / "state.json").read_text())
    return state


def _builders(names: tuple[str, ...]) -> list[Builder]:
    engines = _state().get("engines", {})
    assert isinstance(engines, dict)
    found = []
    docker = shutil.which("docker") or "docker"
    for name in names:
        if name == "classic":
            engine = engines.get("classic") or {}
            found.append(
                Builder(
                    "classic",
                    "classic builder, engine 20.10",
                    str(engine.get("docker_host") or "unix:///var/run/docker.sock"),
                    [docker, "build"],
                    "docker build (Go CLI, DOCKER_BUILDKIT=0)",
                    {"DOCKER_BUILDKIT": "0"},
                )
            )
        else:
            engine = engines.get("modern") or {}
            buildx = engine.get("buildx")
            if not engine or not buildx:
                raise RuntimeError("the test bed has no modern engine with buildx (state.json)")
            found.append(
                Builder(
                    "buildkit",
                    "BuildKit, engine 26.1",
                    str(engine["docker_host"]),
                    [str(buildx), "build", "--progress", "plain"],
                    "docker-buildx build --progress plain",
                    {"DOCKPROGRESS_BUILDX": str(buildx)},
                )
            )
    return found


def _context(folder: Path) -> None:
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "payload.bin").write_bytes(random.Random(1501).randbytes(8_000_000))


def _remove(builder: Builder, image: str) -> None:
    subprocess.run(
        ["docker", "image", "rm", "-f", image],
        env={**os.environ, "DOCKER_HOST": builder.docker_host},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )


def build_once(tool: str, builder: Builder, context: Path, image: str) -> BuildRun:
    """One timed build of ``context`` with ``tool`` (``dockprogress`` or ``docker``)."""
    options = ["--no-cache", "--network", "none", "--tag", image]
    if tool == "dockprogress":
        argv = [*_dockprogress(), "build", *options, "--builder", builder.name]
        argv += ["--progress", "json", str(context)]
    else:
        argv = [*builder.baseline, *options, str(context)]
    env = {**os.environ, **builder.env, "DOCKER_HOST": builder.docker_host, "NO_COLOR": "1"}
    for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(name, None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    first: float | None = None
    output = b""
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if first is None:
                first = time.perf_counter() - start
            output = (output + line)[-2000:]
            if time.perf_counter() - start > BUILD_TIMEOUT:
                process.kill()
                break
        code = process.wait(timeout=60)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = BuildRun(tool, wall, cpu, code, first)
    if code != 0:
        result.notes.append(f"{tool} exited {code}: {output.decode(errors='replace')[-300:]}")
    return result


def _one_builder(builder: Builder, context: Path, runs: int, family: Family) -> None:
    ours: list[BuildRun] = []
    theirs: list[BuildRun] = []
    for tool in ("docker", "dockprogress"):  # warm-up: the base image, the page cache
        image = f"dp/bench-build-{uuid.uuid4().hex[:8]}:1"
        build_once(tool, builder, context, image)
        _remove(builder, image)
    for index in range(runs):
        order = ("docker", "dockprogress") if index % 2 else ("dockprogress", "docker")
        for tool in order:
            image = f"dp/bench-build-{uuid.uuid4().hex[:8]}:1"
            try:
                outcome = build_once(tool, builder, context, image)
            finally:
                _remove(builder, image)
            (ours if tool == "dockprogress" else theirs).append(outcome)
            family.notes.extend(outcome.notes)
    input_text = (
        "FROM dp/base, COPY of 8 MB, RUN writing 16 MB, RUN sleep 1, RUN sha256sum, RUN echo; "
        "--no-cache --network none, a new tag each run (removed after it), tools alternating"
    )
    add_client_rows(
        family,
        f"Build, {builder.label}",
        ours,
        theirs,
        subject="dockprogress build --progress json",
        baseline=builder.baseline_name,
        baseline_first=f"{builder.baseline_name}: first output line",
        input_text=input_text,
        target=f"build wall time within 5% of the docker CLI's ({builder.label})",
    )


def run(*, runs: int = 5, builders: tuple[str, ...] = BUILDERS) -> Family:
    """``runs`` pairs of builds of the same context per builder, tools alternating first."""
    started = time.perf_counter()
    family = Family("End-to-end build")
    with tempfile.TemporaryDirectory(prefix="dp-bench-build-") as folder:
        context = Path(folder)
        _context(context)
        for builder in _builders(builders):
            _one_builder(builder, context, runs, family)
    family.seconds = time.perf_counter() - started
    return family
