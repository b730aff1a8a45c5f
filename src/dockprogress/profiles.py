"""Where calibration profiles live: JSON files under the user's cache directory.

A profile named ``postgres-load`` is ``$XDG_CACHE_HOME/dockprogress/profiles/postgres-load.json``
(``~/.cache`` when ``XDG_CACHE_HOME`` is unset or not absolute, as the XDG spec says). A
value containing a path separator or ending in ``.json`` is used as the path itself.
Writes are atomic (a temporary file in the same folder, then ``os.replace``), so a crash or a
concurrent run never leaves half a profile. A missing or unreadable profile is an empty one:
a damaged cache must not stop a run, only its calibration.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from dockprogress.core.calibration import Profile, RunRecord

__all__ = ["load_profile", "profile_dir", "profile_path", "record_run", "save_profile"]


def profile_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if cache and os.path.isabs(cache) else Path.home() / ".cache"
    return base / "dockprogress" / "profiles"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(profile.to_dict(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def record_run(name_or_path: str | os.PathLike[str], run: RunRecord) -> Profile:
    """Add a successful run to the stored profile (keeping the last few) and save it."""
    profile = load_profile(name_or_path).with_run(run)
    save_profile(profile, name_or_path)
    return profile
