"""scripts/testbed_files.py: the files the real tools download, and the front serving them.

The files are checked as the tools will read them: the wheels' RECORD hashes, the apt
repository's Packages and Release against the .deb files, the npm tarballs' package.json,
and the manifest's sizes against the files; then, with the bed up, that the front serves
them at its rate.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Testbed

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _files_module() -> Any:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import testbed_files
    finally:
        sys.path.remove(str(REPO / "scripts"))
    return testbed_files


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    state_dir = tmp_path_factory.mktemp("bed")
    said: list[str] = []
    manifest = _files_module().ensure_files(state_dir, said.append)
    assert len(said) == 1
    assert "files for the real tools" in said[0]
    return state_dir / "files", manifest


def test_the_manifest_gives_every_file_its_exact_size(built: tuple[Path, dict[str, Any]]) -> None:
    root, manifest = built
    assert json.loads((root / "manifest.json").read_text()) == manifest
    entries = [e for key in ("blobs", "wheels", "npm", "debs") for e in manifest[key]]
    assert len(entries) == 2 + 3 + 6 + 3
    for entry in entries:
        assert (root / entry["file"]).stat().st_size == entry["size"] > 3 * MIB, entry


def test_the_wheels_are_valid_and_require_each_other_in_a_chain(
    built: tuple[Path, dict[str, Any]],
) -> None:
    root, manifest = built
    requires = []
    for entry in manifest["wheels"]:
        with zipfile.ZipFile(root / entry["file"]) as wheel:
            names = wheel.namelist()
            record = next(n for n in names if n.endswith(".dist-info/RECORD"))
            for line in wheel.read(record).decode().splitlines():
                path, digest, size = line.split(",")
                if path == record:
                    continue
                data = wheel.read(path)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert digest == "sha256=" + expected.decode()
                assert int(size) == len(data)
            metadata = wheel.read(next(n for n in names if n.endswith("METADATA"))).decode()
        requires += [ln.split(": ")[1] for ln in metadata.splitlines() if ln.startswith("Req")]
        page = (root / "simple" / entry["name"] / "index.html").read_text()
        assert f"../../{entry['file']}#sha256=" in page
    assert requires == ["dp-pad-b", "dp-pad-c"]


def test_the_apt_repository_indexes_its_debs(built: tuple[Path, dict[str, Any]]) -> None:
    root, manifest = built
    packages = (root / "apt" / "Packages").read_text()
    assert gzip.decompress((root / "apt" / "Packages.gz").read_bytes()).decode() == packages
    stanzas = {
        s.split("\n", 1)[0].removeprefix("Package: "): s for s in packages.strip().split("\n\n")
    }
    for entry in manifest["debs"]:
        data = (root / entry["file"]).read_bytes()
        stanza = stanzas[entry["name"]]
        assert f"\nSize: {len(data)}\n" in stanza
        assert f"\nSHA256: {hashlib.sha256(data).hexdigest()}" in stanza
        field = subprocess.run(
            ["dpkg-deb", "-f", str(root / entry["file"]), "Package", "Depends"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert field.stdout.strip() == f"Package: {entry['name']}"  # and no dependencies
    release = (root / "apt" / "Release").read_text()
    for index in ("Packages", "Packages.gz"):
        body = (root / "apt" / index).read_bytes()
        assert f" {hashlib.sha256(body).hexdigest()} {len(body)} {index}\n" in release


def test_the_npm_tarballs_are_packages(built: tuple[Path, dict[str, Any]]) -> None:
    root, manifest = built
    for entry in manifest["npm"]:
        with tarfile.open(root / entry["file"]) as tar:
            member = tar.extractfile("package/package.json")
            assert member is not None
            assert json.load(member)["name"] == entry["name"]
            assert tar.getmember("package/pad.bin").size > MIB


def test_a_second_run_builds_nothing(built: tuple[Path, dict[str, Any]]) -> None:
    root, manifest = built
    before = (root / "manifest.json").stat().st_mtime_ns
    said: list[str] = []
    assert _files_module().ensure_files(root.parent, said.append) == manifest
    assert said == []
    assert (root / "manifest.json").stat().st_mtime_ns == before


@pytest.mark.engine
def test_the_front_serves_the_files_at_its_rate(testbed: Testbed) -> None:
    with _OPENER.open(f"{testbed.files}/manifest.json", timeout=10) as response:
        manifest = json.load(response)
    blob = min(manifest["blobs"], key=lambda b: b["size"])
    started = time.monotonic()
    with _OPENER.open(f"{testbed.files}/{blob['file']}", timeout=60) as response:
        body = response.read()
    elapsed = time.monotonic() - started
    assert len(body) == blob["size"]
    number, unit = testbed.rate[:-1], testbed.rate[-1].lower()
    rate = int(number) * {"k": 1024, "m": MIB}[unit] if unit in "km" else int(testbed.rate)
    assert elapsed > 0.5 * blob["size"] / rate  # as the registry's blobs: throttled
    index = f"{testbed.files}/simple/{manifest['wheels'][0]['name']}/"
    with _OPENER.open(index, timeout=10) as response:
        assert response.headers["Content-Type"] == "text/html"  # pip reads only HTML pages
        assert b".whl#sha256=" in response.read()
