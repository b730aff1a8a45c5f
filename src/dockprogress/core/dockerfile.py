"""The Dockerfile read up front: its stages and instructions, to know a build's steps.

Sans-IO: text in, a :class:`Dockerfile` out. Only what progress needs is parsed, the way the
engine's own parser splits the file (moby ``buildkit/frontend/dockerfile/parser``):

* parser directives (``# escape=`` ...) at the very top; the escape character (``\\`` or a
  backtick) joins a line to the next when it ends the line; comment lines and blank lines
  inside a continued instruction are skipped;
* a heredoc (``RUN <<EOF`` ... ``EOF``) is part of its instruction;
* ``FROM image [AS name]`` starts a stage; every instruction (``FROM`` included) is a step.

:meth:`Dockerfile.steps` says which steps a build runs, per builder:

* ``classic`` (engine API ``/build`` without BuildKit): every instruction of every stage up to
  and including the target stage (the last stage without ``--target``), in file order: the
  classic builder runs stages the target does not need, but none after it;
* ``buildkit``: only the stages the target depends on (``FROM <stage>``, ``COPY --from=``,
  ``RUN --mount=...from=``, by name or index), and of their instructions only those BuildKit
  runs as steps (``FROM`` an image, ``RUN``, ``COPY``, ``ADD``, ``WORKDIR``; the others only
  change the image's config).

A malformed file raises :class:`~dockprogress.errors.UsageError` (no ``FROM`` first, an
unknown ``--target``): the build would fail the same way, and saying so before it starts is
kinder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from dockprogress.errors import UsageError

__all__ = ["Dockerfile", "Instruction", "Stage", "parse_dockerfile"]

_DIRECTIVE: Final = re.compile(r"^#\s*([A-Za-z_]+)\s*=\s*(\S+)\s*$")
_HEREDOC: Final = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")
_FROM_FLAG: Final = re.compile(r"--from=(\S+)")
_MOUNT_FROM: Final = re.compile(r"--mount=\S*?\bfrom=([^,\s]+)")


@dataclass(frozen=True, slots=True)
class Instruction:
    """One instruction: ``keyword`` upper-cased, ``text`` as written (joined), 1-based line."""

    keyword: str
    text: str
    line: int


@dataclass(frozen=True, slots=True)
class Stage:
    index: int
    base: str
    name: str | None
    instructions: tuple[Instruction, ...]
    #: Stages this one needs (by index): its ``FROM`` and every ``--from``.
    needs: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Dockerfile:
    stages: tuple[Stage, ...]

    def stage_index(self, target: str | None) -> int:
        """The index of stage ``target`` (a name or an index); the last one for ``None``."""
        if target is None:
            return len(self.stages) - 1
        for stage in self.stages:
            if stage.name is not None and stage.name == target.lower():
                return stage.index
        raise UsageError(
            f"target stage {target!r} is not in the Dockerfile (stages: "
            f"{', '.join(s.name or str(s.index) for s in self.stages)})"
        )

    def steps(self, target: str | None = None, *, builder: str = "classic") -> list[Instruction]:
        """The instructions the build runs, in order (see the module doc)."""
        last = self.stage_index(target)
        if builder == "classic":
            wanted = set(range(last + 1))
        else:
            wanted, todo = set(), [last]
            while todo:
                index = todo.pop()
                if index not in wanted:
                    wanted.add(index)
                    todo.extend(self.stages[index].needs)
        steps = [i for s in self.stages if s.index in wanted for i in s.instructions]
        if builder == "classic":
            return steps
        names = {s.name for s in self.stages if s.name}
        return [i for i in steps if _is_vertex(i, names)]


#: Instructions BuildKit runs as a step of their own (the others only change the config).
_VERTEX_KEYWORDS: Final = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})


def _is_vertex(instruction: Instruction, stage_names: set[str]) -> bool:
    if instruction.keyword != "FROM":
        return instruction.keyword in _VERTEX_KEYWORDS
    words = [w for w in instruction.text.split()[1:] if not w.startswith("--")]
    base = words[0].lower() if words else "scratch"
    return base != "scratch" and base not in stage_names and not base.isdigit()


def _stage_ref(value: str, names: dict[str, int]) -> int | None:
    value = value.strip("\"'").lower()
    if value in names:
        return names[value]
    if value.isdigit() and int(value) < len(names) + 1_000_000:
        return int(value)
    return None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, joined text) of each instruction, directives and comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    start = 0
    for number, line in enumerate(lines):  # parser directives: only at the very top
        match = _DIRECTIVE.match(line)
        if not match:
            break
        if match.group(1).lower() == "escape" and match.group(2) in ("\\", "`"):
            escape = match.group(2)
        start = number + 1
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    first = 0
    index = start
    while index < len(lines):
        line = lines[index]
        index += 1
        stripped = line.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and (not stripped or stripped.startswith("#")):
            continue  # comments and blanks inside a continuation are skipped
        if not parts:
            first = index
        if stripped.endswith(escape):
            parts.append(stripped[: -len(escape)].strip())
            continue
        parts.append(stripped)
        joined = " ".join(p for p in parts if p)
        parts = []
        for marker in _HEREDOC.findall(joined):  # the body belongs to the instruction
            while index < len(lines) and lines[index].strip() != marker:
                index += 1
            index += 1
        out.append((first, joined))
    if parts:
        out.append((first, " ".join(p for p in parts if p)))
    return out


def parse_dockerfile(text: str) -> Dockerfile:
    """Parse a Dockerfile's text; :class:`UsageError` when it has no stage at all."""
    stages: list[Stage] = []
    names: dict[str, int] = {}
    current: list[Instruction] = []
    needs: set[int] = set()
    base = name = None

    def close() -> None:
        if base is not None:
            stages.append(Stage(len(stages), base, name, tuple(current), frozenset(needs)))

    for line, joined in _logical_lines(text):
        keyword, _, rest = joined.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            close()
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                raise UsageError(f"Dockerfile line {line}: FROM without an image")
            base = words[0]
            name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            current, needs = [], set()
            ref = names.get(base.lower())
            if ref is not None:
                needs.add(ref)
            if name is not None:
                names[name] = len(stages)
        elif base is None:
            if keyword == "ARG":  # ARGs before the first FROM are not steps
                continue
            raise UsageError(f"Dockerfile line {line}: {keyword} before the first FROM")
        else:
            for pattern in (_FROM_FLAG, _MOUNT_FROM):
                for value in pattern.findall(rest):
                    ref = _stage_ref(value, names)
                    if ref is not None and ref < len(stages):
                        needs.add(ref)
        current.append(Instruction(keyword, joined, line))
    close()
    if not stages:
        raise UsageError("the Dockerfile has no FROM instruction: nothing to build")
    return Dockerfile(tuple(stages))
