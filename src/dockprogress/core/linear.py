"""Python regular expressions run in linear time: translated to RE2, the same meaning.

A milestone pattern is written in Python's ``re`` syntax and meant with Python's semantics
(``(?P<value>\\d+)``, ``\\d`` for any Unicode decimal digit, ``$`` before a final newline).
Python's engine backtracks: ``.*a.*b`` is cubic in the line length. RE2 (``google-re2``)
runs in time linear in the line whatever the pattern, but its syntax and classes differ.
:func:`translate` bridges the two: it parses the pattern with Python's own parser and writes
the same tree in RE2 syntax, so that both engines agree on which lines match and on what
every group captures:

* ``\\d`` is ``\\p{Nd}``, ``\\w`` is ``[\\p{L}\\p{N}_]``, ``\\s`` is Python's whitespace
  set (RE2's own classes are ASCII); with ``re.ASCII`` (``(?a)``) the ASCII ones;
* ``.`` without DOTALL is ``[^\\n]``; ``$`` without MULTILINE is "at the end, or before a
  final newline" (``\\n?\\z``); ``\\Z`` is ``\\z``; named groups keep their names and numbers;
* flags (``i``, ``m``, ``s``, ``x``, ``a``, global or scoped) are applied while writing.

(``re2`` is the ``google-re2`` wheel; its compiled ``_re2`` matcher is called directly, since
the module-level ``search`` costs several microseconds of Python per line.)

Two documented differences remain, both from RE2 having no lookaround:

* ``\\b`` and ``\\B`` look at ASCII word characters only (RE2 has no Unicode word
  boundary), so ``\\bnaïve`` and Python disagree next to ``ï``;
* ``$`` takes a final newline into the match instead of stopping before it, so a pattern
  that goes on after ``$`` (``a$\\s``) differs on a text ending in a newline. Log lines
  never hold one (the decoder splits on newlines).

What RE2 cannot run (backreferences, lookahead and lookbehind, conditional, atomic groups
and possessive repeats, ``\\W`` or ``\\S`` inside a larger *negated* class, repeats over
1000)
raises :class:`Untranslatable` with the reason; :mod:`dockprogress.core.milestones` decides
what to do with such a pattern.

:func:`compile_linear` returns a :class:`LinearPattern`: ``search(line)`` gives ``None`` or
the match's ``group(name)``, like ``re.Pattern.search``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Final

import re2
from re2 import _re2

__all__ = ["LinearMatch", "LinearPattern", "Untranslatable", "compile_linear", "translate"]

_sre_parse: Any = importlib.import_module("re._parser")
_UNBOUNDED: Final[int] = _sre_parse.MAXREPEAT

#: Python's ``\s`` on str (``str.isspace``), as an RE2 class body.
UNICODE_SPACE: Final = (
    r"\x{9}-\x{d}\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}"
)
_UNICODE_WORD: Final = r"\p{L}\p{N}_"
_ASCII_SPACE: Final = r"\x{9}-\x{d}\x{20}"

# Class bodies for each category: (body, is_complement). A complement can only stand alone.
_CATEGORIES: Final[dict[tuple[str, bool], tuple[str, bool]]] = {
    ("CATEGORY_DIGIT", False): (r"\p{Nd}", False),
    ("CATEGORY_NOT_DIGIT", False): (r"\P{Nd}", False),
    ("CATEGORY_WORD", False): (_UNICODE_WORD, False),
    ("CATEGORY_NOT_WORD", False): (_UNICODE_WORD, True),
    ("CATEGORY_SPACE", False): (UNICODE_SPACE, False),
    ("CATEGORY_NOT_SPACE", False): (UNICODE_SPACE, True),
    ("CATEGORY_DIGIT", True): ("0-9", False),
    ("CATEGORY_NOT_DIGIT", True): (r"\D", False),
    ("CATEGORY_WORD", True): ("0-9A-Za-z_", False),
    ("CATEGORY_NOT_WORD", True): (r"\W", False),
    ("CATEGORY_SPACE", True): (_ASCII_SPACE, False),
    ("CATEGORY_NOT_SPACE", True): (_ASCII_SPACE, True),
}


class Untranslatable(ValueError):
    """The pattern uses something RE2 cannot run with Python's meaning (``str`` says what)."""


class LinearMatch:
    """A match found by RE2: ``group(name)`` as in ``re.Match`` (``None`` if it took no part)."""

    __slots__ = ("_encoded", "_groupindex", "_spans")

    def __init__(self, encoded: bytes, spans: Any, groupindex: dict[str, int]) -> None:
        self._encoded = encoded
        self._spans = spans
        self._groupindex = groupindex

    def group(self, key: str | int = 0) -> str | None:
        index = self._groupindex[key] if isinstance(key, str) else key
        start, end = self._spans[index]
        if start < 0:
            return None
        return self._encoded[start:end].decode("utf-8", "surrogatepass")


class LinearPattern:
    """A pattern compiled to RE2 after :func:`translate`; ``pattern`` is the Python one.

    Only the named groups in ``keep`` capture (the others are written as plain groups):
    RE2 then tracks fewer submatches. :meth:`search` calls RE2's matcher directly (the
    ``re2`` module's ``search`` adds Python-level offset bookkeeping this does not need).
    """

    __slots__ = ("_match", "groupindex", "pattern", "translated")

    def __init__(self, pattern: str, translated: str, regex: Any) -> None:
        self.pattern = pattern
        self.translated = translated
        self._match = regex.Match
        self.groupindex: dict[str, int] = {
            name.decode("utf-8"): index for name, index in regex.NamedCapturingGroups()
        }

    def search(self, line: str) -> LinearMatch | None:
        encoded = line.encode("utf-8", "surrogatepass")
        spans = self._match(_UNANCHORED, encoded, 0, len(encoded))
        if spans[0][0] < 0:
            return None
        return LinearMatch(encoded, spans, self.groupindex)


