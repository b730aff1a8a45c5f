"""End-to-end pull: ``dockprogress pull --progress json`` against ``docker pull`` (the Go CLI).

The same fixture image (``dp/layers:1``, 118 MB in 6 incompressible layers) from the local
registry, unthrottled (127.0.0.1:5000) and through the nginx front limited to 5 MB/s per
connection (127.0.0.1:5001). Before every run every tag of the image is removed, so each
pull downloads the same layers (the busybox base layer stays: dp/base:1 is kept locally).
The two tools alternate run by run, so a slow spell of the shared machine hits both.

A last row is the cold start: ``dockprogress pull`` of an image that is already up to date
(``dp/base:1``, kept on the bed) against ``docker pull`` of it, in alternating pairs; the
target is 3x docker's wall time (issue 16). The package's bytecode is compiled first, as
an install leaves it (``PYTHONDONTWRITEBYTECODE`` would otherwise have every run compile
the sources again).

Figures: wall time (spawn to exit), CPU time of the client process (``RUSAGE_CHILDREN``
delta: user + system), and for dockprogress where its wall time goes: spawn to the first
event line (interpreter start, imports, the registry's manifest), first to ``done`` event,
``done`` event to exit.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.harness import Comparison, Family, Figure, Target

__all__ = ["PullRun", "pull_once", "remove_image", "run"]

ROOT = Path(__file__).resolve().parents[1]
REPO = "dp/layers:1"
REGISTRIES = (("unthrottled", "127.0.0.1:5000"), ("throttled 5 MB/s", "127.0.0.1:5001"))
PULL_TIMEOUT = 180.0


@dataclass
class PullRun:
    tool: str
    image: str
    wall: float
    cpu: float
    exit_code: int
    first_output: float | None = None  # spawn to the first line on stdout
    done_event: float | None = None  # spawn to the ``done`` event line (dockprogress)
    lines: int = 0
    notes: list[str] = field(default_factory=list)


def _dockprogress() -> list[str]:
    script = Path(sys.executable).with_name("dockprogress")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dockprogress"]


def remove_image(images: list[str]) -> None:
    """Remove every tag given (errors ignored: a tag may already be gone)."""
    subprocess.run(
        ["docker", "image", "rm", *images],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )


def _present(image: str) -> bool:
    found = subprocess.run(
        ["docker", "image", "inspect", image],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=30,
    )
    return found.returncode == 0


def pull_once(tool: str, image: str, *, timeout: float = PULL_TIMEOUT) -> PullRun:
    """One timed pull with ``tool`` (``dockprogress`` or ``docker``); stdout read line by line."""
    if tool == "dockprogress":
        argv = [*_dockprogress(), "pull", image, "--progress", "json"]
    else:
        argv = [shutil.which("docker") or "docker", "pull", image]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    first: float | None = None
    done: float | None = None
    lines = 0
    deadline = start + timeout
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"}
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        for line in process.stdout:
            now = time.perf_counter() - start
            lines += 1
            if first is None:
                first = now
            if b'"state":"done"' in line:
                done = now
            if time.perf_counter() > deadline:
                process.kill()
                break
        stderr = process.stderr.read()
        code = process.wait(timeout=max(1.0, deadline - time.perf_counter()))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = PullRun(tool, image, wall, cpu, code, first, done, lines)
    if code != 0:
        result.notes.append(f"{tool} exited {code}: {stderr.decode(errors='replace')[-300:]}")
    return result


def _startup(code: str, runs: int) -> list[float]:
    """Wall seconds of ``python -c code`` in the venv's interpreter."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
        out.append(time.perf_counter() - start)
    return out


UP_TO_DATE = "127.0.0.1:5000/dp/base:1"
UP_TO_DATE_LIMIT = 3.0


def _compile_package() -> None:
    """Bytecode for the package, as ``pip install`` leaves it (no-op when it is there)."""
    import importlib.util

    spec = importlib.util.find_spec("dockprogress")
    for where in (spec.submodule_search_locations or []) if spec else []:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", where],
            stdout=subprocess.DEVNULL,
            check=False,
            timeout=300,
        )


