"""Fixtures of the dashboard tests: a real server on a free loopback port, real events from
the real :class:`~dockprogress.task.Task` model, and headless Chromium (Debian's package)
driven by Playwright.

Browser tests are marked ``browser``; without chromium or Playwright they are skipped, except
under ``CI=true``, where they fail (CI must never pass by skipping them).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockprogress.events import Kind, Operation, TaskEvent
from dockprogress.sinks.web.hub import EventHub
from dockprogress.sinks.web.server import ServerThread
from dockprogress.task import Task

CHROMIUM = os.environ.get("DOCKPROGRESS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Clock:
    """A hand-moved clock for Task, so speed and ETA are real computations on known times."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def download_events(
    task_id: str, total: int, steps: int, *, seconds: float = 10.0, priority: int = 0
) -> list[TaskEvent]:
    """The events of a download task moving evenly from 0 to ``total`` bytes, then done."""
    clock = Clock()
    task = Task(task_id, Operation.PULL, Kind.DOWNLOAD, total=total, priority=priority, clock=clock)
    events = []
    for step in range(1, steps + 1):
        clock.now += seconds / steps
        event = task.update(current=total * step // (steps + 1), description="downloading")
        assert event is not None
        events.append(event)
    end = task.finish(description="pulled")
    assert end is not None
    return [*events, end]


def count_events(task_id: str, total: int, *, description: str = "") -> list[TaskEvent]:
    """A count task (an exec's bar) going 1..total-1, then done."""
    clock = Clock()
    task = Task(task_id, Operation.EXEC, Kind.COUNT, total=total, clock=clock)
    events = []
    for step in range(1, total):
        clock.now += 0.5
        event = task.update(current=step, description=description)
        assert event is not None
        events.append(event)
    end = task.finish()
    assert end is not None
    return [*events, end]


@pytest.fixture
def hub() -> EventHub:
    return EventHub(heartbeat=0.5)


@pytest.fixture
def server(hub: EventHub) -> Iterator[ServerThread]:
    with ServerThread(hub, port=0) as running:
        yield running


def _browser_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


# Module scope: Playwright's sync API keeps an event loop running in the main thread while it
# is open, which would stop other modules' tests from calling asyncio.run().
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        _browser_unavailable(f"{CHROMIUM} not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageProbe:
    """A page plus what it did that a test must see: dialogs opened, script errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def probe(chromium: Any) -> Iterator[PageProbe]:
    context = chromium.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield PageProbe(page)
    finally:
        context.close()
