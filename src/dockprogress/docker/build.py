"""The build adapter: ``docker build`` as one task's events, on the classic builder or BuildKit.

:func:`iter_build` does the work; :func:`build` (callback form) and :func:`abuild`
(``async for``) wrap it. Before anything runs, the Dockerfile is parsed
(:mod:`dockprogress.core.dockerfile`) for the planned steps, and the calibration profile of
earlier builds of the same Dockerfile, target and builder is loaded
(:mod:`dockprogress.profiles`); a successful build adds its run to it.

The builder is chosen as the docker CLI chooses it: ``DOCKER_BUILDKIT=0`` means the classic
builder; otherwise BuildKit through buildx when the ``docker-buildx`` plugin is found
(``DOCKPROGRESS_BUILDX``, then the CLI's plugin folders, then ``PATH``), else the classic
builder. ``builder="classic"|"buildkit"`` forces one.

* **classic**: the context is tarred (``.dockerignore`` honoured, as docker-py does) and
  streamed to ``POST /build`` by a worker thread, its bytes counted as the upload; the JSON
  stream goes to :class:`~dockprogress.core.build.ClassicBuildTracker`. For a local engine,
  a context without ``.dockerignore`` whose Dockerfile is inside it, and a docker config
  without credentials, the standard library packs and sends it
  (:class:`~dockprogress.docker.lean.LeanEngine`, :func:`pack_context`, the same tar as
  docker-py's); otherwise docker-py does. Neither builder imports docker-py then.
* **buildkit**: ``docker-buildx build --progress rawjson`` runs standalone against the
  engine the docker CLI would use (``host=``/``context=`` passed on as ``DOCKER_HOST`` /
  ``DOCKER_CONTEXT``; otherwise buildx resolves it as the CLI does); its standard error goes through
  :class:`~dockprogress.core.buildkit.RawJsonDecoder` into
  :class:`~dockprogress.core.buildkit.BuildKitTracker`, and its exit status ends the task.

A failed build ends the task in ``error`` (step, exit status, last lines) and then raises
:class:`~dockprogress.errors.BuildError`. ``KeyboardInterrupt``, closing the generator or
:meth:`BuildSession.cancel` (from any thread) ends it ``cancelled`` and stops the build: the
classic builder stops when its client hangs up; buildx gets ``SIGINT`` (as on Ctrl-C), then
``SIGKILL`` after a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from dockprogress.core.build import ClassicBuildTracker
from dockprogress.core.buildkit import BuildKitTracker, RawJsonDecoder
from dockprogress.core.dockerfile import parse_dockerfile
from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.steps import profile_name
from dockprogress.docker.endpoint import resolve
from dockprogress.errors import BuildError, DockProgressError, EngineError, UsageError
from dockprogress.events import TaskEvent

if TYPE_CHECKING:
    import docker

    from dockprogress.docker.lean import LeanEngine

__all__ = ["BuildSession", "abuild", "build", "find_buildx", "iter_build"]

BUILDERS = ("auto", "classic", "buildkit")
_PLUGIN_DIRS = (
    "~/.docker/cli-plugins",
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
_TICK = 0.25


def find_buildx() -> str | None:
    """The ``docker-buildx`` binary: ``DOCKPROGRESS_BUILDX``, the CLI's plugin dirs, PATH."""
    given = os.environ.get("DOCKPROGRESS_BUILDX")
    if given:
        return given if os.access(given, os.X_OK) else None
    for folder in _PLUGIN_DIRS:
        path = Path(folder).expanduser() / "docker-buildx"
        if os.access(path, os.X_OK):
            return str(path)
    return shutil.which("docker-buildx")


def choose_builder(builder: str = "auto") -> tuple[str, str | None]:
    """``(kind, buildx path)`` as the docker CLI would choose (see the module doc)."""
    if builder not in BUILDERS:
        raise UsageError(f"unknown builder {builder!r}: choose one of {', '.join(BUILDERS)}")
    if builder == "classic" or (builder == "auto" and os.environ.get("DOCKER_BUILDKIT") == "0"):
        return "classic", None
    buildx = find_buildx()
    if buildx is None and builder == "buildkit":
        raise UsageError(
            "BuildKit needs the docker-buildx plugin: install it (docker-buildx package) or set "
            "DOCKPROGRESS_BUILDX to its path; or build with --builder classic"
        )
    return ("buildkit", buildx) if buildx else ("classic", None)