def wall_time_target(name: str, wall: Comparison, exit_codes: list[int]) -> Target:
    """``name``: the subject's median wall time at most 5 % above the docker CLI's, with the
    count of runs (either tool's ``exit_codes``) that failed as its note."""
    overhead = wall.subject.median / wall.baselines[0].median - 1.0
    failed = [code for code in exit_codes if code != 0]
    return Target(
        name,
        100.0 * overhead,
        5.0,
        "% slower",
        at_least=False,
        note=f"{len(failed)} failed run(s)" if failed else "",
    )


class ClientRun(Protocol):
    """One timed run of a client (a push's, a build's): what :func:`add_client_rows` reads."""

    wall: float
    cpu: float
    exit_code: int
    first_output: float | None


def add_client_rows(
    family: Family,
    title: str,
    ours: Sequence[ClientRun],
    theirs: Sequence[ClientRun],
    *,
    subject: str,
    baseline: str,
    baseline_first: str,
    input_text: str,
    target: str,
) -> None:
    """The rows of dockprogress against the docker CLI doing the same work, in pairs: wall
    time, the client's CPU time and spawn to the first output line (``title``: their
    prefix), the paired differences as a note, and ``target``: wall time within 5 %."""
    wall = Comparison(
        f"{title}: wall seconds, spawn to exit",
        Figure(subject, "s", [r.wall for r in ours], False),
        [Figure(baseline, "s", [r.wall for r in theirs], False)],
        input=input_text,
    )
    cpu = Comparison(
        f"{title}: client CPU seconds (user + system)",
        Figure(subject, "s", [r.cpu for r in ours], False),
        [Figure(baseline, "s", [r.cpu for r in theirs], False)],
        input="RUSAGE_CHILDREN delta around the client process (and its children); the "
        "daemon's work excluded",
    )
    start_up = Comparison(
        f"{title}: spawn to the first output line",
        Figure(
            "dockprogress: first event line",
            "s",
            [r.first_output for r in ours if r.first_output is not None],
            False,
        ),
        [
            Figure(
                baseline_first,
                "s",
                [r.first_output for r in theirs if r.first_output is not None],
                False,
            )
        ],
        input="start-up (interpreter, imports, the engine's answer) until the first line",
    )
    family.comparisons.extend([wall, cpu, start_up])
    paired = [a.wall - b.wall for a, b in zip(ours, theirs, strict=True)]
    family.notes.append(
        f"Paired differences, {title.split(', ', 1)[-1]} (dockprogress - docker, s): "
        + ", ".join(f"{d:+.3f}" for d in paired)
        + f"; median {statistics.median(paired):+.3f} s"
    )
    family.targets.append(wall_time_target(target, wall, [r.exit_code for r in [*ours, *theirs]]))


def up_to_date(runs: int = 15, image: str = UP_TO_DATE) -> tuple[Comparison, Target]:
    """``dockprogress pull`` vs ``docker pull`` of an image already present, in pairs."""
    _compile_package()
    for tool in ("docker", "dockprogress"):  # present, and every file in the page cache
        pull_once(tool, image)
    ours: list[PullRun] = []
    theirs: list[PullRun] = []
    for index in range(runs):
        order = ("docker", "dockprogress") if index % 2 else ("dockprogress", "docker")
        for tool in order:
            (ours if tool == "dockprogress" else theirs).append(pull_once(tool, image))
    comparison = Comparison(
        "Up-to-date pull (cold start): wall seconds, spawn to exit",
        Figure("dockprogress pull --progress json", "s", [r.wall for r in ours], False),
        [Figure("docker pull (Go CLI)", "s", [r.wall for r in theirs], False)],
        input=f"{image}, already present; {runs} alternating pairs; bytecode compiled",
    )
    pairs = sorted(a.wall / b.wall for a, b in zip(ours, theirs, strict=True))
    failed = [r for r in ours + theirs if r.exit_code != 0]
    notes = [
        f"pairwise ratios {pairs[0]:.1f}-{pairs[-1]:.1f}x, median {pairs[len(pairs) // 2]:.1f}x"
    ]
    if failed:
        notes.append(f"{len(failed)} failed run(s)")
    target = Target(
        "up-to-date pull within 3x docker pull's wall time",
        comparison.subject.median / comparison.baselines[0].median,
        UP_TO_DATE_LIMIT,
        "x docker pull",
        at_least=False,
        note="; ".join(notes),
    )
    return comparison, target


