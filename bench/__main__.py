"""``python -m bench``: run every benchmark family, print the table, rewrite BENCHMARKS.md.

Families: ``parsers`` and ``hub`` (no engine needed), ``bus`` (the bed's Redis), ``pull``,
``push``, ``latency``, ``fanout`` (the real engine and the test bed's registries; ``make
bench`` brings them up first), ``build`` (both engines of the bed and its buildx),
``fleet_latency`` (both engines of the bed, its Redis, two replicas, Chromium). A family
that cannot run is reported as not run, its targets as MISS, and the others still run.
``--quick`` shrinks every input and run count (a check that everything works, not a
measurement) and then writes nothing unless ``--output`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    build_e2e,
    bus,
    fanout,
    fleet_latency,
    footprint,
    hub,
    latency,
    parsers,
    pull_e2e,
    push_e2e,
    report,
)
from bench.harness import Family, families_from_json, families_to_json

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = (
    "parsers",
    "pull",
    "push",
    "build",
    "latency",
    "fanout",
    "hub",
    "bus",
    "fleet_latency",
    "footprint",
)


def _runners(quick: bool, rows: tuple[str, ...] = parsers.ROWS) -> dict[str, Callable[[], Family]]:
    if quick:
        return {
            "parsers": lambda: parsers.run(scale=0.05, runs=2, only=rows),
            "pull": lambda: pull_e2e.run(runs=1, registries=pull_e2e.REGISTRIES[:1]),
            "push": lambda: push_e2e.run(runs=1, links=push_e2e.LINKS[:1]),
            "build": lambda: build_e2e.run(runs=1),
            "latency": lambda: latency.run(runs=1, samples=30),
            "fanout": lambda: fanout.run(runs=1, seconds=6, clients=10, tasks=5),
            "hub": lambda: hub.run(runs=1, sizes=(1_000, 10_000), updates=10_000),
            "bus": lambda: bus.run(runs=1, tasks=1000, events=4),
            "fleet_latency": lambda: fleet_latency.run(runs=1, samples=30, clients=2),
            "footprint": lambda: footprint.run(runs=1),
        }
    return {
        "parsers": lambda: parsers.run(only=rows),
        "pull": pull_e2e.run,
        "push": push_e2e.run,
        "build": build_e2e.run,
        "latency": latency.run,
        "fanout": fanout.run,
        "hub": hub.run,
        "bus": bus.run,
        "fleet_latency": fleet_latency.run,
        "footprint": footprint.run,
    }


def _measure(
    chosen: list[str], runners: dict[str, Callable[[], Family]]
) -> tuple[list[Family], float]:
    started = time.perf_counter()
    families: list[Family] = []
    for name in chosen:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        family_start = time.perf_counter()
        try:
            family = runners[name]()
        except Exception as exc:  # one family's failure must not lose the others' figures
            traceback.print_exc()
            family = Family(name, skipped=f"{type(exc).__name__}: {exc}")
            family.seconds = time.perf_counter() - family_start
        families.append(family)
        print(f"bench: {name} done in {family.seconds:.0f} s", file=sys.stderr, flush=True)
    return families, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        default=",".join(FAMILIES),
        help=(
            f"comma-separated families to run (default: all of {', '.join(FAMILIES)}), or "
            f"rows of the parsers family ({', '.join(parsers.ROWS)})"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="tiny inputs; writes nothing")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="where to write the report (default: BENCHMARKS.md, not with --quick)",
    )
    parser.add_argument(
        "--save", type=Path, default=None, help="also save every figure and the machine as JSON"
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        help="render the report again from a --save file instead of measuring",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    rows = tuple(name for name in chosen if name in parsers.ROWS)
    if rows:  # rows of the parsers family: run that family with those rows only
        chosen = [name for name in chosen if name not in rows]
        if "parsers" not in chosen:
            chosen.insert(0, "parsers")
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families or rows: {', '.join(unknown)}")
    output = args.output
    if output is None and not args.quick:
        output = ROOT / "BENCHMARKS.md"

    if args.source is not None:
        saved = json.loads(args.source.read_text(encoding="utf-8"))
        info, families, seconds = (
            saved["machine"],
            families_from_json(saved["families"]),
            saved["seconds"],
        )
        command = saved["command"]
    else:
        info = report.machine()
        families, seconds = _measure(chosen, _runners(args.quick, rows or parsers.ROWS))
        command = "python -m bench" + (
            f" --only {args.only}" if args.only != ",".join(FAMILIES) else ""
        )
        if args.quick:
            command += " --quick"
    if args.save is not None:
        args.save.write_text(
            json.dumps(
                {
                    "machine": info,
                    "seconds": seconds,
                    "command": command,
                    "families": families_to_json(families),
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    print(report.text_table(families))
    if output is not None:
        text = report.markdown(
            families, info, command=command, seconds=seconds, analysis=report.analysis
        )
        report.write(output, text)
        print(f"bench: wrote {output} ({seconds / 60:.1f} min)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
