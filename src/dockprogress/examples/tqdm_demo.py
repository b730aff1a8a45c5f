"""A tiny real tqdm workload, for dockprogress demos, tests and recordings.

usage: python3 tqdm_demo.py [MODE] [STEPS] [DELAY] [EXIT_STATUS]

MODE is ``one`` (one bar), ``nested`` (3 epochs, each with an inner bar at position 1),
``bytes`` (unit='B', unit_scale=True), ``unknown`` (no total), ``fast`` (mininterval=0, no
delay) or ``text`` (plain lines mentioning percentages, then one bar). STEPS defaults to 40,
DELAY (seconds per step) to 0.02, EXIT_STATUS (the status to end with) to 0. Runs on the
tqdm of Debian 12 (4.64) and on current PyPI tqdm alike.
"""

import sys
import time

from tqdm import tqdm  # type: ignore[import-untyped]


def main(argv: list[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "one"
    steps = int(argv[2]) if len(argv) > 2 else 40
    delay = float(argv[3]) if len(argv) > 3 else 0.02
    status = int(argv[4]) if len(argv) > 4 else 0
    if mode == "one":
        for _ in tqdm(range(steps), desc="work"):
            time.sleep(delay)
    elif mode == "nested":
        for _ in tqdm(range(3), desc="epochs", position=0):
            for _ in tqdm(range(steps), desc="batches", position=1, leave=False):
                time.sleep(delay)
    elif mode == "bytes":
        with tqdm(total=steps * 256_000, unit="B", unit_scale=True, desc="download") as bar:
            for _ in range(steps):
                time.sleep(delay)
                bar.update(256_000)
    elif mode == "unknown":
        with tqdm(desc="scan") as bar:
            for _ in range(steps):
                time.sleep(delay)
                bar.update(1)
    elif mode == "fast":
        for _ in tqdm(range(steps), desc="fast", mininterval=0, miniters=1):
            pass
    elif mode == "text":
        print("Processed 100% of the index; 50% of files are cached")
        for _ in tqdm(range(steps), desc="work"):
            time.sleep(delay)
    else:
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    print(f"finished {mode}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
