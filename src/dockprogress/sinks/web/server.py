"""The dashboard server: the page, a small JSON API and the ``/ws`` event stream.

:func:`create_app` builds the Starlette application around an :class:`EventHub`;
:func:`run_server` serves it with uvicorn (blocking); :class:`ServerThread` serves it from a
background thread, for an application (or ``make demo``) that runs trackers in the same
process.

Routes::

    GET  /                        the page (static, no build step)
    GET  /static/...              its script and style
    GET  /api/tasks               every task the hub remembers (JSON array of ENTRY, see hub)
    POST /api/publish             events from other dockprogress processes (JSON array or lines)
    POST /api/pull                {"image": ..., "platform"?: ...}             -> 202 {"task": id}
    POST /api/exec                {"container": ..., "cmd": [...], "bar"?: ...} -> 202 {"task": id}
    POST /api/logs                {"container": ..., "milestones_path" | "milestones": [...]}
    POST /api/build               {"path": ..., "tags"?: [...], "dockerfile"?, "build_args"?: {},
                                   "target"?, "network"?, "platform"?, "no_cache"?, "pull"?,
                                   "builder"?: "auto"|"classic"|"buildkit"}  -> 202 {"task": id}
    POST /api/push                {"images": [...]} (or "image": ...)         -> 202 {"task": id}
    POST /api/tasks/{id}/cancel   cancel a task this server started            -> 202
    WS   /ws                      snapshot, then coalesced updates, heartbeats (see hub)

Security policy:

* Bind to loopback by default; any other address needs a token (:func:`resolve_token`
  generates one when none is given).
* When a token is set, every ``/api`` route and ``/ws`` require it (``Authorization: Bearer``,
  ``X-DockProgress-Token``, or ``?token=`` for the WebSocket, which browsers cannot give
  headers). The page itself is public: it holds no data. Reading needs the token too, because
  task text comes from containers and may be private.
* Without a token (loopback only) the ``Host`` header must name a loopback host, which stops
  DNS-rebinding pages from talking to the server through a name of their own.
* A browser's ``Origin`` must be the server's own (same host and port as ``Host``) for
  ``/ws`` and for every POST; a request without ``Origin`` is a non-browser client, allowed
  under the token rule above. POSTs must say ``Content-Type: application/json`` (or
  ``application/x-ndjson`` for publish), which a cross-site form cannot send.
* Bodies are capped (``max_body``), WebSocket messages too (uvicorn ``ws_max_size``).
* The page renders every text with ``textContent`` and is served with a strict
  Content-Security-Policy (no inline script).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import secrets
import sys
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from dockprogress.errors import UsageError
from dockprogress.events import TaskEvent
from dockprogress.sinks.base import Sink
from dockprogress.sinks.web import DEFAULT_HOST, DEFAULT_PORT
from dockprogress.sinks.web.hub import EventHub, TaskLimitError
from dockprogress.sinks.web.runner import TaskRunner

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ServerThread",
    "create_app",
    "is_loopback",
    "resolve_token",
    "run_server",
]

STATIC_DIR: Final = Path(__file__).with_name("static")
#: Largest request body accepted (publish batches included).
MAX_BODY: Final = 1 << 20
#: Largest WebSocket message accepted from a client (the page only sends tiny pings).
MAX_WS_MESSAGE: Final = 4096
#: Most events one publish request may carry.
MAX_EVENTS_PER_PUBLISH: Final = 10_000

_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host.strip("[]").lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token to enforce for a bind to ``host``, and whether it was generated here.

    Loopback binds may run without one; any other bind gets ``token`` or a fresh random one.
    """
    if token == "":
        raise UsageError("--token must not be empty")
    if token is not None or is_loopback(host):
        return token, False
    return secrets.token_urlsafe(24), True


