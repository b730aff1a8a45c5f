"""``dockprogress.__all__`` is exactly the table of exported names in the docs.

The table lives between ``<!-- exports:start -->`` and ``<!-- exports:end -->`` in
docs/reference.md (any README.md or docs/*.md page holding one is checked the same way): one
source of truth, which each tracker's author extends when exporting a name.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

import dockprogress

REPO = Path(__file__).resolve().parents[2]
_TABLE = re.compile(r"<!-- exports:start -->\n(?P<table>.*?)<!-- exports:end -->", re.S)
_ROW = re.compile(r"^\| `(?P<name>[A-Za-z_][A-Za-z0-9_]*)` \|", re.M)


def documented(path: Path) -> list[str] | None:
    if not path.exists():
        return None
    match = _TABLE.search(path.read_text(encoding="utf-8"))
    if match is None:
        return None
    return _ROW.findall(match["table"])


PAGES = ("README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")))
SOURCES = [name for name in PAGES if documented(REPO / name) is not None]


def test_the_docs_list_the_exports() -> None:
    assert "docs/reference.md" in SOURCES


@pytest.mark.parametrize("source", SOURCES)
def test_all_is_what_the_docs_say(source: str) -> None:
    names = documented(REPO / source)
    assert names is not None
    assert len(names) == len(set(names)), "a name is listed twice"
    assert sorted(names) == sorted(dockprogress.__all__)


def test_every_export_exists_and_nothing_public_is_unlisted() -> None:
    for name in dockprogress.__all__:
        assert getattr(dockprogress, name, None) is not None, name
    # Submodules become attributes once imported; any other public name must be exported.
    stray = {
        name
        for name, value in vars(dockprogress).items()
        if not name.startswith("_")
        and name not in dockprogress.__all__
        and not isinstance(value, ModuleType)
    }
    assert not stray
