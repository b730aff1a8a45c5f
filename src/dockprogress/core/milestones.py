"""Milestones: the log lines that say how far a service has got, compiled once.

A :class:`Milestone` is ``(pattern, progress, description)`` as in the seed's
``ProgressMilestone`` (kept as an alias): ``progress`` is 0..100, or :data:`DYNAMIC` (the
seed's -1) for a line that repeats while work goes on (a PostgreSQL checkpoint). A dynamic
milestone may capture a number in the named group ``value`` (``distance=(?P<value>\\d+) kB``)
and may state the ``expected`` sum of those numbers for a whole run.

A :class:`MilestoneSet` validates and compiles every pattern when it is built, so a bad
pattern is a :class:`~dockprogress.errors.MilestoneConfigError` naming the milestone, raised
before any log is read (CLI exit status 2), never a pattern that silently never matches.
:meth:`MilestoneSet.match` is one pass per line: patterns are searched in declared order and
the first that matches wins.

Guard against catastrophic backtracking (a regex that takes exponential time on one line):

1. a quantified group or repeat whose body itself contains an unbounded repeat (``(a+)+``,
   ``(\\w*\\s?)*``, ``(?:x|y+){2,}``), or a varying one (``(\\d{1,3},?)+``), is rejected
   at load, since that is the shape of nearly every exponential pattern; so are the other
   two: alternatives that can start with the same character in a repeated group
   (``(a|aa)+``, ``(.|\\s)*``) and a repeated group that can match nothing (``(a?){25}``);
2. lines are cut at ``max_line`` characters before any pattern sees them (default 2048; a
   PostgreSQL checkpoint line is ~300).

Matching in linear time: Python's engine backtracks, so even an accepted pattern can be
polynomial (``.*a.*b`` is cubic: seconds on one hostile 2048-character line). Each pattern
therefore runs on the engine that is linear for it:

* Python's ``re`` when its search is linear anyway, which is read from the parsed pattern
  (the common case, and the fastest per call): no unbounded repeat, or only one that ends
  the pattern, or a pattern anchored at the start (``^``, ``\\A``) with at most one more;
* Python's ``re`` too for a pattern led by plain text with at most one free repeat, whose
  search takes at most ``(max_line / lead) x max_line`` steps (see ``_led_by_text``: the
  PostgreSQL checkpoint pattern is one);
* otherwise RE2 (:mod:`dockprogress.core.linear`: the same pattern, the same groups and
  classes, translated to RE2 syntax), linear whatever the pattern;
* a pattern neither can take (a backreference or lookaround, with repeats) is refused at
  load with the reason, rather than risking seconds per line.

``MilestoneSet.engines`` says which engine each milestone got (``"re"`` or ``"re2"``).

Milestone files are TOML (see :func:`load_milestones`), with keys ``name`` (the default
profile name), ``prior`` (optional: a profile JSON file, relative to the milestone file, used
as the calibration until a local profile has a run; see
:func:`dockprogress.core.calibration.prior_from_runs`) and ``[[milestone]]`` tables of
``pattern``, ``progress`` (number or ``"dynamic"``), ``description`` and optional ``name``
(the phase word; default: derived from the description) and ``expected`` (dynamic
milestones only). Any other key is an error.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from dockprogress.core.calibration import Profile
from dockprogress.core.linear import LinearMatch, LinearPattern, Untranslatable, compile_linear
from dockprogress.core.prefilter import GuardSet, guard
from dockprogress.errors import MilestoneConfigError

__all__ = [
    "DYNAMIC",
    "MAX_MATCH_LINE",
    "Milestone",
    "MilestoneMatch",
    "MilestoneSet",
    "ProgressMilestone",
    "load_milestones",
    "parse_milestones",
]

#: The seed's ``Progress: -1``: a milestone that repeats and moves progress within its band.
DYNAMIC: Final = -1.0

#: Lines are cut to this many characters before matching (second backtracking guard).
MAX_MATCH_LINE: Final = 2 * 1024

# The stdlib's own regex parser, to inspect a pattern's structure (no public API for it).
_sre_parse: Any = importlib.import_module("re._parser")
_REPEATS: Final = frozenset({"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"})
_UNBOUNDED: Final[int] = _sre_parse.MAXREPEAT

#: Up to this many distinct guards, a line is screened with one ``in`` test per guard.
_FEW_GUARDS: Final = 8

_MILESTONE_KEYS: Final = frozenset({"pattern", "progress", "description", "name", "expected"})
_FILE_KEYS: Final = frozenset({"name", "milestone", "prior"})


@dataclass(frozen=True, slots=True)
class Milestone:
    """A log pattern that tells progress. ``progress`` is 0..100 or :data:`DYNAMIC`."""

    pattern: str
    progress: float
    description: str = ""
    name: str | None = None
    expected: float | None = None

    @property
    def dynamic(self) -> bool:
        return self.progress == DYNAMIC

    @property
    def final(self) -> bool:
        return self.progress == 100


#: The seed's name for a milestone.
ProgressMilestone = Milestone


@dataclass(frozen=True, slots=True)
class MilestoneMatch:
    """A line that matched milestone number ``index``; ``value`` is the captured number."""

    index: int
    milestone: Milestone
    name: str
    line: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class _Compiled:
    index: int
    milestone: Milestone
    name: str
    regex: re.Pattern[str] | LinearPattern = field(repr=False)
    has_value: bool
    guard: str  # text every match contains, or "" (see dockprogress.core.prefilter)


class MilestoneSet:
    """Validated, compiled milestones in declared order.

    ``milestones`` are :class:`Milestone` objects, ``(pattern, progress, description)``
    tuples or mappings with the TOML keys. Raises ``MilestoneConfigError`` naming the first
    milestone that cannot be used.
    """

    __slots__ = (
        "_by_guard",
        "_compiled",
        "_guards",
        "_levels",
        "_unguarded",
        "_words",
        "engines",
        "max_line",
        "milestones",
        "name",
        "names",
        "prior",
        "screen",
    )

    def __init__(
        self,
        milestones: Iterable[Milestone | tuple[Any, ...] | Mapping[str, Any]],
        *,
        name: str | None = None,
        max_line: int = MAX_MATCH_LINE,
        prior: Profile | None = None,
    ) -> None:
        self.name = name
        #: The shipped calibration to use while no local profile has a run (or ``None``).
        self.prior = prior
        self.max_line = max_line
        compiled: list[_Compiled] = []
        seen_names: set[str] = set()
        for index, raw in enumerate(milestones):
            milestone = _coerce(index, raw)
            label = _label(index, milestone)
            regex = _compile(label, milestone, max_line)
            phase = milestone.name or _slug(milestone.description) or f"milestone-{index + 1}"
            if phase in seen_names:
                if milestone.name:
                    raise MilestoneConfigError(f"{label}: name {phase!r} is used twice")
                phase = f"{phase}-{index + 1}"
            seen_names.add(phase)
            has_value = "value" in regex.groupindex
            if has_value and not milestone.dynamic:
                raise MilestoneConfigError(
                    f"{label}: a (?P<value>...) group only counts on a dynamic milestone"
                )
            if milestone.expected is not None and not milestone.dynamic:
                raise MilestoneConfigError(f"{label}: 'expected' only applies to a dynamic one")
            compiled.append(
                _Compiled(index, milestone, phase, regex, has_value, guard(milestone.pattern))
            )
        if not compiled:
            raise MilestoneConfigError("a milestone set needs at least one milestone")
        self._compiled = tuple(compiled)
        # One search for every guard at once: a line with none of them can only match the
        # milestones without a guard; one that has some, those and the ones it has a guard of.
        guards = [c.guard for c in compiled if c.guard]
        self._guards = GuardSet(guards) if guards else None
        self._unguarded = tuple(c.index for c in compiled if not c.guard)
        # A few guards, on every milestone: one ``in`` test each is quicker than the regex
        # (and then the candidates are the milestones whose own guard is in the line).
        words = tuple(dict.fromkeys(guards))
        self._words = words if len(words) <= _FEW_GUARDS and not self._unguarded else None
        #: A C-level test that gives ``None`` for a line no milestone can match (no guard
        #: in it, and every milestone has one); ``None`` where there is no such test (then
        #: :meth:`match` screens the line itself). Read by the trackers' hot paths.
        self.screen = (
            self._guards.search
            if self._guards is not None and self._words is None and not self._unguarded
            else None
        )
        self._by_guard: dict[str, tuple[int, ...]] = {}
        for item in compiled:
            if item.guard:
                self._by_guard[item.guard] = (*self._by_guard.get(item.guard, ()), item.index)
        self.milestones: tuple[Milestone, ...] = tuple(c.milestone for c in compiled)
        # (read by every tracker built on the set: computed once)
        self._levels = tuple(sorted({m.progress for m in self.milestones if m.progress != DYNAMIC}))
        self.names: tuple[str, ...] = tuple(c.name for c in compiled)
        #: ``"re"`` or ``"re2"`` for each milestone (see the module docstring).
        self.engines: tuple[str, ...] = tuple(
            "re" if isinstance(c.regex, re.Pattern) else "re2" for c in compiled
        )

    def __len__(self) -> int:
        return len(self._compiled)

    @property
    def final_index(self) -> int | None:
        """Index of the first ``progress = 100`` milestone, or ``None`` (done on exit 0)."""
        for item in self._compiled:
            if item.milestone.final:
                return item.index
        return None

    def fixed_levels(self) -> tuple[float, ...]:
        """The distinct fixed progress values, ascending."""
        return self._levels

    def match(self, line: str) -> MilestoneMatch | None:
        """The first milestone (declared order) whose pattern is found in ``line``."""
        if len(line) > self.max_line:
            line = line[: self.max_line]
        words = self._words
        if words is not None:
            for word in words:
                if word in line:
                    break
            else:
                return None  # the usual case: no guard in the line, no pattern tried
            for item in self._compiled:
                if item.guard in line:
                    found = item.regex.search(line)
                    if found is not None:
                        return _matched(item, line, found)
            return None
        guards = self._guards
        candidates: Iterable[int]
        if guards is None:
            candidates = self._unguarded  # (every milestone)
        else:
            hit = guards.search(line)
            if hit is None:
                candidates = self._unguarded  # the usual case: one search, no pattern tried
            else:
                by_guard = self._by_guard
                hits = [i for word in guards.present(line, hit) for i in by_guard[word]]
                candidates = sorted((*self._unguarded, *hits))  # declared order
        return self._first_of(candidates, line)

    def match_screened(self, line: str, hit: re.Match[str]) -> MilestoneMatch | None:
        """:meth:`match` for a line that :attr:`screen` found ``hit`` in (its search is not
        made again)."""
        guards = self._guards
        if guards is None or self.screen is None or len(line) > self.max_line:
            return self.match(line)  # (a cut line: the hit may lie past the cut)
        by_guard = self._by_guard
        candidates = sorted(i for word in guards.present(line, hit) for i in by_guard[word])
        return self._first_of(candidates, line)

    def _first_of(self, candidates: Iterable[int], line: str) -> MilestoneMatch | None:
        """The first of the ``candidates`` (declared order) whose pattern is in ``line``."""
        compiled = self._compiled
        for index in candidates:
            item = compiled[index]
            found = item.regex.search(line)
            if found is not None:
                return _matched(item, line, found)
        return None


def _matched(item: _Compiled, line: str, found: re.Match[str] | LinearMatch) -> MilestoneMatch:
    value: float | None = None
    if item.has_value:
        captured = found.group("value")
        try:
            value = float(captured) if captured is not None else None
        except ValueError:
            value = None
    # MilestoneMatch is a frozen, slotted dataclass: its __init__ stores each field through
    # object.__setattr__. Filled through the slots' descriptors instead: the same object, for
    # a third of the work (as Task.snapshot does for events; tests/perf compares the two).
    if not _DIRECT_MATCH:
        return MilestoneMatch(item.index, item.milestone, item.name, line, value)
    match = _new_match(MilestoneMatch)
    _set_index(match, item.index)
    _set_milestone(match, item.milestone)
    _set_name(match, item.name)
    _set_line(match, line)
    _set_value(match, value)
    return match


_MATCH_FIELDS: Final = ("index", "milestone", "name", "line", "value")
_DIRECT_MATCH: Final = tuple(
    f.name for f in dataclasses.fields(MilestoneMatch)
) == _MATCH_FIELDS and not hasattr(MilestoneMatch, "__post_init__")
_new_match: Final = object.__new__
_MATCH_SETTERS: Final[tuple[Any, ...]] = (
    tuple(MilestoneMatch.__dict__[name].__set__ for name in _MATCH_FIELDS)
    if _DIRECT_MATCH
    else (None,) * len(_MATCH_FIELDS)
)
_set_index, _set_milestone, _set_name, _set_line, _set_value = _MATCH_SETTERS


def parse_milestones(
    text: str, *, source: str = "<milestones>", base: Path | None = None
) -> MilestoneSet:
    """Build a set from TOML text; ``MilestoneConfigError`` names ``source`` and the problem.

    ``base`` is the folder a ``prior`` file is found in (the milestone file's own); without
    it the ``prior`` key is checked but not read (text alone has no folder to read it from).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MilestoneConfigError(f"{source}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise MilestoneConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise MilestoneConfigError(f"{source}: 'name' must be a string")
    entries = data.get("milestone")
    if not isinstance(entries, list) or not entries:
        raise MilestoneConfigError(f"{source}: no [[milestone]] tables")
    prior = _load_prior(data.get("prior"), base, source, name)
    try:
        return MilestoneSet(entries, name=name, prior=prior)
    except MilestoneConfigError as exc:
        raise MilestoneConfigError(f"{source}: {exc}") from exc


def _load_prior(ref: object, base: Path | None, source: str, name: str | None) -> Profile | None:
    if ref is None:
        return None
    if not isinstance(ref, str) or not ref:
        raise MilestoneConfigError(f"{source}: 'prior' must be a file name")
    if base is None:
        return None
    path = base / ref
    try:
        prior = Profile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise MilestoneConfigError(f"{source}: cannot read the prior {path}: {exc}") from exc
    return Profile(name or prior.name, prior.runs, prior.keep)


def load_milestones(path: str | Path) -> MilestoneSet:
    """Read a TOML milestone file; an unreadable file is a ``MilestoneConfigError`` too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MilestoneConfigError(f"cannot read milestone file {path}: {exc}") from exc
    return parse_milestones(text, source=str(path), base=path.parent)


# --------------------------------------------------------------------------- validation


def _coerce(index: int, raw: Milestone | tuple[Any, ...] | Mapping[str, Any]) -> Milestone:
    where = f"milestone #{index + 1}"
    if isinstance(raw, Milestone):
        fields: dict[str, Any] = {
            "pattern": raw.pattern,
            "progress": raw.progress,
            "description": raw.description,
            "name": raw.name,
            "expected": raw.expected,
        }
    elif isinstance(raw, tuple):
        if not 2 <= len(raw) <= 3:
            raise MilestoneConfigError(f"{where}: expected (pattern, progress, description)")
        fields = dict(zip(("pattern", "progress", "description"), raw, strict=False))
    elif isinstance(raw, Mapping):
        unknown = sorted(set(raw) - _MILESTONE_KEYS)
        if unknown:
            raise MilestoneConfigError(
                f"{where} ({raw.get('pattern')!r}): unknown key(s) {', '.join(unknown)}"
            )
        fields = dict(raw)
    else:
        raise MilestoneConfigError(f"{where}: not a milestone: {raw!r}")
    pattern = fields.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise MilestoneConfigError(f"{where}: 'pattern' must be a non-empty string")
    where = f"{where} ({pattern!r})"
    progress = fields.get("progress")
    if progress in ("dynamic", DYNAMIC):
        progress = DYNAMIC
    elif isinstance(progress, bool) or not isinstance(progress, int | float):
        raise MilestoneConfigError(f"{where}: 'progress' must be 0..100 or \"dynamic\"")
    elif not 0 <= progress <= 100:
        raise MilestoneConfigError(f"{where}: progress {progress} is outside 0..100")
    description = fields.get("description") or ""
    if not isinstance(description, str):
        raise MilestoneConfigError(f"{where}: 'description' must be a string")
    name = fields.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise MilestoneConfigError(f"{where}: 'name' must be a non-empty string")
    expected = fields.get("expected")
    if expected is not None and (
        isinstance(expected, bool) or not isinstance(expected, int | float) or expected <= 0
    ):
        raise MilestoneConfigError(f"{where}: 'expected' must be a positive number")
    return Milestone(
        pattern,
        float(progress),
        description,
        name,
        None if expected is None else float(expected),
    )


def _label(index: int, milestone: Milestone) -> str:
    return f"milestone #{index + 1} ({milestone.pattern!r})"


def _compile(label: str, milestone: Milestone, max_line: int) -> re.Pattern[str] | LinearPattern:
    try:
        regex = re.compile(milestone.pattern)
    except re.error as exc:
        raise MilestoneConfigError(f"{label}: invalid pattern: {exc}") from exc
    parsed = _sre_parse.parse(milestone.pattern)
    if _has_nested_repeat(parsed, inside_repeat=False):
        raise MilestoneConfigError(
            f"{label}: nested unbounded repeats (like (a+)+), overlapping alternatives in a"
            " repeated group (like (a|aa)+) or a repeated group that can match nothing (like"
            " (a?){20}) can backtrack catastrophically; rewrite the pattern without them"
        )
    if _linear_under_re(parsed) or _led_by_text(parsed, max_line):
        return regex
    try:
        return compile_linear(milestone.pattern)
    except Untranslatable as exc:
        raise MilestoneConfigError(
            f"{label}: {exc}, which the linear-time engine (RE2) cannot run, and its repeats"
            " can make Python's engine take seconds on one line; drop the lookaround or"
            " backreference, or anchor the pattern at the start (^) with a single repeat"
        ) from exc


def _linear_under_re(items: Any) -> bool:
    """True when Python's backtracking search of the pattern is linear in the line.

    Without an unbounded repeat, each start position costs a bounded number of steps. A
    repeat that ends the pattern cannot fail after it has its minimum, so it is free. A
    pattern anchored at the start is tried at one position, and one repeat makes that one
    attempt linear.
    """
    multiline = bool(items.state.flags & re.MULTILINE)  # then ^ starts every line
    items = list(items)
    if items and str(items[-1][0]) in _REPEATS:
        items = items[:-1]  # the trailing repeat: a match once its minimum is reached
    repeats = _unbounded_repeats(items)
    if repeats == 0:
        return True
    first = str(items[0][1]) if items and str(items[0][0]) == "AT" else ""
    anchored = first == "AT_BEGINNING_STRING" or (first == "AT_BEGINNING" and not multiline)
    return anchored and repeats == 1


#: The most steps (line characters looked at, times a small constant) that Python's search
#: of a text-led pattern may take on one line: 2048 x 2048 / 16, a millisecond or two.
_LED_BUDGET: Final = MAX_MATCH_LINE * MAX_MATCH_LINE // 16
_sre_compiler: Any = importlib.import_module("re._compiler")


def _led_by_text(items: Any, max_line: int) -> bool:
    """True when Python's search of the pattern takes at most ``(max_line / lead) x
    max_line`` steps on a line: it starts with plain text (the lead: a string, or an
    alternation of strings) whose occurrences cannot overlap, so at most ``max_line /
    lead`` positions get past it; after it, each position costs at most a few passes over
    the line, because what follows is plain characters, single-character items and repeats
    of one character that cannot give anything back (each followed by a character it does
    not match), except at most one free repeat (``.*``), which must be followed by plain
    text that cannot overlap itself, after which the repeats cannot take that text's first
    character (so the attempts after its occurrences never cover the same characters).

    ``(?:checkpoint|restartpoint) complete: wrote \\d+ buffers.*distance=(?P<value>\\d+) kB``
    is such a pattern; ``.*a.*b`` (no lead, two free repeats) is not.
    """
    flags = items.state.flags
    if flags & (re.IGNORECASE | re.MULTILINE):
        return False
    sequence = _flattened(items)
    if sequence is None:
        return False
    if sequence and str(sequence[-1][0]) in _REPEATS:
        sequence = sequence[:-1]  # the trailing repeat: a match once its minimum is reached
    leads, rest = _lead(sequence)
    if not leads or min(map(len, leads)) * _LED_BUDGET < max_line * max_line:
        return False
    if _overlapping(leads):
        return False
    free = False
    after_free = ""  # the first character of the text after the free repeat
    for index, (op, arg) in enumerate(rest):
        kind = str(op)
        if kind in ("LITERAL", "NOT_LITERAL", "ANY", "IN", "AT"):
            continue
        if kind not in _REPEATS:
            return False  # an alternation, a lookaround, a backreference: not read here
        body = arg[2]
        if len(body) != 1 or str(body[0][0]) not in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            return False
        following = rest[index + 1] if index + 1 < len(rest) else None
        if following is None or str(following[0]) != "LITERAL":
            return False
        single = _sre_compiler.compile(_sre_parse.SubPattern(items.state, body), flags)
        gives_back = single.fullmatch(chr(following[1])) is not None
        if not gives_back and not (after_free and single.fullmatch(after_free)):
            continue  # it takes a run and keeps it: trying it costs the run, once
        if free:
            return False  # a second free repeat
        free = True
        text = _literal_run(rest[index + 1 :])
        if _overlapping([text]):
            return False
        after_free = text[0]
    return True


def _flattened(items: Any) -> list[Any] | None:
    """The pattern's top-level items with plain groups opened; ``None`` for a group that
    sets flags."""
    out: list[Any] = []
    for op, arg in items:
        if str(op) == "SUBPATTERN":
            _group, add, remove, body = arg
            if add or remove:
                return None
            inner = _flattened(body)
            if inner is None:
                return None
            out.extend(inner)
        else:
            out.append((op, arg))
    return out


def _lead(sequence: list[Any]) -> tuple[list[str], list[Any]]:
    """The plain texts the pattern can start with (one, or one per alternative of a leading
    alternation of plain strings, each with the plain characters after it) and the rest."""
    index = 0
    alternatives = [""]
    if sequence and str(sequence[0][0]) == "BRANCH":
        alternatives = []
        for branch in sequence[0][1][1]:
            if not branch or any(str(op) != "LITERAL" for op, _ in branch):
                return [], sequence
            alternatives.append("".join(chr(arg) for _, arg in branch))
        index = 1
    text = _literal_run(sequence[index:])
    index += len(text)
    leads = [alternative + text for alternative in alternatives]
    return ([] if "" in leads else leads), sequence[index:]


def _literal_run(items: Any) -> str:
    run: list[str] = []
    for op, arg in items:
        if str(op) != "LITERAL":
            break
        run.append(chr(arg))
    return "".join(run)


def _overlapping(texts: list[str]) -> bool:
    """Can two occurrences of these texts in a line overlap (one start inside another)?"""
    for first in texts:
        for second in texts:
            if first != second and first in second:
                return True
            if any(
                first[-size:] == second[:size] for size in range(1, min(len(first), len(second)))
            ):
                return True
    return not texts or "" in texts


def _unbounded_repeats(items: Any) -> int:
    count = 0
    for op, arg in items:
        kind = str(op)
        if kind in _REPEATS:
            count += (arg[1] == _UNBOUNDED or arg[1] > 64) + _unbounded_repeats(arg[2])
        elif kind == "SUBPATTERN":
            count += _unbounded_repeats(arg[-1])
        elif kind == "BRANCH":
            count += max(_unbounded_repeats(b) for b in arg[1])
        elif kind in {"ASSERT", "ASSERT_NOT"}:
            count += _unbounded_repeats(arg[1])
        elif kind == "ATOMIC_GROUP":
            count += _unbounded_repeats(arg)
        elif kind == "GROUPREF":
            count += 1  # a backreference's length follows its group's
    return count


def _has_nested_repeat(items: Any, *, inside_repeat: bool) -> bool:
    """True for a shape that backtracks exponentially (see the module docstring)."""
    for op, arg in items:
        kind = str(op)
        if kind in _REPEATS:
            _low, high, body = arg
            unbounded = high == _UNBOUNDED
            # (a+)+ and (\d{1,3},?)+ alike: a repeat of varying length inside one that
            # runs again splits a text in exponentially many ways (a lone ``?`` is benign).
            if inside_repeat and (unbounded or 1 < high != _low):
                return True
            if high > 1 and _can_be_empty(body):  # (a?){25}: 2**25 ways to match nothing
                return True
            if _has_nested_repeat(body, inside_repeat=inside_repeat or high > 1):
                return True
        elif kind == "SUBPATTERN":
            if _has_nested_repeat(arg[-1], inside_repeat=inside_repeat):
                return True
        elif kind == "BRANCH":
            # (a|aa)+ or (\w|\d)*: alternatives that can start alike, repeated, split one
            # text in exponentially many ways.
            if inside_repeat and _alternatives_overlap(arg[1]):
                return True
            if any(_has_nested_repeat(b, inside_repeat=inside_repeat) for b in arg[1]):
                return True
        elif kind in {"ASSERT", "ASSERT_NOT"}:
            if _has_nested_repeat(arg[1], inside_repeat=inside_repeat):
                return True
        elif kind == "ATOMIC_GROUP" and _has_nested_repeat(arg, inside_repeat=inside_repeat):
            return True
    return False


def _first_chars(items: Any) -> frozenset[int] | None:
    """Code points a sequence can start with; ``None`` for "maybe anything" (or empty)."""
    for op, arg in items:
        kind = str(op)
        if kind == "LITERAL":
            return frozenset({arg})
        if kind == "IN":
            chars: set[int] = set()
            for sub_op, sub_arg in arg:
                if str(sub_op) == "LITERAL":
                    chars.add(sub_arg)
                elif str(sub_op) == "RANGE" and sub_arg[1] - sub_arg[0] < 256:
                    chars.update(range(sub_arg[0], sub_arg[1] + 1))
                else:  # a category, a negated set, a wide range: assume anything
                    return None
            return frozenset(chars)
        if kind == "SUBPATTERN":
            return _first_chars(arg[-1])
        if kind in _REPEATS:
            return _first_chars(arg[2]) if arg[0] >= 1 else None
        if kind == "BRANCH":
            sets = [_first_chars(branch) for branch in arg[1]]
            if any(first is None for first in sets):
                return None
            return frozenset().union(*(first for first in sets if first is not None))
        return None  # ., a category, an anchor, a lookaround: assume anything
    return None


def _alternatives_overlap(branches: Any) -> bool:
    firsts = [_first_chars(branch) for branch in branches]
    for i, first in enumerate(firsts):
        for other in firsts[i + 1 :]:
            if first is None or other is None or first & other:
                return True
    return False


def _can_be_empty(items: Any) -> bool:
    for op, arg in items:
        kind = str(op)
        if kind in _REPEATS:
            if arg[0] > 0 and not _can_be_empty(arg[2]):
                return False
        elif kind == "SUBPATTERN":
            if not _can_be_empty(arg[-1]):
                return False
        elif kind == "BRANCH":
            if not any(_can_be_empty(branch) for branch in arg[1]):
                return False
        elif kind not in {"AT", "ASSERT", "ASSERT_NOT"}:
            return False
    return True


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
