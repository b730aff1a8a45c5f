"""Where calibration profiles live: JSON files under the user's cache directory.

A profile named ``postgres-load`` is ``$XDG_CACHE_HOME/dockprogress/profiles/postgres-load.json``
(``~/.cache`` when ``XDG_CACHE_HOME`` is unset or not absolute, as the XDG spec says). A
value containing a path separator or ending in ``.json`` is used as the path itself.
Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a crash or a
concurrent run never leaves half a profile. A missing or unreadable profile is an empty one:
a damaged cache must not stop a run, only its calibration.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Final

from dockprogress.core.calibration import Profile, RunRecord
from dockprogress.core.unpack import blend_rate

#: Repositories whose own unpack rate is kept, per engine.
MAX_REMEMBERED_IMAGES: Final = 200

__all__ = [
    "load_profile",
    "load_unpack_rate",
    "profile_dir",
    "profile_path",
    "record_run",
    "record_unpack",
    "save_profile",
    "unpack_rates_path",
]


def _cache_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "dockprogress"


def profile_dir() -> Path:
    return _cache_dir() / "profiles"


def unpack_rates_path() -> Path:
    return _cache_dir() / "unpack-rates.json"


def profile_path(name_or_path: str | os.PathLike[str]) -> Path:
    text = os.fspath(name_or_path)
    if os.sep in text or "/" in text or text.endswith(".json"):
        return Path(text)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip(".") or "profile"
    return profile_dir() / f"{safe}.json"


def _name_of(name_or_path: str | os.PathLike[str]) -> str:
    text = os.fspath(name_or_path)
    return Path(text).stem if (os.sep in text or "/" in text or text.endswith(".json")) else text


def load_profile(name_or_path: str | os.PathLike[str]) -> Profile:
    """The stored profile, or an empty one when there is none (or it cannot be read)."""
    path = profile_path(name_or_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Profile.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError):
        return Profile(_name_of(name_or_path))


def save_profile(profile: Profile, name_or_path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``profile`` atomically; return the path written. ``OSError`` if it cannot be."""
    path = profile_path(name_or_path if name_or_path is not None else profile.name)
    _write_json(path, profile.to_dict())
    return path


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_run(name_or_path: str | os.PathLike[str], run: RunRecord) -> Profile:
    """Add a successful run to the stored profile (keeping the last few) and save it."""
    profile = load_profile(name_or_path).with_run(run)
    save_profile(profile, name_or_path)
    return profile


def _load_rates() -> dict[str, Any]:
    try:
        data = json.loads(unpack_rates_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _rate(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None


def load_unpack_rate(engine: str, repository: str | None = None) -> float | None:
    """The unpack rate learned on ``engine`` (its ID) for ``repository``'s images, else for
    any image on that engine; ``None`` before the first pull measured there.

    Rates depend on what a layer holds (many small files unpack ten times slower than a few
    large ones), so an image pulled before predicts itself best.
    """
    entry = _load_rates().get(engine)
    if not isinstance(entry, dict):
        return None
    images = entry.get("images")
    if repository and isinstance(images, dict):
        own = _rate(images.get(repository))
        if own is not None:
            return own
    return _rate(entry.get("rate"))


def record_unpack(
    engine: str, repository: str | None, nbytes: float, seconds: float
) -> float | None:
    """Fold an observed unpacking into ``engine``'s stored rates (the repository's and the
    engine-wide one); return the repository's new rate.

    A cache that cannot be written is not an error (the next pull starts from the default).
    """
    rates = _load_rates()
    entry = rates.get(engine)
    if not isinstance(entry, dict):
        entry = rates[engine] = {}
    images = entry.get("images")
    if not isinstance(images, dict):
        images = entry["images"] = {}
    overall = blend_rate(_rate(entry.get("rate")), nbytes, seconds)
    own = blend_rate(_rate(images.get(repository)) if repository else None, nbytes, seconds)
    if overall is None:
        return None
    entry["rate"] = overall
    if repository and own is not None:
        images[repository] = own
        while len(images) > MAX_REMEMBERED_IMAGES:  # oldest first (insertion order)
            del images[next(iter(images))]
    with contextlib.suppress(OSError):
        _write_json(unpack_rates_path(), rates)
    return own
