"""Fleet latency: from an event made on a node to a browser of either of two replicas.

The issue's set-up, all real processes: three publishing nodes -- ``dockprogress exec`` in a
``dp/python:1`` container on each engine of the test bed (classic and modern) and a local
``dockprogress run`` -- each following a tqdm bar redrawn every 100 ms whose description is
the time of the redraw; the bed's Redis (database 5, flushed first); two
``dockprogress serve --bus`` replicas; on each replica ``clients`` WebSocket clients (the
``websockets`` library, in this process) and, when Chromium is installed, one headless
Chromium page on the second replica (Playwright, the page the dashboard serves).

Two latencies per sample, both on this machine's clock (the containers share its kernel):

* **publish -> client**: the client's clock when an event arrives minus the event's ``ts``
  (the moment the node's tracker made it and handed it to its bus publisher). In the page, the
  arrival is taken in the page's own WebSocket ``message`` handler (a listener added before
  the page's script runs).
* **redraw -> page**: the time the description text appears in the page's DOM (a
  ``MutationObserver``) minus the time written in it by tqdm: the whole way, the tracker's
  parsing included, to what a person sees.

Each event counts once per client (its first arrival); events coalesced on the way (a node's
queue, a client's mailbox: a newer state replaced them) never arrive and are counted apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Comparison, Family, Figure, Target, percentile

ROOT = Path(__file__).resolve().parents[1]
DB = 5
INTERVAL = 0.1
IMAGE = "dp/python:1"
#: Node names and how they run: an engine of the bed (``classic``/``modern``) or ``local``.
NODES = (("classic", "classic"), ("modern", "modern"), ("local", "local"))

# The bar every node follows: one redraw per INTERVAL, its description the redraw's time.
TQDM_SCRIPT = """
import sys, time
from tqdm import tqdm
n, interval = int(sys.argv[1]), float(sys.argv[2])
time.sleep(1.0)
bar = tqdm(total=n, mininterval=0, miniters=1, desc="start")
start = time.time()
for i in range(n):
    time.sleep(max(0.0, start + i * interval - time.time()))
    bar.set_description_str(f"T{time.time():.6f}", refresh=False)
    bar.update(1)