class _Counting:
    """A file whose reads are reported (the context upload's bytes)."""

    def __init__(self, raw: IO[bytes], report: Callable[[int], None], stop: threading.Event):
        self._raw = raw
        self._report = report
        self._stop = stop
        self.sent = 0

    def read(self, size: int = -1) -> bytes:
        if self._stop.is_set():
            raise OSError("build cancelled")
        data = self._raw.read(size if size and size > 0 else 1 << 16)
        self.sent += len(data)
        self._report(self.sent)
        return data


class _Stream(Protocol):
    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class _Classic(Protocol):
    """What a classic build asks of the engine's client (docker-py's, or the lean one)."""

    def pack(self, fileobj: IO[bytes]) -> str | None:
        """Write the context's tar to ``fileobj``; the ``dockerfile`` parameter for it."""
        ...

    def post(self, reader: _Counting, length: int, dockerfile: str | None) -> _Stream: ...
    def tag(self, image: str, repository: str, tag: str) -> None: ...


def pack_context(root: Path, fileobj: IO[bytes]) -> None:
    """The context as docker-py's ``utils.tar`` packs it when there is no ``.dockerignore``:
    every path under ``root`` (directories not followed through symlinks), sorted, each
    with its own metadata, files with their bytes."""
    names: list[str] = []
    for folder, dirs, files in os.walk(root):
        relative = os.path.relpath(folder, root)
        names.extend(name if relative == "." else os.path.join(relative, name) for name in dirs)
        names.extend(name if relative == "." else os.path.join(relative, name) for name in files)
    with tarfile.open(mode="w", fileobj=fileobj) as tar:
        for name in sorted(names):
            full = os.path.join(root, name)
            info = tar.gettarinfo(full, arcname=name)
            if info is None:  # a socket: not part of a context
                continue
            if info.mtime < 0 or info.mtime > 8**11 - 1:  # (as docker-py: bpo-32713)
                info.mtime = int(info.mtime)
            if info.isfile():
                try:
                    with open(full, "rb") as data:
                        tar.addfile(info, data)
                except OSError as exc:
                    raise BuildError(f"cannot read a file of the build context: {exc}") from exc
            else:
                tar.addfile(info)


class _LeanClassic:
    """The classic builder through :class:`~dockprogress.docker.lean.LeanEngine`: for a
    local engine, a context without ``.dockerignore`` whose Dockerfile is inside it, and a
    docker config without credentials (docker-py would send them all)."""

    def __init__(self, engine: LeanEngine, session: BuildSession) -> None:
        self.engine = engine
        self.session = session

    def pack(self, fileobj: IO[bytes]) -> str | None:
        pack_context(self.session.path, fileobj)
        return os.path.relpath(self.session.dockerfile, self.session.path)

    def post(self, reader: _Counting, length: int, dockerfile: str | None) -> _Stream:
        from dockprogress.docker.lean import EngineRefused

        try:
            return self.engine.build(self.session.build_params(dockerfile), reader, length)
        except EngineRefused as exc:
            raise EngineError(f"could not build on the Docker engine: {exc.message}") from exc

    def tag(self, image: str, repository: str, tag: str) -> None:
        from dockprogress.docker.lean import EngineRefused

        try:
            self.engine.tag(image, repository, tag)
        except EngineRefused as exc:
            raise EngineError(
                f"could not tag {image} as {repository}:{tag}: {exc.message}"
            ) from exc