_UNANCHORED: Final[Any] = re2._Anchor.UNANCHORED


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own message on stderr
    return options


def compile_linear(pattern: str, *, keep: tuple[str, ...] = ("value",)) -> LinearPattern:
    """``pattern`` (valid for Python's ``re``) compiled to RE2; ``Untranslatable`` if not.

    Groups named in ``keep`` capture; every other group only groups.
    """
    translated = translate(pattern, keep=keep)
    regex = _re2.RE2(translated.encode("utf-8"), _options())
    if not regex.ok():
        message = regex.error()
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        raise Untranslatable(f"RE2 refuses it ({message})")
    return LinearPattern(pattern, translated, regex)


def translate(pattern: str, *, keep: tuple[str, ...] | None = None) -> str:
    """The RE2 pattern with the meaning Python gives ``pattern`` (see the module doc).

    With ``keep``, only the groups it names capture; by default every group does.
    """
    parsed = _sre_parse.parse(pattern)
    names = {index: name for name, index in parsed.state.groupdict.items()}
    return _Writer(names, keep).sequence(parsed, parsed.state.flags)


class _Writer:
    __slots__ = ("keep", "names")

    def __init__(self, names: dict[int, str], keep: tuple[str, ...] | None) -> None:
        self.names = names
        self.keep = keep

    def sequence(self, items: Any, flags: int) -> str:
        return "".join(self.item(op, arg, flags) for op, arg in items)

    def item(self, op: Any, arg: Any, flags: int) -> str:
        kind = str(op)
        if kind == "LITERAL":
            return _fold(_literal(arg), flags)
        if kind == "NOT_LITERAL":
            return _fold(f"[^{_literal(arg)}]", flags)
        if kind == "ANY":
            return r"[\x{0}-\x{10ffff}]" if flags & re.DOTALL else r"[^\n]"
        if kind == "IN":
            return _fold(_char_class(arg, flags), flags)
        if kind in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, body = arg
            text = f"(?:{self.sequence(body, flags)})" + _quantifier(low, high)
            return text + "?" if kind == "MIN_REPEAT" else text
        if kind == "SUBPATTERN":
            group, add, remove, body = arg
            inner = self.sequence(body, (flags | add) & ~remove)
            if group is None:
                return f"(?:{inner})"
            name = self.names.get(group)
            if self.keep is not None and name not in self.keep:
                return f"(?:{inner})"
            return f"(?P<{name}>{inner})" if name else f"({inner})"
        if kind == "BRANCH":
            return "(?:" + "|".join(self.sequence(b, flags) for b in arg[1]) + ")"
        if kind == "AT":
            return _anchor(str(arg), flags)
        raise Untranslatable(_UNSUPPORTED.get(kind, f"it uses {kind.lower()}"))


_UNSUPPORTED: Final = {
    "GROUPREF": "it uses a backreference",
    "GROUPREF_EXISTS": "it uses a conditional group (?(n)...)",
    "ASSERT": "it uses a lookahead or lookbehind",
    "ASSERT_NOT": "it uses a negative lookahead or lookbehind",
    "ATOMIC_GROUP": "it uses an atomic group (?>...)",
    "POSSESSIVE_REPEAT": "it uses a possessive repeat (a++)",
}


def _literal(code: int) -> str:
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    if char.isascii() and char.isprintable():
        return "\\" + char
    return f"\\x{{{code:x}}}"


def _fold(text: str, flags: int) -> str:
    if not flags & re.IGNORECASE:
        return text
    if flags & re.ASCII:
        raise Untranslatable("it combines IGNORECASE with ASCII (RE2 folds Unicode case)")
    return f"(?i:{text})"


def _quantifier(low: int, high: int) -> str:
    if high == _UNBOUNDED:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _char_class(items: Any, flags: int) -> str:
    negate = False
    parts: list[str] = []
    complements: list[str] = []  # \W, \S: RE2 classes cannot hold a negated union
    for op, arg in items:
        kind = str(op)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            parts.append(_literal(arg))
        elif kind == "RANGE":
            parts.append(f"{_literal(arg[0])}-{_literal(arg[1])}")
        elif kind == "CATEGORY":
            body, is_complement = _CATEGORIES[(str(arg), bool(flags & re.ASCII))]
            (complements if is_complement else parts).append(body)
        else:
            raise Untranslatable(f"it uses {kind.lower()} in a character class")
    if not complements:
        return ("[^" if negate else "[") + "".join(parts) + "]"
    if negate:
        if parts or len(complements) > 1:
            raise Untranslatable(r"it puts \W or \S inside a larger negated character class")
        return f"[{complements[0]}]"
    # [a\W] is "a, or not a word character": an alternation of classes.
    choices = ([f"[{''.join(parts)}]"] if parts else []) + [f"[^{c}]" for c in complements]
    return choices[0] if len(choices) == 1 else "(?:" + "|".join(choices) + ")"


def _anchor(code: str, flags: int) -> str:
    multiline = bool(flags & re.MULTILINE)
    if code == "AT_BEGINNING":
        return "(?m:^)" if multiline else "^"
    if code == "AT_BEGINNING_STRING":
        return r"\A"
    if code == "AT_END":
        return "(?m:$)" if multiline else r"(?:\n?\z)"
    if code == "AT_END_STRING":
        return r"\z"
    if code == "AT_BOUNDARY":
        return r"\b"
    if code == "AT_NON_BOUNDARY":
        return r"\B"
    raise Untranslatable(f"it uses the anchor {code.lower()}")
