"""``dockprogress demo`` seen in the browser: its three tasks live on the dashboard at once.

This is the README's showcase (``make demo``): a throttled pull, a PostgreSQL load followed
through its log milestones and a tqdm exec, all three published to the dashboard the demo
embeds. The test writes ``docs/demo.png``, the README's picture of it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest

from tests.web.conftest import DOCS, PageProbe, free_port

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.slow]

DEMO_OPTIONS = ("--progress", "plain", "--linger", "5", "--scale", "15")


def test_the_demo_shows_pull_logs_and_exec_live(probe: PageProbe, testbed: Any) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "dockprogress", "demo", "--port", str(port), *DEMO_OPTIONS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = probe.page
        deadline = time.monotonic() + 30
        while True:  # the demo prepares its containers before the dashboard answers
            try:
                page.goto(f"http://127.0.0.1:{port}/")
                break
            except Exception:
                if time.monotonic() > deadline or demo.poll() is not None:
                    raise
                time.sleep(0.5)
        page.locator('#status[data-state="live"]').wait_for()
        for operation in ("pull", "logs", "exec"):
            page.locator(f'li.task[data-task^="{operation}:"]').first.wait_for(timeout=60_000)
        # A moment when all three are visibly under way makes the README's picture.
        pull = page.locator('li.task[data-task^="pull:"]').first
        deadline = time.monotonic() + 60
        while pull.get_attribute("data-state") == "running" and time.monotonic() < deadline:
            shown = (pull.locator(".percent").text_content() or "").rstrip("%")
            if shown and float(shown) >= 25:
                break
            time.sleep(0.2)
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "demo.png"), full_page=True)
        # A long log line (PostgreSQL's checkpoint lines are ~250 characters) is cut with an
        # ellipsis; it must never widen the page past the window.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        for operation in ("pull", "logs", "exec"):
            page.locator(f'li.task[data-task^="{operation}:"][data-state="done"]').first.wait_for(
                timeout=120_000
            )
        _, stderr = demo.communicate(timeout=60)
        assert demo.returncode == 0, stderr
        assert f"dashboard at http://127.0.0.1:{port}" in stderr
        assert probe.errors == []
    finally:
        if demo.poll() is None:
            demo.terminate()
        demo.communicate(timeout=30)  # also closes the pipe
