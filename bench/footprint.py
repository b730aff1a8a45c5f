"""Start-up time and peak memory of the CLI, each against the bare interpreter in the same run.

* start-up: wall time of ``dockprogress --version`` against ``python -c pass`` (the venv's
  interpreter), in paired runs (one of each, alternately, so load changes hit both);
* peak RSS (``ru_maxrss`` of the child, from ``wait4``) of ``dockprogress pull`` of an image
  that is already up to date, ``dockprogress logs`` of a short container to its end, and
  ``dockprogress exec`` of a short command in a running container, each against
  ``python -c pass`` (the interpreter's own floor), read by GNU time (Debian's ``time``).

Needs the test bed's classic engine and its fixture image ``127.0.0.1:5000/dp/base:1``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import Comparison, Family, Figure, Target
from bench.pull_e2e import _dockprogress

__all__ = ["peak_rss", "run"]

IMAGE = "127.0.0.1:5000/dp/base:1"
TIME = "/usr/bin/time"
FLOOR = [sys.executable, "-c", "pass"]
MILESTONES = """\
[[milestone]]
pattern = 'step 2'
progress = 50
description = "half way"
"""


def peak_rss(argv: list[str], *, timeout: float = 120.0) -> tuple[float, float, int]:
    """``(wall seconds, peak RSS in MB, exit status)`` of one run of ``argv``.

    Measured by GNU time (``/usr/bin/time -f %M``): the ``ru_maxrss`` that ``wait4`` gives
    this process counts the pages of the forked copy of the benchmark itself before exec.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        start = time.perf_counter()
        done = subprocess.run(
            [TIME, "-o", out.name, "-f", "%M", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=timeout,
        )
        wall = time.perf_counter() - start
        kilobytes = float(out.read().strip().splitlines()[-1])
    return wall, kilobytes / 1024.0, done.returncode


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def _startup(runs: int) -> Comparison:
    version = [*_dockprogress(), "--version"]
    subject: list[float] = []
    floor: list[float] = []
    peak_rss(version)  # warm the page cache for both
    peak_rss(FLOOR)
    for _ in range(runs):
        subject.append(peak_rss(version)[0])
        floor.append(peak_rss(FLOOR)[0])
    return Comparison(
        "Start-up: dockprogress --version, wall seconds (paired runs)",
        Figure("dockprogress --version", "s", subject, higher_is_better=False),
        [Figure("python -c pass (the interpreter's own start)", "s", floor, False)],
        input=f"{runs} paired runs, alternately",
    )


def _memory(runs: int) -> tuple[list[Comparison], list[Target]]:
    cli = _dockprogress()
    comparisons: list[Comparison] = []
    targets: list[Target] = []
    _docker("pull", IMAGE)  # up to date from here on
    running = _docker("run", "-d", "--rm", IMAGE, "sleep", "600")
    made = [running]  # every container this benchmark started, removed by id at the end
    try:
        with tempfile.TemporaryDirectory() as folder:
            milestones = Path(folder) / "m.toml"
            milestones.write_text(MILESTONES, encoding="utf-8")

            def logs_argv() -> list[str]:
                container = _docker(
                    "run", "-d", IMAGE, "sh", "-c", "echo step 1; sleep 0.3; echo step 2"
                )
                made.append(container)
                return [*cli, "logs", container, "--milestones", str(milestones)]

            commands: dict[str, Callable[[], list[str]]] = {
                "pull": lambda: [*cli, "pull", IMAGE, "--progress", "json"],
                "logs": logs_argv,
                "exec": lambda: [
                    *cli,
                    "exec",
                    running,
                    "--progress",
                    "json",
                    "--",
                    "sh",
                    "-c",
                    "for i in 1 2 3 4 5; do printf '\\r%d%%' $((i*20)); sleep 0.05; done",
                ],
            }
            floor = [peak_rss(FLOOR)[1] for _ in range(runs)]
            for name, make in commands.items():
                figures: list[float] = []
                notes: list[str] = []
                for _ in range(runs):
                    _wall, rss, code = peak_rss(make())
                    figures.append(rss)
                    if code != 0:
                        notes.append(f"exit status {code}")
                comparison = Comparison(
                    f"Peak RSS: dockprogress {name}, MB",
                    Figure(
                        f"dockprogress {name}, peak RSS",
                        "MB",
                        figures,
                        higher_is_better=False,
                        note="; ".join(sorted(set(notes))),
                    ),
                    [Figure("python -c pass (the interpreter's floor)", "MB", floor, False)],
                    input=f"{runs} runs; {IMAGE}",
                )
                comparisons.append(comparison)
                targets.append(
                    Target(
                        f"peak RSS of dockprogress {name} <= 45 MB",
                        comparison.subject.median,
                        45.0,
                        "MB",
                        at_least=False,
                        note=f"floor {comparison.baselines[0].median:.1f} MB",
                    )
                )
    finally:
        subprocess.run(["docker", "rm", "-f", *made], capture_output=True, check=False, timeout=60)
    return comparisons, targets


def run(*, runs: int = 10) -> Family:
    start = time.perf_counter()
    family = Family("Start-up and memory")
    startup = _startup(max(runs * 2, 5))
    family.comparisons.append(startup)
    family.targets.append(
        Target(
            "dockprogress --version starts in < 60 ms",
            startup.subject.median,
            0.060,
            "s",
            at_least=False,
            note=f"python -c pass: {startup.baselines[0].median * 1000:.0f} ms",
        )
    )
    comparisons, targets = _memory(max(3, runs // 3))
    family.comparisons.extend(comparisons)
    family.targets.extend(targets)
    family.seconds = time.perf_counter() - start
    return family
