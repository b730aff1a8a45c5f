"""The files the real tools download in the tests, served by the bed's throttled front.

``ensure_files(state_dir)`` writes ``<state_dir>/files/`` once; nginx serves it at
``http://127.0.0.1:$TESTBED_SLOW_PORT/files/`` with the same ``limit_rate`` as the registry
(see ``testbed_bed.nginx_config``), so each download lasts seconds and its bar moves. All of
it is made here, without network, from seeded random bytes (a rebuild gives the same files):

- ``blob-25mb.bin``, ``blob-10mb.bin``: 25,000,000 and 10,000,000 random bytes for curl
  and wget (not whole MiB: curl's and wget's binary "23.8M" must be read as such);
- ``simple/``: a PEP 503 index of three wheels (``dp-pad-a`` requires ``dp-pad-b``, which
  requires ``dp-pad-c``), each a real wheel padded with random data to several MB, so that
  ``pip install --index-url …/files/simple/ dp-pad-a`` downloads three in a row;
- ``npm/``: six npm package tarballs (``npm install URL``);
- ``apt/``: a flat apt repository (``deb [trusted=yes] …/files/apt ./``) of three padded
  ``.deb`` packages without dependencies, built with ``dpkg-deb``;
- ``manifest.json``: what each file is and its exact size (the truth the tests compare
  with), written last: when it exists with the current ``VERSION`` nothing is rebuilt.

The git repository, the rsync tree and the video are made inside the tools container by the
tests themselves (git over ``file://``, ffmpeg's lavfi source): they need no server.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import shutil
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERSION = 2  # 2: six npm tarballs with small files
MIB = 1024 * 1024
FIXED_MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z
# (name, MiB, seed, requires)
WHEELS = [
    ("dp-pad-a", 6, 501, "dp-pad-b"),
    ("dp-pad-b", 8, 502, "dp-pad-c"),
    ("dp-pad-c", 6, 503, ""),
]
# Six tarballs (name, MiB of padding, seed, small files): npm 9 fetches them all while it
# resolves the tree, then unpacks them in parallel; their different counts of small files make
# the unpacking of each take its own time, so npm's gauge moves a step as each one lands.
NPM = [
    ("dp-pad-npm-a", 4, 601, 40),
    ("dp-pad-npm-b", 3, 602, 120),
    ("dp-pad-npm-c", 3, 603, 200),
    ("dp-pad-npm-d", 5, 604, 280),
    ("dp-pad-npm-e", 7, 605, 360),
    ("dp-pad-npm-f", 6, 606, 440),
]
DEBS = [("dp-pad-deb-a", 5, 701), ("dp-pad-deb-b", 4, 702), ("dp-pad-deb-c", 6, 703)]
BLOBS = [("blob-25mb.bin", 25_000_000, 401), ("blob-10mb.bin", 10_000_000, 402)]  # bytes


def _padding(mib: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(mib * MIB)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- wheels and their index


def _wheel(name: str, mib: int, seed: int, requires: str) -> tuple[str, bytes]:
    """A pure-Python wheel (``py3-none-any``): a package with a padding file, and its
    dist-info (METADATA, WHEEL, RECORD) as the wheel spec asks."""
    module = name.replace("-", "_")
    dist_info = f"{module}-1.0.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
    metadata += "Summary: Padding for dockprogress's tests (random bytes)\n"
    if requires:
        metadata += f"Requires-Dist: {requires}\n"
    members = {
        f"{module}/__init__.py": b'"""Random padding: a wheel big enough to draw a bar."""\n',
        f"{module}/pad.bin": _padding(mib, seed),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: dockprogress-testbed\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = ""
    for path, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as wheel:
        for path, data in members.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            wheel.writestr(info, data)
    return f"{module}-1.0-py3-none-any.whl", out.getvalue()


def _write_wheels(root: Path) -> list[dict[str, Any]]:
    (root / "wheels").mkdir()
    (root / "simple").mkdir()
    made = []
    links = []
    for name, mib, seed, requires in WHEELS:
        filename, data = _wheel(name, mib, seed, requires)
        (root / "wheels" / filename).write_bytes(data)
        page = root / "simple" / name
        page.mkdir()
        href = f"../../wheels/{filename}#sha256={_sha256(data)}"
        (page / "index.html").write_text(
            f'<!DOCTYPE html>\n<html><body>\n<a href="{href}">{filename}</a>\n</body></html>\n'
        )
        links.append(f'<a href="{name}/">{name}</a>')
        made.append({"name": name, "file": f"wheels/{filename}", "size": len(data)})
    (root / "simple" / "index.html").write_text(
        "<!DOCTYPE html>\n<html><body>\n" + "\n".join(links) + "\n</body></html>\n"
    )
    return made


# ---------------------------------------------------------------- npm tarballs


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, FIXED_MTIME
    tar.addfile(info, io.BytesIO(data))


def _write_npm(root: Path) -> list[dict[str, Any]]:
    (root / "npm").mkdir()
    made = []
    for name, mib, seed, small in NPM:
        manifest = {"name": name, "version": "1.0.0", "description": "padding", "license": "MIT"}
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            _tar_add(tar, "package/package.json", json.dumps(manifest, indent=2).encode())
            _tar_add(tar, "package/pad.bin", _padding(mib, seed))
            for index in range(small):
                _tar_add(tar, f"package/lib/part-{index:04d}.js", b"module.exports = %d;\n" % index)
        # Level 1: random bytes don't compress; the tarball is as big as its padding.
        data = gzip.compress(raw.getvalue(), compresslevel=1, mtime=FIXED_MTIME)
        path = root / "npm" / f"{name}-1.0.0.tgz"
        path.write_bytes(data)
        made.append({"name": name, "file": f"npm/{path.name}", "size": len(data)})
    return made


# ---------------------------------------------------------------- a flat apt repository


def _write_apt(root: Path, work: Path) -> list[dict[str, Any]]:
    repo = root / "apt"
    repo.mkdir()
    made = []
    stanzas = []
    for name, mib, seed in DEBS:
        tree = work / name
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "usr" / "share" / "dp-pad").mkdir(parents=True)
        (tree / "usr" / "share" / "dp-pad" / f"{name}.bin").write_bytes(_padding(mib, seed))
        control = (
            f"Package: {name}\nVersion: 1.0\nArchitecture: all\n"
            "Maintainer: dockprogress test bed <testbed@localhost>\n"
            f"Installed-Size: {mib * 1024 + 4}\nSection: misc\nPriority: optional\n"
            "Description: padding for dockprogress's tests\n random bytes, no dependencies\n"
        )
        (tree / "DEBIAN" / "control").write_text(control)
        deb = repo / f"{name}_1.0_all.deb"
        # No compression: random bytes don't compress, and -Znone keeps the build quick.
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Znone", "--build", str(tree), str(deb)],
            check=True,
            stdout=subprocess.DEVNULL,
            env={"SOURCE_DATE_EPOCH": str(FIXED_MTIME), "PATH": "/usr/bin:/bin"},
        )
        data = deb.read_bytes()
        stanzas.append(
            control.rstrip("\n")
            + f"\nFilename: ./{deb.name}\nSize: {len(data)}\n"
            + f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {_sha256(data)}\n"
        )
        made.append({"name": name, "file": f"apt/{deb.name}", "size": len(data)})
    packages = "\n".join(stanzas).encode()
    (repo / "Packages").write_bytes(packages)
    (repo / "Packages.gz").write_bytes(gzip.compress(packages, mtime=FIXED_MTIME))
    release = (
        "Origin: dockprogress\nLabel: dockprogress test bed\nDate: Mon, 01 Jan 2024 00:00:00 UTC\n"
    )
    release += "SHA256:\n"
    for index in ("Packages", "Packages.gz"):
        body = (repo / index).read_bytes()
        release += f" {_sha256(body)} {len(body)} {index}\n"
    (repo / "Release").write_text(release)
    return made


# ---------------------------------------------------------------- all of it


def read_manifest(state_dir: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((state_dir / "files" / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("version") == VERSION else None


def ensure_files(state_dir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Write ``<state_dir>/files`` unless it is already there at this ``VERSION``."""
    found = read_manifest(state_dir)
    if found is not None:
        return found
    t0 = time.monotonic()
    target = state_dir / "files"
    staging = state_dir / "files.tmp"
    work = state_dir / "files.work"
    for stale in (staging, work):
        shutil.rmtree(stale, ignore_errors=True)
    staging.mkdir(parents=True)
    work.mkdir()
    blobs = []
    for filename, size, seed in BLOBS:
        (staging / filename).write_bytes(random.Random(seed).randbytes(size))
        blobs.append({"name": filename, "file": filename, "size": size})
    manifest = {
        "version": VERSION,
        "blobs": blobs,
        "wheels": _write_wheels(staging),
        "npm": _write_npm(staging),
        "debs": _write_apt(staging, work),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(work)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    total = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    say(f"files for the real tools: {total / MIB:.0f} MiB in {time.monotonic() - t0:.1f} s")
    return manifest
