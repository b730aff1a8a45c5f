"""The examples of the README and of the documentation site (docs/*.md) run.

Every fenced block opened with `` ```python `` is executed in a fresh namespace; a block
preceded by the line ``<!-- test: engine -->`` needs the real test bed and is marked
``engine``. An example fails the test if it raises, including through its own ``assert``s.
Every `` ```toml `` block parses (a milestone file loads as one, a bar file as one) and every
`` ```json `` block is JSON. Shell blocks are shown, not run.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tomllib
from pathlib import Path

import pytest

from dockprogress.core.barfiles import parse_bars
from dockprogress.core.milestones import parse_milestones

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")))
_BLOCK = re.compile(
    r"(?P<marker><!-- test: (?P<kind>\w+) -->\n)?```(?P<lang>python|toml|json)\n(?P<code>.*?)^```",
    re.S | re.M,
)


def _blocks(lang: str) -> list[object]:
    seen: set[str] = set()
    params: list[object] = []
    for name in DOCUMENTS:
        path = REPO / name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            code = match["code"]
            if match["lang"] != lang or code in seen:  # an example shown twice runs once
                continue
            seen.add(code)
            line = text.count("\n", 0, match.start("code")) + 1
            marks = [pytest.mark.engine] if match["kind"] == "engine" else []
            params.append(pytest.param(name, line, code, marks=marks, id=f"{name}:{line}"))
    return params


EXAMPLES = _blocks("python")
TOML_BLOCKS = _blocks("toml")
JSON_BLOCKS = _blocks("json")


def test_the_documents_have_examples() -> None:
    assert len(EXAMPLES) >= 5
    assert len(TOML_BLOCKS) >= 2
    assert any(str(p.values[0]).startswith("docs/") for p in EXAMPLES)


@pytest.mark.parametrize(("document", "line", "code"), EXAMPLES)
def test_example_runs(document: str, line: int, code: str) -> None:
    compiled = compile("\n" * (line - 1) + code, str(REPO / document), "exec")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compiled, {"__name__": "__readme__"})
    # Examples print what they show; a block that prints must have printed something real.
    if "print(" in code:
        assert output.getvalue().strip()


@pytest.mark.parametrize(("document", "line", "code"), TOML_BLOCKS)
def test_toml_block_parses(document: str, line: int, code: str) -> None:
    data = tomllib.loads(code)
    source = f"{document}:{line}"
    if "milestone" in data:
        assert len(parse_milestones(code, source=source)) == len(data["milestone"])
    if "bar" in data:
        assert parse_bars(code, source=source) is not None


@pytest.mark.parametrize(("document", "line", "code"), JSON_BLOCKS)
def test_json_block_parses(document: str, line: int, code: str) -> None:
    for text in code.splitlines():
        assert isinstance(json.loads(text), dict)
