"""One regex search that tells most lines apart from a set of patterns none of them match.

Most log lines match no milestone, and searching each of 50 patterns in turn costs 50 regex
calls per line. But nearly every pattern has a run of plain characters that any match must
contain (``checkpoint complete: wrote`` in ``checkpoint complete: wrote \\d+ buffers``): its
**guard**. A line that holds none of the guards matches none of those patterns, and one
search of all the guards at once, compiled as a trie (``ab(?:c|d)``: at each position at most
one branch goes on), answers that in about the time of a single pattern.

* :func:`guard` is the guard of one pattern, or ``""`` when it has none that is worth it (a
  case-insensitive pattern, a top-level alternation, plain runs shorter than
  :data:`MIN_GUARD`): such a pattern is searched on every line.
* :func:`required_literals` is every run of plain characters a match must contain (single
  characters too, inside groups and repeats that must match at least once): testing them
  all with ``in`` turns away most lines that hold a guard but cannot match, before any
  regex runs.
* :func:`trie_pattern` compiles a set of guards into the pattern that finds any of them;
  :class:`GuardSet` holds it, and tells which guards a line holds when it holds any.

Both are exact: a pattern can only match a line that contains its guard. Which guard is
chosen only changes the speed: the longest plain run, started at its rarest character (a
regex search skips ahead quickly to where a guard can start).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["MIN_GUARD", "GuardSet", "guard", "required_literals", "trie_pattern"]

#: Plain runs shorter than this are not used as guards (they are on most lines anyway).
MIN_GUARD: Final = 3
#: A guard is cut to start at its rarest character, keeping at least this many characters.
_KEEP: Final = 5

_sre_parse: Any = importlib.import_module("re._parser")

# Characters by how often they are in log text, most frequent first; any other character
# (capitals, most punctuation) counts as rarer than all of these.
_COMMON: Final = " 0123456789etaoinsr:.-hldcu/mfpg_=,wyb[]()vkxjqz"


def guard(pattern: str) -> str:
    """Plain text every match of ``pattern`` contains, or ``""`` (see the module doc)."""
    try:
        items = _sre_parse.parse(pattern)
    except re.error:
        return ""
    if items.state.flags & re.IGNORECASE:
        return ""
    longest, run = "", []
    for op, arg in items:  # the top-level sequence: each item matches after the one before
        if str(op) == "LITERAL":
            run.append(chr(arg))
            continue
        longest = max(longest, "".join(run), key=len)
        run = []
    longest = max(longest, "".join(run), key=len)
    if len(longest) < MIN_GUARD:
        return ""
    starts = range(max(1, len(longest) - _KEEP + 1))
    start = max(starts, key=lambda i: (_rarity(longest[i]), -i))
    return longest[start:]


def required_literals(pattern: str) -> tuple[str, ...]:
    """Every run of plain characters each match of ``pattern`` contains, longest first
    (``()`` for a case-insensitive pattern or one Python cannot parse)."""
    try:
        items = _sre_parse.parse(pattern)
    except re.error:
        return ()
    if items.state.flags & re.IGNORECASE:
        return ()
    found: list[str] = []
    _collect_literals(items, found)
    return tuple(sorted({word for word in found if word}, key=lambda w: (-len(w), w)))


def _collect_literals(items: Any, found: list[str]) -> None:
    """Append the literal runs of a sequence every match goes through (see above)."""
    run: list[str] = []
    for op, arg in items:
        kind = str(op)
        if kind == "LITERAL":
            run.append(chr(arg))
            continue
        found.append("".join(run))
        run = []
        if kind == "SUBPATTERN":
            add_flags, body = arg[1], arg[3]
            if not add_flags & re.IGNORECASE:  # (?i:...) matches other cases too
                _collect_literals(body, found)
        elif kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and arg[0] >= 1:
            _collect_literals(arg[2], found)  # matched at least once
        elif kind == "ATOMIC_GROUP":
            _collect_literals(arg, found)
        # an alternation, a class, a lookaround, an optional part: nothing certain
    found.append("".join(run))


def _rarity(char: str) -> int:
    found = _COMMON.find(char)
    return len(_COMMON) if found < 0 else found


def trie_pattern(guards: Iterable[str]) -> str:
    """A regex that finds any of ``guards`` (non-empty strings) in a line."""
    trie: dict[str, Any] = {}
    for word in guards:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a guard ends here
    return _branch(trie)


def _branch(node: dict[str, Any]) -> str:
    if "" in node:
        return ""  # a shorter guard ends here: finding it is enough
    alternatives = [re.escape(char) + _branch(node[char]) for char in sorted(node)]
    if len(alternatives) == 1:
        return alternatives[0]
    return "(?:" + "|".join(alternatives) + ")"


class GuardSet:
    """Guards compiled for the two questions: does a line hold any (``search``), which
    (``present``)."""

    __slots__ = ("_longer", "search")

    def __init__(self, guards: Iterable[str]) -> None:
        distinct = sorted(set(guards))
        pattern = trie_pattern(distinct)
        self.search = re.compile(pattern).search
        # At each position the trie stops at the shortest guard found there; every longer
        # guard found there starts with it, so only those need a look.
        self._longer = {g: tuple(h for h in distinct if h.startswith(g)) for g in distinct}

    def present(self, line: str, first: re.Match[str] | None = None) -> set[str]:
        """Every guard that occurs in ``line``; ``first``: ``search(line)``'s hit when the
        caller has it (the search then starts after it)."""
        found: set[str] = set()
        search = self.search
        hit = search(line) if first is None else first
        while hit is not None:  # (a search from each hit on: guards may overlap)
            start = hit.start()
            for word in self._longer[hit.group()]:
                if line.startswith(word, start):
                    found.add(word)
            hit = search(line, start + 1)
        return found