bar.close()
"""

# Installed in the page before its own script: notes when each event reaches the page's
# WebSocket handler, and when each stamped description reaches the DOM.
PAGE_HOOK = """
(() => {
  window.__dp = { ws: [], dom: [], seen: new Set() };
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    socket.addEventListener("message", (message) => {
      const now = Date.now() / 1000;
      let data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data.type !== "tasks") return;
      for (const entry of data.tasks || []) {
        const ev = entry.event;
        const key = ev.node + "|" + ev.task + "|" + ev.ts;
        if (!window.__dp.seen.has(key)) {
          window.__dp.seen.add(key);
          window.__dp.ws.push([ev.node, now - ev.ts]);
        }
      }
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
  const stamps = new Set();
  new MutationObserver((records) => {
    const now = Date.now() / 1000;
    for (const record of records) {
      const target = record.target.nodeType === 3 ? record.target.parentElement : record.target;
      if (!target || !target.classList || !target.classList.contains("desc")) continue;
      const text = target.textContent || "";
      if (text.startsWith("T") && !stamps.has(text)) {
        const written = parseFloat(text.slice(1));
        if (!Number.isNaN(written)) { stamps.add(text); window.__dp.dom.push(now - written); }
      }
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
})();
"""

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _dockprogress() -> list[str]:
    script = Path(sys.executable).with_name("dockprogress")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dockprogress"]


def _state_dir() -> Path:
    return Path(os.environ.get("TESTBED_DIR", ROOT / ".testbed")).resolve()


def _bed() -> tuple[str, dict[str, Any]]:
    """The bed's Redis as a bus URL, and the bed's state (engines, registry)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import testbed_redis

    state_dir = _state_dir()
    testbed_redis.ensure_redis(state_dir)
    state_file = state_dir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    return f"redis://127.0.0.1:{testbed_redis.PORT}/{DB}", state


class Replica:
    """``dockprogress serve --bus`` on a free loopback port."""

    def __init__(self, bus: str) -> None:
        from bench.latency import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*_dockprogress(), "serve", "--port", str(self.port), "--bus", bus,
             "--node", f"replica-{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(OSError),
                _OPENER.open(self.url + "/api/tasks", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dockprogress serve --bus did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Node:
    """One publishing node: a container with a shell on an engine, or this machine."""

    def __init__(self, name: str, where: str, state: dict[str, Any]) -> None:
        self.name, self.where = name, where
        self.env = dict(os.environ)
        self.container: str | None = None
        if where != "local":
            engine = state.get("engines", {}).get(where)
            if not engine:
                raise RuntimeError(f"the test bed has no {where} engine (state.json)")
            self.env["DOCKER_HOST"] = str(engine["docker_host"])
            self.container = f"dp-bench-fleet-{where}-{os.getpid()}"
            self._docker("rm", "-f", self.container, check=False)
            image = f"{state.get('registry', '127.0.0.1:5000')}/{IMAGE}"
            self._docker("run", "-d", "--name", self.container, image, "sleep", "3600")

    def _docker(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, check=check, timeout=120
        )

    def start(self, bus: str, samples: int) -> subprocess.Popen[bytes]:
        bar = [TQDM_SCRIPT, str(samples), str(INTERVAL)]
        common = ["--bus", bus, "--node", self.name, "--progress", "json", "--"]
        if self.container is None:
            argv = [*_dockprogress(), "run", *common, sys.executable, "-c", *bar]
        else:
            argv = [*_dockprogress(), "exec", self.container, *common, "python3", "-c", *bar]
        return subprocess.Popen(
            argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def remove(self) -> None:
        if self.container is not None:
            self._docker("rm", "-f", self.container, check=False)


@dataclass
class Seen:
    """What one client saw: publish -> arrival per node, and the events it counted."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)


async def _client(url: str, nodes: set[str], deadline: float, ready: asyncio.Event) -> Seen:
    from websockets.asyncio.client import connect

    seen = Seen()
    first: set[tuple[str, str, float]] = set()
    async with connect(
        url.replace("http://", "ws://") + "/ws", max_size=None, proxy=None, open_timeout=10
    ) as ws:
        await ws.recv()  # the snapshot: events from before this client
        ready.set()
        while seen.ended != nodes and time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            now = time.time()
            for entry in json.loads(raw).get("tasks", ()):
                event = entry["event"]
                node = event["node"]
                if node not in nodes:
                    continue
                key = (node, event["task"], event["ts"])
                if key not in first:
                    first.add(key)
                    seen.latencies.setdefault(node, []).append(now - event["ts"])
                if event["state"] in ("done", "error", "cancelled"):
                    seen.ended.add(node)
    return seen


async def _page(url: str, seconds: float, ready: asyncio.Event) -> dict[str, Any] | None:
    """One headless Chromium page on ``url`` for ``seconds``; ``None`` without Chromium."""
    import shutil

    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        return None
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 760})
            await page.add_init_script(PAGE_HOOK)
            await page.goto(url, wait_until="load")
            await page.wait_for_function("window.__dp !== undefined")
            await asyncio.sleep(0.5)  # the page's socket open and its snapshot drawn
            ready.set()
            await asyncio.sleep(seconds)
            result: dict[str, Any] = await page.evaluate("window.__dp")
            result.pop("seen", None)
            return result
        finally:
            await browser.close()


async def _measure(
    replicas: list[Replica], nodes: list[Node], bus: str, samples: int, clients: int
) -> tuple[list[Seen], dict[str, Any] | None, list[str]]:
    names = {node.name for node in nodes}
    seconds = samples * INTERVAL + 15
    deadline = time.monotonic() + seconds + 30
    readies = [asyncio.Event() for _ in range(clients * len(replicas) + 1)]
    tasks = [
        asyncio.create_task(_client(replica.url, names, deadline, readies[i * clients + c]))
        for i, replica in enumerate(replicas)
        for c in range(clients)
    ]
    page_task = asyncio.create_task(_page(replicas[-1].url, seconds, readies[-1]))
    page_task.add_done_callback(lambda _t: readies[-1].set())  # no Chromium: nothing to wait
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    procs = [node.start(bus, samples) for node in nodes]
    seen = await asyncio.gather(*tasks)
    page = await page_task
    errors = []
    for node, proc in zip(nodes, procs, strict=True):
        _out, err = await asyncio.to_thread(proc.communicate, timeout=60)
        if proc.returncode != 0:
            errors.append(f"{node.name}: exit {proc.returncode}: {err.decode()[-300:]}")
    return list(seen), page, errors


@dataclass
class FleetRun:
    client: list[float]  # publish -> WebSocket client, every client, every node (seconds)
    per_node: dict[str, list[float]]
    page_ws: list[float]
    page_dom: list[float]
    missing_ends: int
    notes: list[str]


def measure(
    bus: str,
    state: dict[str, Any],
    *,
    samples: int = 150,
    clients: int = 4,
    nodes: tuple[tuple[str, str], ...] = NODES,
) -> FleetRun:
    import redis

    sync = redis.Redis.from_url(bus)
    sync.flushdb()
    sync.close()
    made: list[Node] = []
    replicas: list[Replica] = []
    try:
        for name, where in nodes:
            made.append(Node(name, where, state))
        replicas = [Replica(bus), Replica(bus)]
        seen, page, errors = asyncio.run(_measure(replicas, made, bus, samples, clients))
    finally:
        for replica in replicas:
            replica.stop()
        for node in made:
            node.remove()
    per_node: dict[str, list[float]] = {}
    for one in seen:
        for node, values in one.latencies.items():
            per_node.setdefault(node, []).extend(values)
    names = {name for name, _ in nodes}
    return FleetRun(
        client=[v for values in per_node.values() for v in values],
        per_node=per_node,
        page_ws=[v for _node, v in (page or {}).get("ws", [])],
        page_dom=list((page or {}).get("dom", [])),
        missing_ends=sum(len(names - one.ended) for one in seen),
        notes=errors + ([] if page is not None else ["no Chromium: the page was not measured"]),
    )


def _ms(values: list[float], q: float) -> float:
    return 1000 * percentile(values, q) if values else float("nan")


def run(*, runs: int = 3, samples: int = 150, clients: int = 4) -> Family:
    started = time.perf_counter()
    bus, state = _bed()
    results = [measure(bus, state, samples=samples, clients=clients) for _ in range(runs)]
    family = Family("fleet_latency")
    shape = (
        f"{runs} runs; nodes {', '.join(n for n, _ in NODES)} each redrawing a tqdm bar every "
        f"{INTERVAL * 1000:.0f} ms for {samples} redraws; 2 replicas x {clients} WebSocket "
        "clients + 1 Chromium page"
    )
    p99 = Figure(
        "publish -> WebSocket client: p99", "ms", [_ms(r.client, 99) for r in results], False
    )
    family.comparisons.append(
        Comparison(
            "Fleet latency, publish -> WebSocket client (3 nodes -> Redis -> 2 replicas)",
            p99,
            [
                Figure(
                    "publish -> WebSocket client: p50",
                    "ms",
                    [_ms(r.client, 50) for r in results],
                    False,
                ),
                Figure(
                    "publish -> WebSocket client: max",
                    "ms",
                    [_ms(r.client, 100) for r in results],
                    False,
                ),
                Figure(
                    "events seen per client per node",
                    "events",
                    [len(r.client) / (2 * clients * len(NODES)) for r in results],
                ),
            ],
            input=shape,
            ratios=False,
        )
    )
    for node, _where in NODES:
        values = [r.per_node.get(node, []) for r in results]
        family.comparisons.append(
            Comparison(
                f"Fleet latency from node {node}",
                Figure(f"{node}: p99", "ms", [_ms(v, 99) for v in values], False),
                [Figure(f"{node}: p50", "ms", [_ms(v, 50) for v in values], False)],
                ratios=False,
            )
        )
    if any(r.page_ws for r in results):
        family.comparisons.append(
            Comparison(
                "Fleet latency to a headless Chromium page (second replica)",
                Figure(
                    "publish -> page's WebSocket handler: p99",
                    "ms",
                    [_ms(r.page_ws, 99) for r in results if r.page_ws],
                    False,
                ),
                [
                    Figure(
                        "publish -> page: p50",
                        "ms",
                        [_ms(r.page_ws, 50) for r in results if r.page_ws],
                        False,
                    ),
                    Figure(
                        "tqdm redraw -> text in the page's DOM: p99",
                        "ms",
                        [_ms(r.page_dom, 99) for r in results if r.page_dom],
                        False,
                    ),
                    Figure(
                        "tqdm redraw -> DOM: p50",
                        "ms",
                        [_ms(r.page_dom, 50) for r in results if r.page_dom],
                        False,
                    ),
                ],
                ratios=False,
            )
        )
    family.targets.append(
        Target("fleet latency p99 under 100 ms (publish -> client)", p99.median, 100.0, "ms", False)
    )
    family.targets.append(
        Target(
            "every client saw every node's final state",
            float(sum(r.missing_ends for r in results)),
            0.0,
            "missing",
            False,
        )
    )
    for r in results:
        family.notes.extend(r.notes)
    family.seconds = time.perf_counter() - started
    return family


if __name__ == "__main__":  # one run, printed: python -m bench.fleet_latency [local-only]
    url, bed_state = _bed()
    if len(sys.argv) > 1 and sys.argv[1] == "local-only":  # no engines: three local nodes
        chosen = (("local-a", "local"), ("local-b", "local"), ("local-c", "local"))
    else:
        chosen = NODES
    one = measure(url, bed_state, samples=100, clients=4, nodes=chosen)
    print(
        json.dumps(
            {
                "client_p50_ms": _ms(one.client, 50),
                "client_p99_ms": _ms(one.client, 99),
                "client_max_ms": _ms(one.client, 100),
                "client_samples": len(one.client),
                "per_node_p99_ms": {n: _ms(v, 99) for n, v in one.per_node.items()},
                "page_ws_p50_ms": _ms(one.page_ws, 50),
                "page_ws_p99_ms": _ms(one.page_ws, 99),
                "page_dom_p50_ms": _ms(one.page_dom, 50),
                "page_dom_p99_ms": _ms(one.page_dom, 99),
                "page_samples": [len(one.page_ws), len(one.page_dom)],
                "missing_ends": one.missing_ends,
                "notes": one.notes,
            },
            indent=1,
        )
    )
