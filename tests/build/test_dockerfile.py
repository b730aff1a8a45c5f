"""The Dockerfile plan: stages, targets, what each builder runs."""

from __future__ import annotations

import pytest

from dockprogress.core.dockerfile import parse_dockerfile
from dockprogress.errors import UsageError
from tests.build.recordings import FIXTURES

MULTISTAGE = (FIXTURES / "contexts" / "multistage" / "Dockerfile").read_text()


def test_stages_and_classic_steps_up_to_the_target() -> None:
    plan = parse_dockerfile(MULTISTAGE)
    assert [s.name for s in plan.stages] == ["base", "unused", "final"]
    assert len(plan.steps("final")) == 10  # the classic builder runs the unused stage too
    assert len(plan.steps("base")) == 3  # ... but nothing after the target
    assert len(plan.steps(None)) == 10


def test_buildkit_runs_only_needed_stages_and_filesystem_steps() -> None:
    plan = parse_dockerfile(MULTISTAGE)
    steps = [i.keyword for i in plan.steps("final", builder="buildkit")]
    assert steps == ["FROM", "RUN", "COPY", "RUN", "RUN"]  # no 'unused', no ARG/CMD/FROM base
    assert [i.keyword for i in plan.steps("base", builder="buildkit")] == ["FROM", "RUN", "COPY"]


def test_copy_from_and_mount_from_make_a_stage_needed() -> None:
    text = """
FROM 127.0.0.1:5000/dp/base:1 AS tools
RUN echo tools
FROM 127.0.0.1:5000/dp/base:1 AS cache
RUN echo cache
FROM 127.0.0.1:5000/dp/base:1 AS other
RUN echo other
FROM 127.0.0.1:5000/dp/base:1
COPY --from=tools /bin/sh /sh
RUN --mount=type=bind,from=cache,target=/c ls /c
"""
    plan = parse_dockerfile(text)
    assert sorted(plan.stages[3].needs) == [0, 1]
    assert len(plan.steps(None, builder="buildkit")) == 2 + 2 + 3


def test_continuations_comments_heredocs_and_escape_directive() -> None:
    text = (
        "# escape=`\n"
        "# a comment\n"
        "FROM 127.0.0.1:5000/dp/base:1\n"
        "RUN echo one `\n"
        "    # a comment inside the instruction\n"
        "    two\n"
        "RUN <<EOF\n"
        "echo inside the heredoc\n"
        "FROM not-a-stage\n"
        "EOF\n"
        "ENV A=1\n"
    )
    plan = parse_dockerfile(text)
    (stage,) = plan.stages
    assert [i.keyword for i in stage.instructions] == ["FROM", "RUN", "RUN", "ENV"]
    assert stage.instructions[1].text == "RUN echo one two"
    assert stage.instructions[3].line == 11


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(UsageError, match="no FROM"):
        parse_dockerfile("# nothing\n")
    with pytest.raises(UsageError, match="before the first FROM"):
        parse_dockerfile("RUN echo\nFROM x\n")
    with pytest.raises(UsageError, match="'nope' is not in the Dockerfile"):
        parse_dockerfile(MULTISTAGE).steps("nope")
    assert len(parse_dockerfile("ARG V=1\nFROM x:$V\nRUN a\n").steps()) == 2
