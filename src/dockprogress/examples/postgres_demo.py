"""Run the PostgreSQL load example and follow it with ``dockprogress logs``.

    python -m dockprogress.examples.postgres_demo [--scale N] [--progress auto|tty|plain|json]

Starts ``127.0.0.1:5000/dp/postgres:1`` running ``postgres-load.sh`` (initdb, then
``pgbench -i -s N`` with checkpoints logged), follows it with the shipped
``postgres-load.toml`` and removes the container at the end. The first run records the
``postgres-load`` calibration profile; later runs show smooth progress and an ETA.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid

from dockprogress.cli.main import main as cli_main
from dockprogress.docker.client import connect
from dockprogress.examples import example_path, example_text

IMAGE = "127.0.0.1:5000/dp/postgres:1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="postgres_demo", description=__doc__)
    parser.add_argument("--scale", type=int, default=80, help="pgbench scale (default 80)")
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--progress", default="auto")
    args = parser.parse_args(argv)
    client = connect()
    name = f"dockprogress-demo-pg-{uuid.uuid4().hex[:8]}"
    client.containers.run(
        args.image,
        ["sh", "-c", example_text("postgres-load.sh")],
        environment={"PGBENCH_SCALE": str(args.scale)},
        name=name,
        detach=True,
    )
    try:
        return cli_main(
            [
                "logs",
                name,
                "--milestones",
                str(example_path("postgres-load.toml")),
                "--progress",
                args.progress,
            ]
        )
    finally:
        with contextlib.suppress(Exception):
            client.api.remove_container(name, force=True)
        client.close()


if __name__ == "__main__":
    sys.exit(main())
