"""Image references and registry manifests, without I/O.

What a pull will download is written in the image's manifest (registry HTTP API v2). This
module parses what the registry answers; :mod:`dockprogress.docker.registry` does the asking.

* :func:`parse_reference` splits ``[host[:port]/]repo[:tag][@digest]`` the way the docker CLI
  does (a first component with ``.`` or ``:``, or ``localhost``, is a registry; otherwise it
  is Docker Hub, where one-component names live under ``library/``).
* :data:`ACCEPT` lists the four media types a pull may meet: OCI index, Docker manifest list,
  OCI manifest and Docker v2 manifest (schema 1 is not asked for: engines refuse it now).
* :func:`parse_manifest` turns a body into an :class:`ImageManifest` (layers with compressed
  sizes) or an :class:`ImageIndex` (one entry per platform); :meth:`ImageIndex.choose` picks
  the entry for a platform. Errors are :class:`~dockprogress.errors.RegistryError`.
* :func:`short_id` is the 12-hex id under which the engine's stream names a layer.

An index entry's ``size`` is the size of the platform's manifest JSON, never of the image;
only an :class:`ImageManifest` has layer sizes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from dockprogress.errors import RegistryError, UsageError

__all__ = [
    "ACCEPT",
    "DOCKER_HUB",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "ImageIndex",
    "ImageManifest",
    "ImageRef",
    "IndexEntry",
    "Layer",
    "Platform",
    "parse_manifest",
    "parse_platform",
    "parse_reference",
    "short_id",
]

OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"

#: The ``Accept`` header of a manifest request: indexes first so a multi-platform image
#: answers with its list and we choose the platform (as the engine will).
ACCEPT: Final = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

_INDEX_TYPES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
_MANIFEST_TYPES: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

DOCKER_HUB: Final = "docker.io"
_HUB_ALIASES: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_DIGEST_RE: Final = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_TAG_RE: Final = re.compile(r"^[\w][\w.-]{0,127}$")
_REPO_RE: Final = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


def short_id(digest: str) -> str:
    """The 12 hex characters the engine's stream uses as a layer's ``id``."""
    _, _, hexpart = digest.partition(":")
    return (hexpart or digest)[:12]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference. ``reference`` is the tag or the digest to ask for."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None
    original: str

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB

    @property
    def name(self) -> str:
        """The repository as the engine is asked for it (``fromImage``), registry included."""
        if self.is_docker_hub:
            return self.repository
        return f"{self.registry}/{self.repository}"

    @property
    def canonical(self) -> str:
        """``name:tag`` or ``name@digest``: a stable task id for this image."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"


def parse_reference(text: str) -> ImageRef:
    """Split an image reference; :class:`UsageError` when it cannot be one."""
    original = text
    text = text.strip()
    if not text or any(ch.isspace() for ch in text):
        raise UsageError(f"not an image reference: {original!r}")
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise UsageError(f"not an image digest in {original!r}: {digest!r}")
    tag: str | None = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise UsageError(f"not an image tag in {original!r}: {tag!r}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, text
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPO_RE.match(repository):
        raise UsageError(f"not an image repository name in {original!r}: {repository!r}")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry, repository, tag, digest, original)


@dataclass(frozen=True, slots=True)
class Platform:
    """``os/arch[/variant]`` as the engine and the index name them."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


_ARCH_ALIASES: Final = {"x86_64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}


def parse_platform(text: str) -> Platform:
    """``linux/amd64``, ``linux/arm64/v8`` → :class:`Platform`; :class:`UsageError` otherwise."""
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"--platform must be OS/ARCH[/VARIANT], not {text!r}")
    arch = _ARCH_ALIASES.get(parts[1], parts[1])
    return Platform(parts[0], arch, parts[2] if len(parts) == 3 else None)


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str
    size: int
    media_type: str

    @property
    def short_id(self) -> str:
        return short_id(self.digest)


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """One platform's manifest: its layers, in order, with compressed sizes."""

    media_type: str
    layers: tuple[Layer, ...]
    digest: str | None = None

    @property
    def sizes(self) -> dict[str, int]:
        """Short id → compressed size, each distinct layer once (the engine fetches a blob
        that appears twice only once, under one id)."""
        return {layer.short_id: layer.size for layer in self.layers}

    @property
    def total_size(self) -> int:
        """Compressed bytes of all distinct layers."""
        return sum(self.sizes.values())


@dataclass(frozen=True, slots=True)
class IndexEntry:
    digest: str
    media_type: str
    platform: Platform | None


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """A multi-platform image: one manifest per platform."""

    media_type: str
    manifests: tuple[IndexEntry, ...]

    def choose(self, platform: Platform) -> IndexEntry:
        """The entry the engine would pull for ``platform``.

        An exact os/arch/variant match wins, then os/arch with any variant (the engine's
        default ``arm64`` matches ``v8``). Attestation entries (``unknown/unknown``) never
        match. :class:`RegistryError` when no entry fits, naming what there is.
        """
        candidates = [e for e in self.manifests if e.platform is not None]
        same = [
            e
            for e in candidates
            if e.platform is not None
            and e.platform.os == platform.os
            and e.platform.architecture == platform.architecture
        ]
        if platform.variant:
            exact = [
                e for e in same if e.platform is not None and e.platform.variant == platform.variant
            ]
            if exact:
                return exact[0]
        if same:
            return same[0]
        offered = ", ".join(sorted({str(e.platform) for e in candidates})) or "none"
        raise RegistryError(f"no manifest for platform {platform} (the image offers: {offered})")


def parse_manifest(
    body: bytes | str, content_type: str | None = None, *, digest: str | None = None
) -> ImageManifest | ImageIndex:
    """Parse a manifest or index body; the body's ``mediaType`` wins over the header."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"registry answered a manifest that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RegistryError("registry answered a manifest that is not a JSON object")
    media_type = data.get("mediaType") or _content_type(content_type)
    if media_type is None:
        # OCI allows leaving mediaType out; the shape tells what it is.
        media_type = OCI_INDEX if "manifests" in data else OCI_MANIFEST
    if media_type in _INDEX_TYPES:
        return ImageIndex(media_type, tuple(_index_entries(data.get("manifests"))))
    if media_type in _MANIFEST_TYPES:
        return ImageManifest(media_type, tuple(_layers(data.get("layers"))), digest)
    raise RegistryError(f"registry answered a manifest of unsupported type {media_type!r}")


def _content_type(header: str | None) -> str | None:
    if not header:
        return None
    value = header.split(";", 1)[0].strip()
    return value if value in _INDEX_TYPES or value in _MANIFEST_TYPES else None


def _layers(raw: Any) -> Iterable[Layer]:
    if not isinstance(raw, list):
        raise RegistryError("manifest has no layer list")
    for item in raw:
        if not isinstance(item, dict):
            raise RegistryError("manifest layer is not an object")
        digest, size = item.get("digest"), item.get("size")
        if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
            raise RegistryError(f"manifest layer without digest or size: {item!r}")
        yield Layer(digest, size, str(item.get("mediaType") or ""))


def _index_entries(raw: Any) -> Iterable[IndexEntry]:
    if not isinstance(raw, list):
        raise RegistryError("manifest index has no manifest list")
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("digest"), str):
            raise RegistryError(f"manifest index entry without digest: {item!r}")
        plat = item.get("platform")
        platform = None
        if isinstance(plat, dict) and plat.get("os") and plat.get("architecture"):
            platform = Platform(
                str(plat["os"]), str(plat["architecture"]), plat.get("variant") or None
            )
        yield IndexEntry(item["digest"], str(item.get("mediaType") or ""), platform)