def create_app(
    hub: EventHub | None = None,
    token: str | None = None,
    *,
    runner: TaskRunner | None = None,
    allowed_hosts: frozenset[str] = frozenset(),
    max_body: int = MAX_BODY,
    publish_to: Sink | None = None,
) -> Starlette:
    """The dashboard application around ``hub`` (a new one when ``None``).

    ``token``: when set, required by ``/api/*`` and ``/ws``. ``allowed_hosts``: host names,
    besides loopback ones, that a tokenless server answers to (``Host`` header check).
    ``runner`` starts and cancels the server's own tasks (one is made on ``hub`` if ``None``).
    ``publish_to``: where ``POST /api/publish`` events go (the bus's publisher when the hub
    is fed from a bus; the hub itself by default).
    The hub, runner and token are kept on ``app.state``.
    """
    hub = hub if hub is not None else EventHub()
    publish_event = (publish_to if publish_to is not None else hub).send
    runner = runner if runner is not None else TaskRunner(hub, sink=publish_to)
    guard = _Guard(token, allowed_hosts)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=_page_headers())

    async def list_tasks(request: Request) -> Response:
        guard.require_token(request)
        return Response(hub.entries_json(), media_type="application/json")

    async def publish(request: Request) -> Response:
        guard.require_post(request, ("application/json", "application/x-ndjson"))
        events = _parse_events(await _read_body(request, max_body))
        refused: list[str] = []
        for event in events:
            try:
                publish_event(event)
            except TaskLimitError as exc:
                refused.append(str(exc))
        if refused:
            # Every other event was taken; the sender learns why these were not.
            return JSONResponse(
                {
                    "accepted": len(events) - len(refused),
                    "refused": len(refused),
                    "reason": refused[0],
                },
                status_code=429,
            )
        return JSONResponse({"accepted": len(events)})

    async def start_pull(request: Request) -> Response:
        body = await _json_body(request, guard, max_body)
        image = _string(body, "image")
        platform = _optional_string(body, "platform")
        return await _started(runner.start_pull(image, platform=platform))

    async def start_exec(request: Request) -> Response:
        body = await _json_body(request, guard, max_body)
        container = _string(body, "container")
        cmd = body.get("cmd")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise HTTPException(400, "cmd must be a non-empty list of strings")
        bar = _optional_string(body, "bar")
        return await _started(runner.start_exec(container, cmd, bar=bar))

    async def start_logs(request: Request) -> Response:
        body = await _json_body(request, guard, max_body)
        container = _string(body, "container")
        path = _optional_string(body, "milestones_path")
        milestones = body.get("milestones")
        if (path is None) == (milestones is None):
            raise HTTPException(400, "give exactly one of milestones_path or milestones")
        if milestones is not None and not isinstance(milestones, list):
            raise HTTPException(400, "milestones must be a list of objects")
        return await _started(
            runner.start_logs(container, milestones_path=path, milestones=milestones)
        )

    async def start_build(request: Request) -> Response:
        body = await _json_body(request, guard, max_body)
        path = _string(body, "path")
        tags = _string_list(body, "tags")
        build_args = body.get("build_args") or {}
        if not isinstance(build_args, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in build_args.items()
        ):
            raise HTTPException(400, "build_args must be an object of strings")
        flags = {}
        for key in ("no_cache", "pull"):
            value = body.get(key, False)
            if not isinstance(value, bool):
                raise HTTPException(400, f"{key} must be true or false")
            flags[key] = value
        return await _started(
            runner.start_build(
                path,
                tags=tags,
                dockerfile=_optional_string(body, "dockerfile"),
                build_args=build_args,
                target=_optional_string(body, "target"),
                network=_optional_string(body, "network"),
                platform=_optional_string(body, "platform"),
                builder=_optional_string(body, "builder") or "auto",
                **flags,
            )
        )

    async def start_push(request: Request) -> Response:
        body = await _json_body(request, guard, max_body)
        if ("image" in body) == ("images" in body):
            raise HTTPException(400, "give exactly one of image or images")
        images = [_string(body, "image")] if "image" in body else _string_list(body, "images")
        if not images:
            raise HTTPException(400, "images must be a non-empty list of strings")
        return await _started(runner.start_push(images))

    async def cancel(request: Request) -> Response:
        guard.require_post(request, ("application/json",))
        task_id = request.path_params["task_id"]
        outcome = runner.cancel(task_id)
        if outcome == "unknown":
            raise HTTPException(404, f"no task {task_id!r} was started by this server")
        if outcome == "ended":
            raise HTTPException(409, f"task {task_id!r} has already ended")
        return JSONResponse({"task": task_id, "cancelling": True}, status_code=202)

    async def websocket(ws: WebSocket) -> None:
        if not guard.websocket_allowed(ws):
            await ws.close(code=1008)  # before accept: uvicorn answers HTTP 403
            return
        await ws.accept()
        await _serve_subscriber(ws, hub)

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/tasks", list_tasks),
            Route("/api/publish", publish, methods=["POST"]),
            Route("/api/pull", start_pull, methods=["POST"]),
            Route("/api/exec", start_exec, methods=["POST"]),
            Route("/api/logs", start_logs, methods=["POST"]),
            Route("/api/build", start_build, methods=["POST"]),
            Route("/api/push", start_push, methods=["POST"]),
            Route("/api/tasks/{task_id:path}/cancel", cancel, methods=["POST"]),
            WebSocketRoute("/ws", websocket),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
    )
    app.state.hub = hub
    app.state.runner = runner
    app.state.token = token
    return _HostCheck(app, guard)  # type: ignore[return-value]


