#!/usr/bin/env python3
"""Record the engine's raw pull stream, with timestamps, as a test fixture.

    .venv/bin/python scripts/record_pull.py 127.0.0.1:5001/dp/layers:1 tests/fixtures/pull/x.jsonl \
        [--remove IMAGE ...] [--platform linux/amd64]

Output: JSON lines. The first is a header ``{"recording": {...}}`` (image, engine version,
API version, when, the command line). Each following line is one chunk exactly as the engine
sent it: ``{"t": <seconds since the request>, "chunk": "<text>"}``. When the engine refuses
before streaming, the last line is ``{"t": ..., "http_status": N, "body": "<text>"}``.

``--remove`` removes the given image references locally first (``docker rmi``, errors
ignored), so that the pull is fresh.

``--own-proxy RATE`` starts a private nginx (tests/pull/nginx_proxy.py, by pid) on the
image's 127.0.0.1 port, in front of the test bed's registry on :5000, limited to RATE per
connection; ``--cut-after S --cut-for P`` stops it S seconds into the pull and starts it
again P seconds later (``--cut-for -1``: never), to record retries and resumed downloads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from datetime import UTC, datetime

import docker
import docker.errors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("output")
    parser.add_argument("--remove", nargs="*", default=[])
    parser.add_argument("--platform", default=None)
    parser.add_argument("--own-proxy", metavar="RATE", default=None)
    parser.add_argument("--cut-after", type=float, default=None)
    parser.add_argument("--cut-for", type=float, default=5.0)
    args = parser.parse_args(argv)

    proxy = None
    if args.own_proxy:
        sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
        from tests.pull.nginx_proxy import ThrottledProxy

        port = int(args.image.split("/", 1)[0].rsplit(":", 1)[1])
        proxy = ThrottledProxy(rate=args.own_proxy, port=port)
        proxy.start()
    try:
        return record(args, argv, proxy)
    finally:
        if proxy is not None:
            proxy.close()


def record(args: argparse.Namespace, argv: list[str], proxy: object) -> int:

    client = docker.from_env(timeout=600)
    for ref in args.remove:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(ref, force=True)
    version = client.version()
    repo, _, tag = args.image.rpartition(":")
    header = {
        "recording": {
            "image": args.image,
            "engine": version.get("Version"),
            "api": version.get("ApiVersion"),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(["scripts/record_pull.py", *argv]),
        }
    }
    with open(args.output, "w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        start = time.monotonic()
        if proxy is not None and args.cut_after is not None:
            threading.Thread(
                target=cut, args=(proxy, args.cut_after, args.cut_for), daemon=True
            ).start()
        try:
            stream = client.api.pull(
                repo, tag=tag, stream=True, decode=False, platform=args.platform
            )
            for chunk in stream:
                text = chunk.decode("utf-8") if isinstance(chunk, bytes) else chunk
                line = {"t": round(time.monotonic() - start, 4), "chunk": text}
                out.write(json.dumps(line) + "\n")
                out.flush()
        except docker.errors.APIError as exc:
            body = exc.response.text if exc.response is not None else str(exc)
            status = exc.response.status_code if exc.response is not None else None
            line = {"t": round(time.monotonic() - start, 4), "http_status": status, "body": body}
            out.write(json.dumps(line) + "\n")
    print(f"recorded {args.output}", file=sys.stderr)
    return 0


def cut(proxy: object, after: float, pause: float) -> None:
    time.sleep(after)
    proxy.stop()  # type: ignore[attr-defined]
    print(f"proxy stopped at {after}s", file=sys.stderr)
    if pause >= 0:
        time.sleep(pause)
        proxy.start()  # type: ignore[attr-defined]
        print(f"proxy started again at {after + pause}s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