class _RawStream:
    """A streamed ``requests`` response's raw chunks; :meth:`close` hangs up."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        chunks: Iterator[bytes] = self._response.raw.stream(1 << 16, decode_content=False)
        return chunks

    def close(self) -> None:
        from dockprogress.docker.client import hang_up

        hang_up(self._response)


class _DockerPyClassic:
    """The classic builder through docker-py (remote engines, ``.dockerignore`` rules, a
    Dockerfile outside the context, registry credentials)."""

    def __init__(self, client: docker.DockerClient, session: BuildSession) -> None:
        self.client = client
        self.session = session

    def pack(self, fileobj: IO[bytes]) -> str | None:
        import docker.utils

        session = self.session
        relative = os.path.relpath(session.dockerfile, session.path)
        exclude: list[str] | None = None
        ignore = session.path / ".dockerignore"
        if ignore.exists():
            lines = [line.strip() for line in ignore.read_text().splitlines()]
            exclude = [line for line in lines if line and not line.startswith("#")]
        spec: tuple[str | None, str | None] = (
            (f".dockerfile.{os.getpid()}", session.dockerfile.read_text())
            if relative.startswith("..")
            else (relative, None)
        )
        docker.utils.tar(str(session.path), exclude=exclude, dockerfile=spec, fileobj=fileobj)
        return spec[0]

    def post(self, reader: _Counting, length: int, dockerfile: str | None) -> _Stream:
        """``POST /build`` as docker-py's ``APIClient.build`` sends it, keeping the response
        (docker-py hides it in a generator that another thread cannot close)."""
        api = self.client.api
        headers = {"Content-Type": "application/tar"}
        api._set_auth_headers(headers)  # registry credentials for FROM pulls, as docker-py
        response = api._post(
            api._url("/build"),
            data=reader,
            params=self.session.build_params(dockerfile),
            headers=headers,
            stream=True,
            timeout=None,
        )
        api._raise_for_status(response)
        return _RawStream(response)

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.client.api.tag(image, repository, tag)


class BuildSession:
    """One build; iterate it once for its events; :meth:`cancel` from any thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        tags: Sequence[str] = (),
        dockerfile: str | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        network: str | None = None,
        platform: str | None = None,
        no_cache: bool = False,
        pull: bool = False,
        builder: str = "auto",
        calibrate: bool = True,
        priority: int = 0,
        host: str | None = None,
        context: str | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise UsageError(f"build context {str(path)!r} is not a directory")
        self.dockerfile = Path(dockerfile) if dockerfile else self.path / "Dockerfile"
        if not self.dockerfile.is_absolute() and dockerfile:
            self.dockerfile = self.path / dockerfile
        try:
            text = self.dockerfile.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the Dockerfile {self.dockerfile}: {exc}") from exc
        self.plan = parse_dockerfile(text)
        self.plan.stage_index(target)  # an unknown target is a usage error now
        self.tags = list(tags)
        self.build_args = dict(build_args or {})
        self.target, self.network, self.platform = target, network, platform
        self.no_cache, self.pull = no_cache, pull
        self.kind, self.buildx = choose_builder(builder)
        self.host, self.context = host, context
        self._endpoint = resolve(host, context)  # a bad -H or --context is a usage error now
        self.profile_name = profile_name(self.dockerfile, target, self.kind) if calibrate else None
        profile = None
        if self.profile_name is not None:
            from dockprogress.profiles import load_profile

            profile = load_profile(self.profile_name)
        name = self.tags[0] if self.tags else str(self.path)
        steps = [i.text for i in self.plan.steps(target, builder=self.kind)]
        self.tracker: ClassicBuildTracker | BuildKitTracker
        if self.kind == "classic":
            self.tracker = ClassicBuildTracker(
                name, steps=steps, profile=profile, priority=priority
            )
        else:
            order = {s.name: s.index for s in self.plan.stages if s.name}
            order.update({f"stage-{s.index}": s.index for s in self.plan.stages})
            self.tracker = BuildKitTracker(
                name, steps=steps, stage_order=order, profile=profile, priority=priority
            )
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: _Stream | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ driving

    def __iter__(self) -> Iterator[TaskEvent]:
        tracker = self.tracker
        worker = threading.Thread(
            target=self._classic if self.kind == "classic" else self._buildkit,
            name="dockprogress-build",
            daemon=True,
        )
        try:
            with self._lock:
                first = tracker.begin()
            if first is not None:
                yield first
            worker.start()
            while not tracker.ended:
                try:
                    kind, payload = self._queue.get(timeout=_TICK)
                except queue.Empty:
                    with self._lock:
                        event = tracker.tick()
                    if event is not None:
                        yield event
                    continue
                with self._lock:
                    events = self._apply(kind, payload)
                yield from (e for e in events if e is not None)
        except KeyboardInterrupt:
            yield from self.cancel("cancelled by Ctrl-C")
            raise
        except GeneratorExit:  # the consumer left: stop the build, yield nothing more
            self.cancel("cancelled")
            raise
        finally:
            self._stop_build()
        if tracker.task.state.value == "done":
            self._record()
        elif tracker.error is not None:
            raise tracker.error

    def cancel(self, reason: str = "cancelled") -> list[TaskEvent]:
        """End the task ``cancelled`` and stop the build (any thread)."""
        with self._lock:
            event = self.tracker.cancel(reason)
        self._stop_build()
        return [event] if event is not None else []

    def _apply(self, kind: str, payload: Any) -> list[TaskEvent | None]:
        tracker = self.tracker
        if kind == "messages":
            return [tracker.feed(m) for m in payload]
        if kind == "upload" and isinstance(tracker, ClassicBuildTracker):
            return [tracker.upload(*payload)]
        if kind == "eof":
            if isinstance(tracker, BuildKitTracker):
                return [tracker.feed_eof(*payload)]
            return [tracker.feed_eof()]
        if kind == "failure":
            if self._stop.is_set():
                return [tracker.cancel("cancelled")]
            return [tracker.fail(str(payload))]
        return []

    def _record(self) -> None:
        record = self.tracker.record()
        if record is None or self.profile_name is None:
            return
        from dockprogress.profiles import record_run

        # A cache that cannot be written costs calibration, not the build.
        with contextlib.suppress(OSError):
            record_run(self.profile_name, record)

    def _stop_build(self) -> None:
        self._stop.set()
        stream, self._response = self._response, None
        if stream is not None:
            stream.close()  # the classic builder stops when its client's connection ends
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # ------------------------------------------------------------------ workers

    def _classic(self) -> None:
        put = self._queue.put
        try:
            if self._lean_classic():
                from dockprogress.docker.lean import LeanEngine

                engine = LeanEngine.open(self._endpoint, timeout=3600)
                try:
                    with engine.errors("build on the Docker engine"):
                        self._classic_with(_LeanClassic(engine, self))
                finally:
                    engine.close()
                return
            # docker-py here only: a BuildKit build runs buildx and never imports it.
            from dockprogress.docker.client import connect, translate_errors

            with translate_errors("build on the Docker engine", self._endpoint):
                client = connect(endpoint=self._endpoint, timeout=3600)
                try:
                    self._classic_with(_DockerPyClassic(client, self))
                finally:
                    client.close()
        except Exception as exc:  # handed to the iterating thread; after a cancel, expected
            if not self._stop.is_set():
                put(("failure", exc))

    def _lean_classic(self) -> bool:
        """Whether the standard library can send this build (see :class:`_LeanClassic`)."""
        from dockprogress.docker.lean import has_credentials

        inside = not os.path.relpath(self.dockerfile, self.path).startswith("..")
        return (
            self._endpoint.local
            and inside
            and not (self.path / ".dockerignore").exists()
            and not has_credentials()
        )

    def build_params(self, dockerfile: str | None) -> dict[str, str]:
        """The query of ``POST /build``, as docker-py's ``APIClient.build`` sends it."""
        params = {
            "t": self.tags[0] if self.tags else None,
            "nocache": self.no_cache,
            "rm": True,
            "forcerm": True,
            "pull": self.pull,
            "dockerfile": dockerfile,
            "buildargs": json.dumps(self.build_args) if self.build_args else None,
            "target": self.target,
            "networkmode": self.network,
            "platform": self.platform,
        }
        return {
            key: ("1" if value else "0") if isinstance(value, bool) else value
            for key, value in params.items()
            if value is not None and value != ""
        }

    def _classic_with(self, engine: _Classic) -> None:
        put = self._queue.put
        with tempfile.TemporaryFile() as raw:
            dockerfile = engine.pack(raw)
            total = raw.seek(0, os.SEEK_END)
            raw.seek(0)
            put(("upload", (0, total)))
            last = [0.0]

            def report(sent: int) -> None:
                now = time.monotonic()
                if sent >= total or now - last[0] >= 0.1:
                    last[0] = now
                    put(("upload", (sent, total)))

            reader = _Counting(raw, report, self._stop)
            stream = engine.post(reader, total, dockerfile)
            self._response = stream  # closing it (cancel) stops the read and the build
            if self._stop.is_set():  # cancelled while the engine was answering
                self._stop_build()
                return
            decoder = JsonLinesDecoder()
            built: str | None = None  # the last image id of the stream, for the extra tags
            for chunk in stream:
                if self._stop.is_set():
                    return
                messages = decoder.decode(chunk)
                if messages:
                    built = _built_image(messages, built)
                    put(("messages", messages))
            if self._stop.is_set():
                return
            messages = decoder.flush()
            built = _built_image(messages, built)
            put(("messages", messages))
        # The engine's /build takes one tag per parameter in docker-py: the others are added
        # to the built image, as `docker build -t a -t b` does.
        if built is not None:
            for extra in self.tags[1:]:
                name = extra.split("/")[-1]
                repo, _, tag = extra.rpartition(":") if ":" in name else (extra, "", "latest")
                engine.tag(built, repo, tag)
        put(("eof", ()))

    def _buildkit(self) -> None:
        try:
            self._run_buildx()
        except Exception as exc:  # handed to the iterating thread; after a cancel, expected
            if not self._stop.is_set():
                self._queue.put(("failure", exc))

    def _run_buildx(self) -> None:
        put = self._queue.put
        assert self.buildx is not None
        argv = [self.buildx, "build", "--progress", "rawjson"]
        for tag in self.tags:
            argv += ["--tag", tag]
        argv += ["--file", str(self.dockerfile)]
        for key, value in self.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        options: tuple[tuple[str, str | None], ...] = (
            ("--target", self.target),
            ("--network", self.network),
            ("--platform", self.platform),
        )
        for flag, option in options:
            if option:
                argv += [flag, option]
        argv += ["--no-cache"] if self.no_cache else []
        argv += ["--pull"] if self.pull else []
        argv.append(str(self.path))
        # buildx finds the engine as the docker CLI does: only -H / --context are passed on.
        env = dict(os.environ)
        if self.context:
            env.pop("DOCKER_HOST", None)
            env["DOCKER_CONTEXT"] = self.context
        elif self.host:
            env["DOCKER_HOST"] = self.host
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            put(("failure", BuildError(f"cannot run {self.buildx}: {exc}")))
            return
        self._process = process
        assert process.stderr is not None
        decoder = RawJsonDecoder()
        try:
            while chunk := os.read(process.stderr.fileno(), 1 << 16):
                objects = decoder.decode(chunk)
                if objects:
                    put(("messages", objects))
            put(("messages", decoder.flush()))
        except DockProgressError as exc:
            put(("failure", exc))
            return
        finally:
            code = process.wait()
            process.stderr.close()
        put(("eof", (code, decoder.junk)))