def run(*, runs: int = 3, registries: tuple[tuple[str, str], ...] = REGISTRIES) -> Family:
    """``runs`` pulls per tool per registry, alternating tools; removed before each."""
    started = time.perf_counter()
    family = Family("End-to-end pull")
    all_tags = [f"{registry}/{REPO}" for _, registry in REGISTRIES]
    # Start-up figures are sampled between the pulls, so they see the same machine.
    bare: list[float] = []
    imports: list[float] = []
    for label, registry in registries:
        image = f"{registry}/{REPO}"
        results: dict[str, list[PullRun]] = {"dockprogress": [], "docker": []}
        for index in range(runs):
            order = ("docker", "dockprogress") if index % 2 else ("dockprogress", "docker")
            for tool in order:
                remove_image(all_tags)
                if _present(image):
                    family.notes.append(f"{image} could not be removed before a {tool} run")
                outcome = pull_once(tool, image)
                results[tool].append(outcome)
                family.notes.extend(outcome.notes)
            bare.extend(_startup("pass", 1))
            imports.extend(_startup("import dockprogress.cli.main, dockprogress.docker.pull", 1))
        ours, theirs = results["dockprogress"], results["docker"]
        wall = Comparison(
            f"Pull {label}: wall seconds, spawn to exit",
            Figure("dockprogress pull --progress json", "s", [r.wall for r in ours], False),
            [Figure("docker pull (Go CLI)", "s", [r.wall for r in theirs], False)],
            input=f"{image}, every tag removed before each run, tools alternating",
        )
        cpu = Comparison(
            f"Pull {label}: client CPU seconds (user + system)",
            Figure("dockprogress pull --progress json", "s", [r.cpu for r in ours], False),
            [Figure("docker pull (Go CLI)", "s", [r.cpu for r in theirs], False)],
            input="RUSAGE_CHILDREN delta around the client process; the daemon's work excluded",
        )
        firsts = [r.first_output for r in ours if r.first_output is not None]
        dones = [r.done_event for r in ours if r.done_event is not None]
        exits = [r.wall - r.done_event for r in ours if r.done_event is not None]
        docker_first = [r.first_output for r in theirs if r.first_output is not None]
        split = Comparison(
            f"Pull {label}: where dockprogress's wall time goes",
            Figure("spawn to first event line (start-up + manifest)", "s", firsts, False),
            [
                Figure("python -c pass (bare interpreter)", "s", bare, False),
                Figure(
                    "python -c 'import the CLI and the pull adapter' (their imports)",
                    "s",
                    imports,
                    False,
                ),
                Figure("docker: spawn to first output line", "s", docker_first, False),
                Figure(
                    "dockprogress: first event to done event",
                    "s",
                    [
                        d - f
                        for r in ours
                        if (d := r.done_event) is not None and (f := r.first_output) is not None
                    ],
                    False,
                ),
                Figure("dockprogress: done event to exit", "s", exits, False),
            ],
            input=f"{len(dones)} dockprogress runs with a done event",
            ratios=False,
        )
        family.comparisons.extend([wall, cpu, split])
        family.targets.append(
            wall_time_target(
                f"pull wall time within 5% of docker pull ({label})",
                wall,
                [r.exit_code for r in ours + theirs],
            )
        )
    remove_image(all_tags)
    comparison, target = up_to_date(max(runs * 5, 3))
    family.comparisons.append(comparison)
    family.targets.append(target)
    family.seconds = time.perf_counter() - started
    return family
