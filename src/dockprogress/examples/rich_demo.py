"""A tiny real rich workload, for dockprogress demos, tests and recordings.

usage: python3 rich_demo.py [MODE] [STEPS] [DELAY] [EXIT_STATUS]

MODE is ``one`` (one task), ``multi`` (three tasks at once, advancing at different speeds)
or ``unknown`` (a task without a total for half the run, then with one). STEPS defaults to
40, DELAY (seconds per step) to 0.02, EXIT_STATUS to 0. Runs on rich 13 (Debian 12) and later.
"""

import sys
import time

from rich.progress import Progress


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "one"
    steps = int(argv[2]) if len(argv) > 2 else 40
    delay = float(argv[3]) if len(argv) > 3 else 0.02
    status = int(argv[4]) if len(argv) > 4 else 0
    with Progress() as progress:
        if mode == "one":
            task = progress.add_task("render", total=steps)
            for _ in range(steps):
                time.sleep(delay)
                progress.advance(task)
        elif mode == "multi":
            tasks = [
                (progress.add_task("fetch", total=steps), 1.0),
                (progress.add_task("decode", total=steps), 0.5),
                (progress.add_task("index", total=steps), 0.25),
            ]
            while not progress.finished:
                time.sleep(delay)
                for task, speed in tasks:
                    progress.advance(task, speed)
        elif mode == "unknown":
            task = progress.add_task("waiting", total=None)
            for _ in range(steps // 2):
                time.sleep(delay)
                progress.advance(task)
            progress.update(task, total=steps)
            for _ in range(steps - steps // 2):
                time.sleep(delay)
                progress.advance(task)
        else:
            print(f"unknown mode {mode!r}", file=sys.stderr)
            return 2
    print(f"finished {mode}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
