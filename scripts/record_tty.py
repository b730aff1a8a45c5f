#!/usr/bin/env python3
"""Record the raw TTY bytes of a command, for tests/fixtures/tty/.

usage: record_tty.py [--container NAME] [--size 100x30] OUT.bin -- CMD [ARG ...]

With --container the command runs through ``docker exec`` with a TTY (dockprogress's own
exec adapter, console size sent); without it, locally under a pty. The bytes are written to
OUT.bin exactly as read, before any parsing. An example script from
src/dockprogress/examples/ can be named as ``@tqdm_demo.py``: it is run as
``python3 -c <its source>`` so that it needs nothing copied into the container.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dockprogress.errors import ExecError

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "dockprogress" / "examples"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--container")
    parser.add_argument("--size", default="100x30")
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if cmd and cmd[0].startswith("@"):
        cmd = ["python3", "-c", (EXAMPLES / cmd[0][1:]).read_text(), *cmd[1:]]
    columns, lines = (int(x) for x in args.size.split("x"))
    with args.out.open("wb") as out:
        try:
            if args.container:
                from dockprogress.docker.exec import iter_exec

                events = list(
                    iter_exec(args.container, cmd, passthrough=out, size=(columns, lines))
                )
            else:
                from dockprogress.local import iter_run

                events = list(iter_run(cmd, passthrough=out, size=(columns, lines)))
        except ExecError as exc:
            print(f"command failed (recorded anyway): {exc}", file=sys.stderr)
            return 1
    last = events[-1]
    print(f"{args.out}: {args.out.stat().st_size} bytes, {len(events)} events, {last.state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