# --------------------------------------------------------------------------- guard


class _Guard:
    """Token, Host and Origin checks, in one place."""

    def __init__(self, token: str | None, allowed_hosts: frozenset[str]) -> None:
        self.token = token
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)

    def host_allowed(self, host_header: str) -> bool:
        if self.token is not None:
            return True  # the token protects a non-loopback server
        hostname = urlsplit(f"//{host_header}").hostname or ""
        return is_loopback(hostname) or hostname.lower() in self.allowed_hosts

    def token_ok(self, conn: HTTPConnection) -> bool:
        if self.token is None:
            return True
        given = conn.headers.get("x-dockprogress-token") or conn.query_params.get("token") or ""
        auth = conn.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return secrets.compare_digest(given.encode(), self.token.encode())

    def require_token(self, conn: HTTPConnection) -> None:
        if not self.token_ok(conn):
            raise HTTPException(401, "a valid token is required", {"WWW-Authenticate": "Bearer"})

    def same_origin(self, conn: HTTPConnection) -> bool:
        origin = conn.headers.get("origin")
        if origin is None:
            return True  # not a browser; the token rule decides
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == conn.headers.get("host")

    def require_post(self, request: Request, content_types: tuple[str, ...]) -> None:
        if not self.same_origin(request):
            raise HTTPException(403, "cross-origin request refused")
        self.require_token(request)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in content_types:
            raise HTTPException(415, f"Content-Type must be {' or '.join(content_types)}")

    def websocket_allowed(self, ws: WebSocket) -> bool:
        return self.same_origin(ws) and self.token_ok(ws)


class _HostCheck:
    """ASGI middleware refusing requests whose ``Host`` the guard does not accept."""

    def __init__(self, app: Starlette, guard: _Guard) -> None:
        self.app = app
        self.guard = guard
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if not self.guard.host_allowed(host):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                response = Response("host not allowed", status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ----------------------------------------------------------------------- helpers


def _page_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request, guard: _Guard, limit: int) -> dict[str, Any]:
    guard.require_post(request, ("application/json",))
    try:
        body = json.loads(await _read_body(request, limit))
    except ValueError as exc:
        raise HTTPException(400, f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "body must be a JSON object")
    return body


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise HTTPException(400, f"{key} must be a non-empty string")
    return value