_FAILED = ""  # a stream that reported an error built nothing to tag


def _built_image(messages: list[dict[str, Any]], found: str | None) -> str | None:
    """The last image id of a classic build stream so far (its ``aux`` IDs); ``""`` once
    the stream reported an error."""
    for message in messages:
        if found == _FAILED or "errorDetail" in message or "error" in message:
            return _FAILED
        aux = message.get("aux")
        if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
            found = aux["ID"]
    return found


def iter_build(path: str | os.PathLike[str], **options: Any) -> Iterator[TaskEvent]:
    """Build the context at ``path``, yielding the build task's events.

    Options: ``tags``, ``dockerfile``, ``build_args``, ``target``, ``network``, ``platform``,
    ``no_cache``, ``pull``, ``builder`` (``auto``/``classic``/``buildkit``), ``calibrate``.
    Raises :class:`BuildError` after the ``error`` event of a failed build.
    """
    yield from BuildSession(path, **options)


def build(
    path: str | os.PathLike[str],
    *,
    on_event: Callable[[TaskEvent], object] | None = None,
    **options: Any,
) -> TaskEvent:
    """Build and call ``on_event`` for each event; return the final event."""
    final: TaskEvent | None = None
    for event in iter_build(path, **options):
        if on_event is not None:
            on_event(event)
        final = event
    assert final is not None
    return final


def abuild(path: str | os.PathLike[str], **options: Any) -> AsyncIterator[TaskEvent]:
    """``async for event in abuild(...)``: :func:`iter_build` run in a worker thread."""
    from dockprogress._bridge import aiter_in_thread  # asyncio: for the async form only

    return aiter_in_thread(lambda: iter_build(path, **options))
