"""Following every container of a Docker Compose project, one task per service + aggregate.

Compose marks its containers with labels: ``com.docker.compose.project``, ``…service`` and
``…container-number``. :func:`iter_follow_project` finds the project's containers by those
labels (running or not), follows each with :func:`~dockprogress.docker.logs.iter_follow` in
its own worker thread, and yields every event of every service task (``logs:<project>/<service>``,
``-<n>`` appended when a service has several replicas) and of an aggregate task
``logs:<project>`` whose percent is the mean of the services' percents. The aggregate ends
when every service has ended: ``done`` if all are done, else ``error`` naming the failed
services (``cancelled`` if none failed but some were cancelled).

``milestones`` is one set for every service, or a mapping service → set (a service without
a set is not followed). Each service calibrates under its own profile
``<profile or set name>-<service>``. After the last event the first failure is raised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import docker

from dockprogress._bridge import aiter_in_thread
from dockprogress.core.milestones import MilestoneSet
from dockprogress.docker.client import connect, translate_errors
from dockprogress.docker.logs import iter_follow
from dockprogress.errors import DockProgressError, EngineError, UsageError
from dockprogress.events import Kind, Operation, State, TaskEvent
from dockprogress.task import Task

__all__ = ["PROJECT_LABEL", "SERVICE_LABEL", "afollow_project", "iter_follow_project"]

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"

_EVENT, _FAILURE, _END = "event", "failure", "end"


def iter_follow_project(
    project: str,
    *,
    milestones: MilestoneSet | Mapping[str, MilestoneSet],
    client: docker.DockerClient | None = None,
    profile: str | None = None,
    calibrate: bool = True,
    cancel: threading.Event | None = None,
    host: str | None = None,
    context: str | None = None,
    **options: Any,
) -> Iterator[TaskEvent]:
    """Follow every container of compose ``project``; ``UsageError`` if it has none.

    ``options`` go to each :func:`~dockprogress.docker.logs.iter_follow` (``stall_after``,
    ``progress_handler``, ``tick_interval``, …).
    """
    owns_client = client is None
    aggregate = Task(
        f"logs:{project}",
        Operation.LOGS,
        Kind.COUNT,
        description=f"compose project {project}",
        total=100.0,
        priority=-1,
    )
    try:
        client = client if client is not None else connect(host=host, context=context)
        jobs = _jobs(client, project, milestones)
    except EngineError as exc:
        # No engine: the project's task still ends, in error, like every task announced.
        failed = aggregate.fail(str(exc))
        if failed is not None:
            yield failed
        if owns_client and client is not None:
            client.close()
        raise
    stop = cancel if cancel is not None else threading.Event()
    try:
        percents: dict[str, float] = {task_id: 0.0 for task_id, *_ in jobs}
        ended: dict[str, State] = {}
        failures: list[BaseException] = []
        results: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        threads = []
        for task_id, container_id, service, service_set in jobs:
            base = profile or service_set.name
            follow_options = dict(options)
            follow_options.update(
                milestones=service_set,
                client=client,
                task_id=task_id,
                cancel=stop,
                profile=f"{base}-{service}" if (calibrate and base) else None,
                calibrate=False,
                detail={"project": project, "service": service},
            )
            thread = threading.Thread(
                target=_work,
                args=(container_id, task_id, follow_options, results),
                name=f"dockprogress-compose-{service}",
                daemon=True,
            )
            threads.append(thread)
        first = aggregate.update(
            current=0.0, percent=0.0, detail={"project": project, "services": len(jobs)}
        )
        if first is not None:
            yield first
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                kind, task_id, payload = results.get()
                if kind == _END:
                    running -= 1
                    continue
                if kind == _FAILURE:
                    failures.append(payload)
                    continue
                event: TaskEvent = payload
                yield event
                percents[task_id] = event.percent or 0.0
                if event.terminal:
                    ended[task_id] = event.state
                summary = _summarise(aggregate, percents, ended, project)
                if summary is not None:
                    yield summary
        except KeyboardInterrupt:
            stop.set()
            for thread in threads:
                thread.join(5.0)
            while not results.empty():
                kind, _, payload = results.get()
                if kind == _EVENT:
                    yield payload
            cancelled = aggregate.cancel("cancelled by Ctrl-C")
            if cancelled is not None:
                yield cancelled
            raise
        if not aggregate.ended:
            summary = _summarise(aggregate, percents, ended, project, final=True)
            if summary is not None:
                yield summary
        if failures:
            raise failures[0]
    finally:
        stop.set()
        if owns_client:
            client.close()


def afollow_project(project: str, **options: Any) -> AsyncIterator[TaskEvent]:
    """``async for`` form of :func:`iter_follow_project`."""
    return aiter_in_thread(lambda: iter_follow_project(project, **options))


def _jobs(
    client: docker.DockerClient,
    project: str,
    milestones: MilestoneSet | Mapping[str, MilestoneSet],
) -> list[tuple[str, str, str, MilestoneSet]]:
    with translate_errors(f"list the containers of compose project {project}"):
        found = client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    by_service: dict[str, list[tuple[int, str]]] = {}
    for item in found:
        labels = item.get("Labels") or {}
        service = str(labels.get(SERVICE_LABEL) or item["Id"][:12])
        try:
            number = int(labels.get(NUMBER_LABEL) or 1)
        except ValueError:
            number = 1
        by_service.setdefault(service, []).append((number, str(item["Id"])))
    jobs: list[tuple[str, str, str, MilestoneSet]] = []
    for service in sorted(by_service):
        if isinstance(milestones, MilestoneSet):
            service_set: MilestoneSet | None = milestones
        else:
            service_set = milestones.get(service)
        if service_set is None:
            continue
        replicas = sorted(by_service[service])
        for number, container_id in replicas:
            suffix = f"-{number}" if len(replicas) > 1 else ""
            jobs.append((f"logs:{project}/{service}{suffix}", container_id, service, service_set))
    if not jobs:
        raise UsageError(
            f"no container of compose project {project!r} to follow "
            f"(none has the label {PROJECT_LABEL}={project}, or no milestones for its services)"
        )
    return jobs


def _work(
    container_id: str,
    task_id: str,
    options: dict[str, Any],
    results: queue.Queue[tuple[str, str, Any]],
) -> None:
    try:
        for event in iter_follow(container_id, **options):
            results.put((_EVENT, task_id, event))
    except DockProgressError as exc:
        results.put((_FAILURE, task_id, exc))
    except BaseException as exc:  # handed to the consumer, never lost in a thread
        results.put((_FAILURE, task_id, exc))
    finally:
        results.put((_END, task_id, None))


def _summarise(
    aggregate: Task,
    percents: dict[str, float],
    ended: dict[str, State],
    project: str,
    *,
    final: bool = False,
) -> TaskEvent | None:
    detail = {"project": project, "services": len(percents), "ended": len(ended)}
    if len(ended) == len(percents) or final:
        failed = sorted(t for t, s in ended.items() if s is State.ERROR)
        if failed:
            return aggregate.fail(f"failed: {', '.join(failed)}", detail=detail)
        if ended and all(s is State.DONE for s in ended.values()) and len(ended) == len(percents):
            return aggregate.finish(detail=detail)
        return aggregate.cancel("not every service finished", detail=detail)
    mean = sum(percents.values()) / len(percents)
    return aggregate.update(current=mean, percent=mean, detail=detail)
