"""The JSON-lines decoder and the manifest parser, on recorded bytes and edge cases."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockprogress.core.jsonlines import JsonLinesDecoder
from dockprogress.core.manifest import (
    ACCEPT,
    DOCKER_MANIFEST,
    ImageIndex,
    ImageManifest,
    Platform,
    parse_manifest,
    parse_platform,
    parse_reference,
    short_id,
)
from dockprogress.docker.registry import parse_challenge, registry_base_url
from dockprogress.errors import RegistryError, StreamError, UsageError
from tests.pull.recordings import FIXTURES, load

RAW = load("fresh_layers").raw
EXPECTED = [json.loads(line) for line in RAW.splitlines() if line.strip()]


@given(st.lists(st.integers(min_value=0, max_value=len(RAW)), max_size=40))
def test_any_split_gives_the_same_objects(cuts: list[int]) -> None:
    decoder = JsonLinesDecoder(strict=True)
    out = []
    start = 0
    for cut in [*sorted(cuts), len(RAW)]:
        out.extend(decoder.decode(RAW[start:cut]))
        start = cut
    out.extend(decoder.flush())
    assert out == EXPECTED
    assert decoder.lines == len(EXPECTED)


def test_utf8_split_inside_a_character_and_last_line_without_newline() -> None:
    data = '{"status":"é→✓"}\r\n{"status":"end"}'.encode()
    decoder = JsonLinesDecoder()
    out = [obj for i in range(len(data)) for obj in decoder.decode(data[i : i + 1])]
    assert out == [{"status": "é→✓"}]
    assert decoder.flush() == [{"status": "end"}]


def test_junk_is_skipped_and_counted_or_an_error_when_strict() -> None:
    data = b'garbage\n[1]\n{"a":1}\n\n"str"\n'
    lenient = JsonLinesDecoder()
    assert lenient.decode(data) == [{"a": 1}]
    assert (lenient.junk, lenient.lines, lenient.last_junk) == (3, 1, '"str"')
    with pytest.raises(StreamError, match="not a JSON object"):
        JsonLinesDecoder(strict=True).decode(data)


def test_line_cap_is_an_error_not_a_wait() -> None:
    decoder = JsonLinesDecoder(max_line=64)
    assert decoder.decode(b"x" * 64) == []  # still "need more data"
    with pytest.raises(StreamError, match="longer than 64 bytes"):
        decoder.decode(b"x")
    with pytest.raises(StreamError):
        JsonLinesDecoder(max_line=8).decode(b'{"long": 12345}\n')
    # A chunk of one whole line (the decoder's short path): the cap counts the line without
    # its newline, as for a line split out of a longer chunk.
    line = b'{"k": "' + b"v" * 55 + b'"}'
    assert len(line) == 64
    assert JsonLinesDecoder(max_line=64).decode(line + b"\n") == [{"k": "v" * 55}]
    assert JsonLinesDecoder(max_line=64).decode(b"\n" + line + b"\n") == [{"k": "v" * 55}]
    with pytest.raises(StreamError, match="longer than 63 bytes"):
        JsonLinesDecoder(max_line=63).decode(line + b"\n")


def test_recorded_manifest_sums_layer_sizes() -> None:
    body = (FIXTURES / "manifests" / "dp_layers_1.json").read_bytes()
    found = parse_manifest(body)
    assert isinstance(found, ImageManifest)
    assert found.media_type == DOCKER_MANIFEST
    assert len(found.layers) == 7
    raw = json.loads(body)
    assert found.total_size == sum(layer["size"] for layer in raw["layers"])
    assert list(found.sizes) == [short_id(layer["digest"]) for layer in raw["layers"]]
    assert all(len(s) == 12 for s in found.sizes)


def _index(*platforms: dict[str, str]) -> bytes:
    manifests = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + f"{i:x}" * 64,
            "size": 500,
            "platform": p,
        }
        for i, p in enumerate(platforms, start=1)
    ]
    return json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()


def test_index_picks_the_platform() -> None:
    body = _index(
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        {"os": "unknown", "architecture": "unknown"},
    )
    index = parse_manifest(body, "application/vnd.oci.image.index.v1+json")
    assert isinstance(index, ImageIndex)
    assert index.choose(Platform("linux", "amd64")).digest.startswith("sha256:111")
    assert index.choose(parse_platform("linux/arm64")).digest.startswith("sha256:333")
    assert index.choose(parse_platform("linux/arm/v7")).digest.startswith("sha256:222")
    with pytest.raises(RegistryError, match="offers: linux/amd64, linux/arm/v7"):
        index.choose(parse_platform("windows/amd64"))


@pytest.mark.parametrize(
    ("text", "registry", "repository", "reference", "canonical"),
    [
        ("127.0.0.1:5001/dp/layers:1", "127.0.0.1:5001", "dp/layers", "1", None),
        (
            "127.0.0.1:5000/dp/base",
            "127.0.0.1:5000",
            "dp/base",
            "latest",
            "127.0.0.1:5000/dp/base:latest",
        ),
        ("localhost/x@sha256:" + "a" * 64, "localhost", "x", "sha256:" + "a" * 64, None),
        ("busybox", "docker.io", "library/busybox", "latest", "library/busybox:latest"),
        ("user/app:v2", "docker.io", "user/app", "v2", None),
    ],
)
def test_references(
    text: str, registry: str, repository: str, reference: str, canonical: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.reference) == (registry, repository, reference)
    assert ref.canonical == (canonical or text)


@pytest.mark.parametrize("text", ["", "a b", "UPPER/case", "x:bad tag", "x@sha256:zz"])
def test_bad_references_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_reference(text)


def test_challenge_scheme_and_accept() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:library/busybox:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:library/busybox:pull",
    }
    assert registry_base_url("127.0.0.1:5001") == "http://127.0.0.1:5001"
    assert registry_base_url("ghcr.io") == "https://ghcr.io"
    assert ACCEPT.split(", ")[0] == "application/vnd.oci.image.index.v1+json"
    assert len(ACCEPT.split(", ")) == 4
