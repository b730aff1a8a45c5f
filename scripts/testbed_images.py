"""The test bed's fixture images, built without internet and pushed to the local registry.

The images are described in ``scripts/fixtures/images.json``. Three kinds:

- ``busybox``: ``/bin/busybox`` from Debian's busybox-static plus a symlink per applet, in a
  tar written with fixed owners and times, then ``docker import``;
- ``layers``: ``FROM`` the busybox image, one ``COPY`` per random file (legacy builder, so
  one layer each). The files come from a seeded PRNG and carry a fixed mtime, so a rebuild
  gives the same bytes, and two images copying the same file on the same parent share the
  layer (the legacy builder's cache reuses it);
- ``debootstrap``: a minbase Debian of the host's release with the listed packages (and
  their dependencies; those of ``apt`` installed afterwards by apt-get chrooted into the new
  system), from the mirror named in the host's own apt sources; the tarball is
  cached in ``.testbed/cache`` so a second build is a ``docker import`` of it. ``tools``
  (curl, wget, git, rsync, ffmpeg, pip, npm: the real tools whose bars dockprogress reads)
  is one of these.

An image already in the registry is skipped; a protected image (``"protected": true``,
which tests must keep) is also pulled back from the registry when missing locally.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

SPEC_FILE = Path(__file__).resolve().parent / "fixtures" / "images.json"
MIB = 1024 * 1024
FIXED_MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z: rebuilds give identical layers
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def say(message: str) -> None:
    print(f"testbed: {message}", flush=True)


@cache
def specs() -> dict[str, dict[str, Any]]:
    """The fixture images by key (``base``, ``layers``, ...), in build order."""
    raw = json.loads(SPEC_FILE.read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def docker(*args: str, env: dict[str, str] | None = None, quiet: bool = False) -> None:
    out = subprocess.DEVNULL if quiet else None
    subprocess.run(["docker", *args], check=True, env=env, stdout=out)


def split_ref(ref: str) -> tuple[str, str, str]:
    """``127.0.0.1:5000/dp/layers:1`` -> (``127.0.0.1:5000``, ``dp/layers``, ``1``)."""
    registry, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    return registry, repo, tag


def registry_has(ref: str) -> bool:
    registry, repo, tag = split_ref(ref)
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": MANIFEST_TYPES},
    )
    try:
        with _NO_PROXY.open(request, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def local_has(ref: str) -> bool:
    probe = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


# ---------------------------------------------------------------- busybox


def _tar_entry(name: str, kind: bytes, mode: int, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname = kind, mode, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "root", "root"
    return info


def build_busybox(ref: str, work: Path) -> None:
    busybox = Path("/bin/busybox")
    applets = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    tar_path = work / "busybox-rootfs.tar"
    dirs = ["bin", "dev", "etc", "proc", "root", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin"]
    dirs += ["var", "data"]
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        "etc/group": b"root:x:0:\nnogroup:x:65534:\n",
    }
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            tar.addfile(_tar_entry(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        for name, body in files.items():
            info = _tar_entry(name, tarfile.REGTYPE, 0o644)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        info = _tar_entry("bin/busybox", tarfile.REGTYPE, 0o755)
        info.size = busybox.stat().st_size
        with busybox.open("rb") as body_file:
            tar.addfile(info, body_file)
        for applet in sorted(set(applets)):
            if applet != "bin/busybox":
                tar.addfile(_tar_entry(applet, tarfile.SYMTYPE, 0o777, "/bin/busybox"))
    docker(
        "import",
        "--change",
        'CMD ["/bin/sh"]',
        "--change",
        "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        str(tar_path),
        ref,
        quiet=True,
    )
    tar_path.unlink()


# ---------------------------------------------------------------- layered images


def random_file(blobs: Path, name: str, mib: int, seed: int) -> Path:
    path = blobs / f"{name}-{mib}m-{seed}.bin"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(random.Random(seed).randbytes(mib * MIB))
        tmp.replace(path)
    os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    return path


def build_layers(ref: str, spec: dict[str, Any], registry: str, work: Path) -> None:
    blobs = work / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    context = work / "context" / re.sub(r"[^A-Za-z0-9]+", "_", spec["ref"])
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    parent = f"{registry}/{specs()[spec['from']]['ref']}"
    lines = [f"FROM {parent}"]
    for layer in spec["layers"]:
        source = random_file(blobs, layer["name"], layer["mib"], layer["seed"])
        os.link(source, context / source.name)
        lines.append(f"COPY {source.name} /data/{layer['name']}.bin")
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    # The legacy builder makes one layer per COPY and uses the local parent without pulling.
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    docker("build", "--quiet", "-t", ref, str(context), env=env, quiet=True)
    shutil.rmtree(context)


def build_manyfiles(ref: str, spec: dict[str, Any], work: Path) -> None:
    """One layer of many small files (``files`` of ``bytes`` each, random): slow to unpack
    for its size, as real layers of source trees and packages are."""
    rng = random.Random(spec["seed"])
    tar_path = work / "manyfiles.tar"
    per_dir = 500
    with tarfile.open(tar_path, "w") as tar:
        tar.addfile(_tar_entry("data", tarfile.DIRTYPE, 0o755))  # parents before children
        for n in range(spec["files"]):
            folder = f"data/d{n // per_dir:04d}"
            if n % per_dir == 0:
                tar.addfile(_tar_entry(folder, tarfile.DIRTYPE, 0o755))
            info = _tar_entry(f"{folder}/f{n:06d}", tarfile.REGTYPE, 0o644)
            data = rng.randbytes(spec["bytes"])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    docker("import", str(tar_path), ref, quiet=True)
    tar_path.unlink()


# ---------------------------------------------------------------- debootstrap images


def host_mirror() -> tuple[str, str]:
    """(mirror URL, release codename) read from this machine's apt sources at run time."""
    release = ""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            release = line.split("=", 1)[1].strip().strip('"')
    candidates: list[tuple[str, list[str]]] = []
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = {
                k.strip().lower(): v.strip()
                for k, _, v in (ln.partition(":") for ln in stanza.splitlines())
                if k and not k.startswith("#")
            }
            if "deb" in fields.get("types", "").split() and "uris" in fields:
                candidates.append((fields["uris"].split()[0], fields.get("suites", "").split()))
    sources_list = Path("/etc/apt/sources.list")
    if sources_list.exists():
        for line in sources_list.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb":
                words = [w for w in words[1:] if not w.startswith("[")]
                candidates.append((words[0], words[1:2]))
    for uri, suites in candidates:
        if release in suites:
            return uri, release
    raise SystemExit(f"testbed: no apt source for release {release!r} in /etc/apt to debootstrap")


