"""Python patterns translated to RE2 (core/linear.py): same lines matched, same groups.

Property tests compare RE2 with Python's ``re`` on random patterns built from the pieces
milestone files use, on random short lines; the Unicode classes are compared on every
code point of the Basic Multilingual Plane.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockprogress.core.linear import Untranslatable, compile_linear, translate

ATOMS = [
    "a", "b", "1", "é", "٣", " ", r"\.", "-", r"\d", r"\D", r"\w", r"\W", r"\s", r"\S",
    ".", "[a-c]", "[^a]", r"[\d\s-]", r"[^\w]", "[é-ë]", r"\x00", "^", "$", r"\A", r"\Z",
]  # fmt: skip


@st.composite
def patterns(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            inner = draw(patterns(depth + 1))
            kind = draw(st.sampled_from(["(?:{})", "({})", "(?:{}|{})", "(?i:{})", "(?s:{})"]))
            piece = kind.format(inner, draw(patterns(depth + 1)))
        else:
            piece = draw(st.sampled_from(ATOMS))
        if not piece.startswith(("^", "$", "\\A", "\\Z")):
            piece += draw(st.sampled_from(["", "", "*", "+", "?", "{1,3}", "*?", "+?", "{2}"]))
        parts.append(piece)
    return "".join(parts)


TEXT = st.text(alphabet="ab1é٣ .-\t\x00É\u2003x", max_size=12)


@settings(max_examples=300, deadline=None)
@given(body=patterns(), text=TEXT)
def test_re2_matches_the_same_lines_and_groups_as_re(body: str, text: str) -> None:
    # Lines never hold a newline (the log decoder splits on them): see the test below.
    pattern = f"(?P<value>{body})"
    try:
        expected = re.compile(pattern)
    except re.error:
        return
    try:
        linear = compile_linear(pattern)
    except Untranslatable:  # named, and tested below; milestones keep such patterns on re
        return
    line = text
    want, got = expected.search(line), linear.search(line)
    assert (want is None) == (got is None), (pattern, line, linear.translated)
    if want is not None and got is not None:
        assert got.group("value") == want.group("value"), (pattern, line, linear.translated)


@pytest.mark.parametrize("escape", [r"\d", r"\w", r"\s", r"\D", r"\W", r"\S"])
def test_unicode_classes_are_pythons_on_every_bmp_code_point(escape: str) -> None:
    linear = compile_linear(f"^{escape}$")
    python = re.compile(f"^{escape}$")
    differ = [
        hex(code)
        for code in range(0xD800)  # (surrogates cannot be encoded; above them, same tables)
        if unicodedata.category(chr(code)) != "Cn"  # assigned in Python's Unicode version
        and (linear.search(chr(code)) is None) != (python.search(chr(code)) is None)
    ]
    assert differ == []


def test_named_groups_keep_their_names_and_other_groups_stop_capturing() -> None:
    pattern = r"(\w+) complete: wrote (\d+) buffers.*distance=(?P<value>\d+) kB"
    linear = compile_linear(pattern)
    assert linear.groupindex == {"value": 1}
    found = linear.search("LOG:  checkpoint complete: wrote 34 buffers; distance=28481 kB, e")
    assert found is not None
    assert found.group("value") == "28481"
    assert "(?P<value>" in translate(pattern)


@pytest.mark.parametrize("pattern", [r"done$", r"(?P<value>\d+)$", r"^ready\s*$", r"(?m)^a$"])
def test_dollar_matches_before_a_final_newline_as_in_python(pattern: str) -> None:
    for text in ["done\n", "12\n", "ready \n", "a\nb", "done\n\n", "x"]:
        want = re.search(pattern, text) is not None
        assert (compile_linear(pattern).search(text) is not None) == want, (pattern, text)


def test_negated_categories_in_a_larger_class() -> None:
    for pattern in (r"[a\W]+", r"[\W\S]", r"(?:a|\W)b", r"[\d\S]"):
        python = re.compile(pattern)
        linear = compile_linear(pattern)
        for text in ("a b", "é!", "ab", "1 ", "٣x", "  "):
            want = python.search(text)
            got = linear.search(text)
            assert (want is None) == (got is None), (pattern, text)
            if want is not None and got is not None:
                assert got.group(0) == want.group(0), (pattern, text)


def test_ascii_flag_and_word_boundaries() -> None:
    assert compile_linear(r"(?a)^\d+$").search("٣") is None
    assert compile_linear(r"^\d+$").search("٣") is not None
    assert compile_linear(r"\bready\b").search("db ready.") is not None
    assert compile_linear(r"\bready\b").search("already") is None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "backreference"),
        (r"(?<=x)a", "lookahead or lookbehind"),
        (r"(?!x)a", "negative lookahead"),
        (r"(?>a)", "atomic group"),
        (r"a++", "possessive"),
        (r"[^\Wx]", "larger negated character class"),
        (r"a{2000}", "RE2 refuses it"),
    ],
)
def test_what_re2_cannot_run_is_named(pattern: str, reason: str) -> None:
    with pytest.raises(Untranslatable, match=reason):
        compile_linear(pattern)
