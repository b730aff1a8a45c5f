"""Issue 2, item 5: the bed shows real pull progress, over time, through docker-py.

The image is removed locally (every tag), then pulled from the bandwidth-limited front. The
expected figures come from the registry's own manifest and the front's configured rate,
never from constants in this file.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import docker
import pytest

if TYPE_CHECKING:
    from conftest import Testbed

pytestmark = [pytest.mark.engine, pytest.mark.slow]

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def manifest_layer_sizes(ref: str) -> dict[str, int]:
    """{short layer id as the pull stream names it: compressed size} from the registry."""
    registry, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    request = urllib.request.Request(
        f"http://{registry}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V2}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        manifest = json.load(response)
    return {layer["digest"].split(":", 1)[1][:12]: layer["size"] for layer in manifest["layers"]}


def rate_bytes_per_second(rate: str) -> int:
    """nginx's ``limit_rate`` value ("5m", "800k", "100000") in bytes per second."""
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", rate).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit.lower()]


def test_pull_through_slow_front_streams_downloading_bytes_for_over_a_second(
    testbed: Testbed,
    docker_client: docker.DockerClient,
    remove_image: Callable[[str], None],
) -> None:
    slow_ref = testbed.slow(testbed.layers)
    remove_image(testbed.layers)
    remove_image(slow_ref)
    sizes = manifest_layer_sizes(testbed.layers)
    repository, _, tag = slow_ref.rpartition(":")

    messages: list[tuple[float, dict[str, Any]]] = []
    for message in docker_client.api.pull(repository, tag=tag, stream=True, decode=True):
        messages.append((time.monotonic(), message))

    assert [m for _, m in messages if "error" in m or "errorDetail" in m] == []
    downloading = [(t, m) for t, m in messages if m.get("status") == "Downloading"]
    assert len(downloading) > 10
    for _, message in downloading:
        detail = message["progressDetail"]
        assert 0 < detail["current"] <= detail["total"]
    # Real progress, spread over time, not one burst at the end.
    assert downloading[-1][0] - downloading[0][0] > 1.0

    # Each layer's total is its compressed size in the manifest; every layer is either
    # downloaded or one the engine already had: at least the busybox base, which dp/base:1
    # keeps local (more only if another session holds the same layers meanwhile).
    totals = {m["id"]: m["progressDetail"]["total"] for _, m in downloading}
    assert totals == {layer: sizes[layer] for layer in totals}
    already = {m["id"] for _, m in messages if m.get("status") == "Already exists"}
    assert set(totals) | already == set(sizes)
    assert set(totals).isdisjoint(already)
    assert manifest_layer_sizes(testbed.base).keys() <= already
    assert max(sizes, key=sizes.__getitem__) in totals

    # The largest layer cannot have come faster than the front's limit allows (with slack
    # for nginx's coarse accounting).
    biggest = max(totals, key=totals.__getitem__)
    times = [t for t, m in downloading if m["id"] == biggest]
    min_seconds = sizes[biggest] / rate_bytes_per_second(testbed.rate)
    assert times[-1] - times[0] > 0.5 * min_seconds

    assert messages[-1][1]["status"] == f"Status: Downloaded newer image for {slow_ref}"
    assert len(docker_client.images.get(slow_ref).attrs["RootFS"]["Layers"]) == len(sizes)