def _unmount_below(root: Path) -> None:
    """An interrupted debootstrap leaves /proc and /sys mounted inside its target."""
    root = root.resolve()  # /proc/mounts names the real path (.testbed may be a symlink)
    mounts = [ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()]
    for mountpoint in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", mountpoint], check=False)


def _apt_in_chroot(root: Path, packages: list[str]) -> None:
    """Install ``packages`` into the new system with apt's own resolver, chrooted into it.

    debootstrap's resolver does not follow virtual packages: npm's node-* dependencies
    (``node-has``, ``node-color-support``, ...) are left out and npm stays unconfigured. The
    package lists debootstrap fetched are used; no service may start (policy-rc.d).
    """
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANG": "C.UTF-8",
    }
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    try:
        subprocess.run(
            ["chroot", str(root), *install],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    finally:
        _unmount_below(root)
        policy.unlink(missing_ok=True)


def debootstrap_tarball(key: str, spec: dict[str, Any], work: Path) -> Path:
    tarball = work / f"{key}-rootfs.tar"
    if tarball.exists():
        return tarball
    if os.geteuid() != 0:
        raise SystemExit(f"testbed: building {spec['ref']} needs debootstrap as root")
    mirror, release = host_mirror()
    root = work / f"rootfs-{key}"
    _unmount_below(root)
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.monotonic()
    extra = f", then apt-get install {' '.join(spec['apt'])}" if spec.get("apt") else ""
    say(f"debootstrap {release} with {','.join(spec['include'])}{extra} (a minute or more)")
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(spec['include'])}",
            release,
            str(root),
            mirror,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _unmount_below(root)
    if spec.get("apt"):
        _apt_in_chroot(root, spec["apt"])
    for required in spec["check"]:
        if not (root / required.lstrip("/")).exists():
            raise SystemExit(f"testbed: {required} missing from the {key} rootfs")
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (root / junk).glob("*"):
            if item.is_file():
                item.unlink()
    tmp = tarball.with_suffix(".tmp")
    subprocess.run(
        ["tar", "-C", str(root), "--one-file-system", "--numeric-owner", "-cf", str(tmp), "."],
        check=True,
    )
    tmp.replace(tarball)
    shutil.rmtree(root)
    say(f"{key} rootfs built in {time.monotonic() - t0:.0f} s")
    return tarball


def build_debootstrap(key: str, ref: str, spec: dict[str, Any], work: Path) -> None:
    tarball = debootstrap_tarball(key, spec, work)
    docker(
        "import",
        "--change",
        f"CMD {json.dumps(spec['cmd'])}",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        str(tarball),
        ref,
        quiet=True,
    )


# ---------------------------------------------------------------- all of them


def ensure_image(key: str, registry: str, work: Path) -> None:
    """Make the fixture image ``key`` be in the registry (and, if protected, local too)."""
    spec = specs()[key]
    ref = f"{registry}/{spec['ref']}"
    in_registry = registry_has(ref)
    local = local_has(ref)
    if in_registry and (local or not spec.get("protected")):
        return
    t0 = time.monotonic()
    if in_registry:
        say(f"{ref}: pulling back from the registry")
        docker("pull", "--quiet", ref, quiet=True)
        return
    # Not in the registry: build it again unless it is a protected (debootstrap or base)
    # image. A stale local copy of a layered image from an earlier bed would not share
    # its layers with the ones built now (dp/shared:a and :b must).
    if not local or not spec.get("protected"):
        say(f"{ref}: building")
        if spec["kind"] == "busybox":
            build_busybox(ref, work)
        elif spec["kind"] == "layers":
            build_layers(ref, spec, registry, work)
        elif spec["kind"] == "manyfiles":
            build_manyfiles(ref, spec, work)
        else:
            build_debootstrap(key, ref, spec, work)
    say(f"{ref}: pushing")
    docker("push", ref, quiet=True)
    say(f"{ref}: ready in {time.monotonic() - t0:.1f} s")


def ensure_all(registry: str, work: Path, skip_debian: bool = False) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for key, spec in specs().items():
        if skip_debian and spec["kind"] == "debootstrap":
            continue
        ensure_image(key, registry, work)
