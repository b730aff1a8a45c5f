"""``dockprogress demo``: the three approaches at once, on the local test bed.

    dockprogress demo [--port 8765] [--no-dashboard] [--linger SECONDS] [--progress ...]

Runs, concurrently and each as its own task:

1. a throttled multi-layer pull (``127.0.0.1:5001/dp/layers:1``, removed locally first, so
   every byte really comes through the bandwidth-limited registry front);
2. a PostgreSQL 15 container that initialises a database and loads ``pgbench`` data,
   followed through its logs with the shipped ``postgres-load.toml`` milestones (calibrated:
   a second demo run moves smoothly and shows an ETA);
3. a real tqdm script run with ``docker exec`` in a Python container, parsed from its TTY;
4. a build (``FROM dp/base``) whose first steps come from the cache and whose last ones run
   each time (a build argument changes per run), its context kept under the cache folder so
   a second demo run is calibrated by the first (smooth bar, ETA); then a push of that image
   through the throttled front (``127.0.0.1:5001/dp/demo-build``): a fresh 20 MB layer each
   run, the base layer already in the registry.

Terminal bars show them; the live dashboard (``http://127.0.0.1:8765`` by default) shows
the same tasks. Needs the test bed (``scripts/testbed up``, which ``make demo`` runs first).
The demo's containers are removed at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from dockprogress.cli.common import (
    add_display_options,
    add_engine_options,
    check_engine_options,
    engine_options,
    run_with_display,
)
from dockprogress.errors import DockProgressError, EngineError, UsageError
from dockprogress.events import TaskEvent
from dockprogress.examples import example_path, example_text
from dockprogress.sinks.base import Sink

__all__ = ["register", "run"]

REGISTRY = "127.0.0.1:5000"
SLOW_REGISTRY = "127.0.0.1:5001"
PULL_IMAGE = "dp/layers:1"
POSTGRES_IMAGE = f"{REGISTRY}/dp/postgres:1"
PYTHON_IMAGE = f"{REGISTRY}/dp/python:1"
BUILD_IMAGE = f"{SLOW_REGISTRY}/dp/demo-build:1"
BUILD_DOCKERFILE = """\
FROM 127.0.0.1:5000/dp/base:1
RUN echo "the cached part: built once, then taken from the cache" > /cached
RUN for i in 1 2 3; do echo "cached step $i"; done > /cached-more
ARG DEMO_RUN
RUN for i in 1 2 3 4 5 6; do echo "compiling part $i of 6 (run $DEMO_RUN)"; sleep 0.5; done
RUN head -c 20000000 /dev/urandom > /payload && echo "payload written"
"""
_PREFIX = "dockprogress-demo"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="a throttled pull, a PostgreSQL load, a tqdm exec, a build and a push (test bed)",
        description="Show the three approaches at once on the local test bed, with the dashboard.",
    )
    parser.add_argument("--port", type=int, default=8765, help="dashboard port (0 = any free)")
    parser.add_argument("--no-dashboard", action="store_true", help="terminal only")
    parser.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep the dashboard up this long after the tasks end",
    )
    parser.add_argument(
        "--scale", type=int, default=25, help="pgbench scale of the PostgreSQL load (default 25)"
    )
    add_engine_options(parser)
    add_display_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import docker

    from dockprogress.docker.client import connect

    check_engine_options(args)
    engine = engine_options(args)
    client = connect(**engine)
    _require_images(client)
    server = None
    if not args.no_dashboard:
        from dockprogress.sinks.web.server import ServerThread

        server = ServerThread(port=args.port).start()
        # Standard error: with --progress json, standard output carries event lines only.
        print(f"dockprogress demo: dashboard at {server.url}", file=sys.stderr, flush=True)
    containers: list[Any] = []
    try:
        postgres = _start_postgres(client, args.scale)
        containers.append(postgres)
        python = client.containers.run(
            PYTHON_IMAGE, ["sleep", "600"], name=f"{_PREFIX}-python", detach=True
        )
        containers.append(python)
        _remove_image(client, PULL_IMAGE)
        jobs = _jobs(postgres.name, python.name, engine)

        def produce(sink: Sink) -> None:
            target: Sink = sink
            if server is not None:
                target = _Both(sink, server.hub)
            _run_concurrently(jobs, target)
            if server is not None and args.linger > 0:
                time.sleep(args.linger)

        return run_with_display(args, produce)
    except docker.errors.DockerException as exc:
        raise EngineError(f"demo: {exc}") from exc
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
        if server is not None:
            server.stop()


# ---------------------------------------------------------------------------- the three jobs


def _jobs(
    postgres: str, python: str, engine: dict[str, Any]
) -> list[Callable[[], Iterator[TaskEvent]]]:
    from dockprogress.core.milestones import load_milestones
    from dockprogress.docker.exec import iter_exec
    from dockprogress.docker.logs import iter_follow
    from dockprogress.docker.pull import iter_pull

    milestones = load_milestones(example_path("postgres-load.toml"))
    tqdm_script = example_text("tqdm_demo.py")
    return [
        lambda: iter_pull(f"{SLOW_REGISTRY}/{PULL_IMAGE}", priority=0, **engine),
        lambda: iter_follow(postgres, milestones=milestones, priority=1, **engine),
        lambda: iter_exec(
            python,
            ["python3", "-c", tqdm_script, "bytes", "150", "0.1"],
            task_id=f"exec:{python}:tqdm_demo.py",
            **engine,
        ),
        _build_then_push,
    ]


def _build_then_push() -> Iterator[TaskEvent]:
    """Build the demo image (cached steps, then uncached ones), then push it (slow front)."""
    from dockprogress.docker.build import iter_build
    from dockprogress.docker.push import iter_push
    from dockprogress.profiles import profile_dir

    # A fixed folder, so the calibration profile (keyed by the Dockerfile's path) is reused.
    context = profile_dir().parent / "demo-build"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(BUILD_DOCKERFILE, encoding="utf-8")
    yield from iter_build(
        context,
        tags=[BUILD_IMAGE],
        build_args={"DEMO_RUN": str(int(time.time()))},
        network="none",  # the bed's engines have no bridge network
        priority=2,
    )
    yield from iter_push(BUILD_IMAGE, priority=3)


def _run_concurrently(jobs: list[Callable[[], Iterator[TaskEvent]]], sink: Sink) -> None:
    """Run each job in its own thread; every event goes to ``sink`` (a thread-safe Fanout)."""
    failures: list[BaseException] = []
    stop = threading.Event()

    def work(job: Callable[[], Iterator[TaskEvent]]) -> None:
        events = job()
        try:
            for event in events:
                sink.send(event)
                if stop.is_set():
                    break
        except DockProgressError as exc:  # the task's own error event has been sent
            failures.append(exc)
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    threads = [threading.Thread(target=work, args=(job,), daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        raise
    if failures:
        raise failures[0]


class _Both:
    """Send to the display and to the dashboard's hub."""

    __slots__ = ("_hub", "_sink")

    def __init__(self, sink: Sink, hub: Sink) -> None:
        self._sink = sink
        self._hub = hub

    def send(self, event: TaskEvent) -> None:
        self._sink.send(event)
        self._hub.send(event)

    def close(self) -> None:
        self._sink.close()


# --------------------------------------------------------------------------------- helpers


def _start_postgres(client: Any, scale: int) -> Any:
    name = f"{_PREFIX}-postgres"
    _remove_container(client, name)
    return client.containers.run(
        POSTGRES_IMAGE,
        ["sh", "-c", example_text("postgres-load.sh")],
        name=name,
        detach=True,
        environment={"PGBENCH_SCALE": str(scale)},
    )


def _require_images(client: Any) -> None:
    import docker

    for image in (POSTGRES_IMAGE, PYTHON_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise UsageError(
                f"demo: image {image} is missing; bring the test bed up first "
                "(scripts/testbed up, or make demo)"
            ) from None
    for name in ("postgres", "python"):
        _remove_container(client, f"{_PREFIX}-{name}")


def _remove_container(client: Any, name: str) -> None:
    import docker

    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(name).remove(force=True)


def _remove_image(client: Any, repository: str) -> None:
    """Remove every local tag of the pull image, so the demo pull is a fresh one."""
    import docker

    for registry in (REGISTRY, SLOW_REGISTRY):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(f"{registry}/{repository}", force=True)
