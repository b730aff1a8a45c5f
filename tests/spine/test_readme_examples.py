"""The Python examples of the README run.

Every fenced block opened with `` ```python `` is executed in a fresh namespace; a block
preceded by the line ``<!-- test: engine -->`` needs the real test bed and is marked
``engine``. An example fails the test if it raises, including through its own ``assert``s.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md",)
_BLOCK = re.compile(
    r"(?P<marker><!-- test: (?P<kind>\w+) -->\n)?```python\n(?P<code>.*?)^```", re.S | re.M
)


def _examples() -> list[object]:
    seen: set[str] = set()
    params: list[object] = []
    for name in DOCUMENTS:
        path = REPO / name
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for match in _BLOCK.finditer(text):
            code = match["code"]
            if code in seen:  # an example shown twice runs once
                continue
            seen.add(code)
            line = text.count("\n", 0, match.start("code")) + 1
            marks = [pytest.mark.engine] if match["kind"] == "engine" else []
            params.append(pytest.param(name, line, code, marks=marks, id=f"{name}:{line}"))
    return params


EXAMPLES = _examples()


def test_the_documents_have_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize(("document", "line", "code"), EXAMPLES)
def test_example_runs(document: str, line: int, code: str) -> None:
    compiled = compile("\n" * (line - 1) + code, str(REPO / document), "exec")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compiled, {"__name__": "__readme__"})
    # Examples print what they show; a block that prints must have printed something real.
    if "print(" in code:
        assert output.getvalue().strip()