def _optional_string(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _string(body, key)


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise HTTPException(400, f"{key} must be a list of non-empty strings")
    return value


def _parse_events(body: bytes) -> list[TaskEvent]:
    """A JSON array of event objects, or JSON lines of them; all valid or none taken."""
    try:
        text = body.decode("utf-8").strip()
        if text.startswith("["):
            items = json.loads(text)
            if not isinstance(items, list):
                raise ValueError("not a list")
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise HTTPException(400, f"body is neither a JSON array nor JSON lines: {exc}") from exc
    if len(items) > MAX_EVENTS_PER_PUBLISH:
        raise HTTPException(413, f"more than {MAX_EVENTS_PER_PUBLISH} events in one request")
    events = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise TypeError("not an object")
            events.append(TaskEvent.from_dict(item))
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(400, f"event {index} is not a task event: {exc!r}") from exc
    return events


async def _started(start: Awaitable[str]) -> Response:
    try:
        task_id = await start
    except UsageError as exc:
        raise HTTPException(400, str(exc)) from exc
    except ImportError as exc:  # the adapter is not part of this build
        raise HTTPException(501, f"not available: {exc}") from exc
    return JSONResponse({"task": task_id}, status_code=202)


async def _serve_subscriber(ws: WebSocket, hub: EventHub) -> None:
    """Send the snapshot, then updates and heartbeats, until the client goes away.

    The sender runs as its own task, so a client that stops reading only blocks its own
    sender (uvicorn waits for the socket to drain) while its mailbox coalesces; the receive
    loop notices the disconnect and cleans up.
    """
    async with hub.subscribe() as subscription:

        async def send_loop() -> None:
            with contextlib.suppress(Exception):  # any send failure means the client is gone
                await ws.send_text(subscription.snapshot)
                while True:
                    message = await subscription.get(timeout=hub.heartbeat)
                    if message is None:
                        message = f'{{"type":"heartbeat","ts":{time.time():.3f}}}'
                    await ws.send_text(message)

        sender = asyncio.create_task(send_loop())
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except Exception:
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender


# ------------------------------------------------------------------------ running


def _uvicorn_config(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws_max_size=MAX_WS_MESSAGE,
        lifespan="off",
        server_header=False,
    )


def run_server(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    hub: EventHub | None = None,
    *,
    log_level: str = "warning",
    runner: TaskRunner | None = None,
    bus: str | None = None,
    node: str | None = None,
    node_timeout: float | None = None,
) -> None:
    """Serve the dashboard until interrupted (blocking). A non-loopback ``host`` needs a token.

    ``runner`` starts the page's own tasks (default: one on the hub, default engine).
    ``bus``: a Redis bus URL; the hub is then fed from the bus (every node's tasks), and the
    server's own tasks and ``/api/publish`` events are published to it as ``node``.
    Raises :class:`UsageError` when ``host`` is not loopback and ``token`` is ``None``
    (use :func:`resolve_token` first to generate one), ``BusError`` when Redis refuses the
    credentials.
    """
    import uvicorn

    from dockprogress.bus import open_bus, resolve_node

    if token is None and not is_loopback(host):
        raise UsageError(f"binding to {host} needs a token (--token or DOCKPROGRESS_TOKEN)")
    hub = hub if hub is not None else EventHub()
    node = resolve_node(node)
    publisher: Sink | None = None
    feed = None
    if bus:
        chosen = open_bus(bus)
        if node_timeout is not None and hasattr(chosen, "node_timeout"):
            chosen.node_timeout = node_timeout
        feed = chosen.feed(hub).start()
        publisher = chosen.publisher(node)
    app = create_app(hub, token, runner=runner, publish_to=publisher)
    own: TaskRunner = app.state.runner
    own.node = node
    if publisher is not None:
        own.sink = publisher  # the page's own tasks reach every replica through the bus
    try:
        uvicorn.Server(_uvicorn_config(app, host, port, log_level)).run()
    finally:
        own.cancel_all()
        if publisher is not None:
            publisher.close()
        if feed is not None:
            feed.close()


class ServerThread:
    """The dashboard served from a background thread; a context manager.

    >>> with ServerThread(hub=hub, port=8765) as server:   # doctest: +SKIP
    ...     print(server.url)

    ``port=0`` picks a free port (read it back from :attr:`port`).
    """

    def __init__(
        self,
        hub: EventHub | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
        log_level: str = "warning",
    ) -> None:
        import uvicorn

        if token is None and not is_loopback(host):
            raise UsageError(f"binding to {host} needs a token")
        self.hub = hub if hub is not None else EventHub()
        self.host = host
        self.token = token
        self.app = create_app(self.hub, token)
        self._server = uvicorn.Server(_uvicorn_config(self.app, host, port, log_level))
        self._thread = threading.Thread(target=self._server.run, name="dockprogress-web")
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def runner(self) -> TaskRunner:
        runner: TaskRunner = self.app.state.runner
        return runner

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                self.port = sock.getsockname()[1]
                break
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; the server's own tasks are cancelled first."""
        self.runner.cancel_all()
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            print("dockprogress: dashboard server did not stop in time", file=sys.stderr)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
