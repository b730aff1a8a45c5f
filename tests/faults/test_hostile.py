"""Hostile milestone patterns and hostile text from containers.

Patterns: the shapes that backtrack exponentially are refused when the milestone set is
built (``MilestoneConfigError``, CLI exit status 2); what is accepted runs in linear time
(Python's ``re`` where its search is linear, RE2 otherwise: ``core/milestones.py``), on
lines cut at ``MAX_MATCH_LINE``, and is timed here on worst-case lines of that length:
5 ms per line at most. What neither engine can run in linear time is refused.

Text: a command's output full of terminal escape sequences, control characters, bidi
overrides and HTML goes through ``dockprogress run`` (a real pty, the same tracker as
``exec``) to each display; nothing of it may reach the user's terminal unless
``--passthrough`` was asked for, and on the JSON paths it stays data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dockprogress.core.milestones import MAX_MATCH_LINE, MilestoneSet, load_milestones
from dockprogress.errors import MilestoneConfigError
from tests.contract import assert_event_output
from tests.faults.harness import observe

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).resolve().parents[2] / "src/dockprogress/examples/postgres-load.toml"

EXPONENTIAL = [
    r"(a+)+$",
    r"^(\d+)*$",
    r"(x+x+)+y",
    r"(\w*\s?)*$",
    r"(a|aa)+$",
    r"(a|a)*$",
    r"(?:a|b|ab)*c$",
    r"(.|\s)*x",
    r"(a?){25}a{25}",
    r"(a|)+b",
    r"(\d{1,3},?)+ rows",
]


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_catastrophic_patterns_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(MilestoneConfigError, match="backtrack catastrophically") as info:
        MilestoneSet([(pattern, 50, "hostile")])
    assert repr(pattern) in str(info.value)  # names the milestone


def test_a_catastrophic_pattern_in_a_file_is_exit_status_2(tmp_path: Path) -> None:
    path = tmp_path / "hostile.toml"
    path.write_text("[[milestone]]\npattern = '(a|aa)+$'\nprogress = 100\n")
    result = subprocess.run(
        [sys.executable, "-m", "dockprogress", "logs", "any", "--milestones", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "(a|aa)+$" in result.stderr
    assert "backtrack catastrophically" in result.stderr


ACCEPTED = [
    *(m.pattern for m in load_milestones(EXAMPLE).milestones),
    r"(?:foo|bar)+ done",
    r"(?:a|b)*c$",
    r"step (?P<value>\d+) of \d+",
    # Polynomial for Python's engine (cubic and worse): RE2 runs them.
    r".*a.*b",
    r".*a.*b.*c",
    r"\s*a\s*b\s*c",
    r"(?P<value>\d+).*x.*y",
    r"(?i)a.*b.*c",
    # Lookaround without a repeat: linear under re, accepted on re.
    r"(?<!not )ready",
]
WORST_LINES = [
    "a" * MAX_MATCH_LINE,
    "ab" * (MAX_MATCH_LINE // 2),
    "1" * MAX_MATCH_LINE,
    " " * MAX_MATCH_LINE,
    " a" * (MAX_MATCH_LINE // 2),
    "checkpoint complete: wrote 1 buffers " + "distance=1 " * (MAX_MATCH_LINE // 11),
    # The text-led rule's worst: as many starts as fit, each sending .* to the end and back.
    ("checkpoint complete: wrote 1 buffers " * 60)[:MAX_MATCH_LINE],
    ("checkpoint complete: wrote 1 buffers distance=11111111111 " * 40)[:MAX_MATCH_LINE],
    ("restartpoint complete: wrote 12 buffers distance=" + "1" * MAX_MATCH_LINE)[:MAX_MATCH_LINE],
    "x" * (4 * MAX_MATCH_LINE),  # cut to MAX_MATCH_LINE before matching
]
#: Issue 18's goal for every accepted pattern on a worst-case line of the line cap.
LINE_BUDGET = 0.005


def test_accepted_patterns_match_worst_case_lines_within_5_ms() -> None:
    worst, which = 0.0, ""
    for pattern in ACCEPTED:
        milestones = MilestoneSet([{"pattern": pattern, "progress": "dynamic"}])
        for line in WORST_LINES:
            times = []
            for _ in range(3):  # the best of three: a busy machine's pauses are not the match
                started = time.perf_counter()
                milestones.match(line)
                times.append(time.perf_counter() - started)
            if min(times) > worst:
                worst, which = min(times), f"{pattern!r} on {line[:12]!r}..."
    assert worst < LINE_BUDGET, which
    observe("accepted patterns, worst MAX_MATCH_LINE line", seconds=round(worst, 5), which=which)


#: Led by plain text that cannot overlap itself, then at most one free repeat followed by
#: text it cannot start again in: Python's engine, at most (line / lead) x line steps.
TEXT_LED = [
    r"(?:checkpoint|restartpoint) complete: wrote \d+ buffers.*distance=(?P<value>\d+) kB",
    r"checkpoint complete: wrote .*distance=\d+ kB",
    r"Progress: processed rows \d+/\d+ .*done: (?P<value>\d+)%",
    r"backup of database started.+wrote [0-9]+ files",
]
#: Near misses: each breaks one condition, so RE2 runs it.
NOT_TEXT_LED = [
    r"checkpoint complete: .*a.*b",  # two free repeats
    r"checkpoint complete: wrote .*dd\d+ kB",  # the text after .* overlaps itself
    r"checkpoint complete: wrote .*x[^y]+y",  # a repeat after .* takes its text again
    r"abcabcabcabcabcabc.*x",  # a lead that overlaps itself
    r"short lead .*x",  # a lead shorter than the line cap allows
    r"(?i)checkpoint complete: wrote .*distance=\d+",  # case folded
    r"(?:checkpoint complete: wrote|checkpoint) .*distance=\d+",  # alternatives overlap
    r"Progress: processed rows \d+/\d+.*(?P<value>\d+)% done",  # .* then a repeat
]


def test_text_led_patterns_run_on_re_and_near_misses_on_re2() -> None:
    assert MilestoneSet([(p, -1, f"m{i}") for i, p in enumerate(TEXT_LED)]).engines == (
        ("re",) * len(TEXT_LED)
    )
    for pattern in NOT_TEXT_LED:
        assert MilestoneSet([(pattern, -1, "x")]).engines == ("re2",), pattern
    # A longer line cap needs a longer lead: the same pattern goes to RE2.
    wide = MilestoneSet([(TEXT_LED[0], -1, "x")], max_line=16 * MAX_MATCH_LINE)
    assert wide.engines == ("re2",)


def _hostile_lines(pattern: str) -> list[str]:
    """Lines of the cap built from the pattern's own plain pieces: its lead repeated, with
    and without what follows the free repeat, digits and the characters classes take."""
    import re._parser as parser

    pieces: list[str] = []
    run: list[str] = []
    for op, arg in parser.parse(pattern):
        if str(op) == "LITERAL":
            run.append(chr(arg))
        elif run:
            pieces.append("".join(run))
            run = []
    pieces.append("".join(run))
    lines = []
    lead = pieces[0] or "checkpoint"
    for tail in ["", *pieces[1:], "1" * 40, "1 ", "x"]:
        lines.append(((lead + "1 " + tail) * MAX_MATCH_LINE)[:MAX_MATCH_LINE])
        lines.append((lead + tail * MAX_MATCH_LINE)[:MAX_MATCH_LINE])
    return lines


@pytest.mark.parametrize("pattern", TEXT_LED)
def test_text_led_patterns_on_their_own_hostile_lines_within_5_ms(pattern: str) -> None:
    milestones = MilestoneSet([{"pattern": pattern, "progress": "dynamic"}])
    worst = 0.0
    for line in _hostile_lines(pattern):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            milestones.match(line)
            times.append(time.perf_counter() - started)
        worst = max(worst, min(times))
    assert worst < LINE_BUDGET
    observe("text-led pattern, worst hostile line", seconds=round(worst, 5), pattern=pattern)


def test_polynomial_patterns_run_on_re2_and_linear_ones_on_re() -> None:
    engines = MilestoneSet([(p, -1, f"m{i}") for i, p in enumerate(ACCEPTED)]).engines
    by_pattern = dict(zip(ACCEPTED, engines, strict=True))
    assert by_pattern[r".*a.*b"] == "re2"
    assert by_pattern[r"(?<!not )ready"] == "re"
    assert by_pattern["Finished DB init!"] == "re"
    assert by_pattern["^generating data"] == "re"


@pytest.mark.parametrize("pattern", [r"(?<=x).*a.*b", r"(\w+) .*\1", r"(?!no).*a.*b"])
def test_patterns_neither_engine_runs_in_linear_time_are_refused(pattern: str) -> None:
    with pytest.raises(MilestoneConfigError, match=r"RE2\) cannot run") as info:
        MilestoneSet([(pattern, 50, "hostile")])
    assert repr(pattern) in str(info.value)


@pytest.mark.engine
@pytest.mark.timeout(240)
def test_three_hostile_lines_in_a_real_container_log_end_in_under_2_s(
    docker_client: Any, testbed: Any, tmp_path: Path
) -> None:
    """Issue 18's case: ``.*a.*b`` over three 2,000-character lines of "a" (no "b")."""
    script = "for i in 1 2 3; do printf '%2000s\\n' '' | tr ' ' a; done; echo all-done"
    container = docker_client.containers.run(testbed.base, ["sh", "-c", script], detach=True)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
        logs = container.logs().decode()
        assert logs.count("a" * 2000) == 3
        command = [sys.executable, "-m", "dockprogress", "logs", container.id]
        took: dict[str, float] = {}
        for name, pattern in (("plain", "^nothing-matches"), ("hostile", ".*a.*b")):
            path = tmp_path / f"{name}.toml"
            path.write_text(
                f"[[milestone]]\npattern = '{pattern}'\nprogress = 50\n"
                "[[milestone]]\npattern = '^all-done$'\nprogress = 100\n"
            )
            started = time.perf_counter()
            result = subprocess.run(
                [*command, "--milestones", str(path), "--no-calibration", "--progress", "json"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            took[name] = time.perf_counter() - started
            assert result.returncode == 0, result.stderr
            events = assert_event_output(result.stdout)
            assert events[-1]["state"] == "done"
    finally:
        container.remove(force=True)
    # Under 2 s in all; on a machine too busy for that (Python's own start-up takes most of
    # it), the hostile pattern may cost at most 0.5 s more than one that matches nothing.
    assert took["hostile"] < max(2.0, took["plain"] + 0.5), took
    observe(
        "'.*a.*b' on three 2,000-character lines, whole CLI run",
        seconds=round(took["hostile"], 2),
        same_run_with_a_plain_pattern=round(took["plain"], 2),
    )


# A command that writes every kind of hostile text a container could, on a real pty.
HOSTILE = (
    r"printf '\033]0;\160wned-title\007\033[2J\033[H<img src=x onerror=alert(1)>"
    r"\033[31m red \033[0m\r\n';"
    r"printf 'bell\007 csi8bit\302\233 31m bidi\342\200\256gnp.exe nul\001\002 del\177\r\n';"
    r"printf '\033]8;;http://evil/\033\\link\033]8;;\033\\ 50%%\r';"
    r"printf 'OSC52 \033]52;c;\143HduZWQ=\007 done\r\n';"
    "exit 3"
)
HOSTILE_PIECES = ["\x1b", "\x07", "\x9b", "\u202e", "\x01", "\x7f", "pwned-title", "cHduZWQ="]


def _run(*options: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "dockprogress", "run", *options, "--", "sh", "-c", HOSTILE],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("mode", ["plain", "tty"])
def test_hostile_output_never_reaches_the_terminal_through_a_display(mode: str) -> None:
    result = _run("--progress", mode)
    assert result.returncode == 1  # exit 3 is an error, reported
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert "status 3" in text
    if mode == "plain":
        leaked = [p for p in HOSTILE_PIECES if p in text]
    else:
        # rich draws with its own CSI sequences; none of the command's may pass.
        leaked = [
            p
            for p in ["\x1b]", "\x1b[2J", "\x1b[H", "\x07", "\x9b", "\u202e", "\x01", "pwned-title"]
            if p in text
        ]
    assert leaked == [], f"{mode}: {leaked!r} reached the terminal"
    observe(f"hostile text, --progress {mode}", leaked=leaked, output_bytes=len(text))


def test_hostile_output_is_data_on_the_json_path_and_raw_only_with_passthrough() -> None:
    result = _run("--progress", "json")
    assert result.returncode == 1
    events = assert_event_output(result.stdout.decode())
    raw = result.stdout.decode()
    assert "\x1b" not in raw  # json.dumps escapes every control character
    assert "\x07" not in raw
    last = events[-1]
    assert last["state"] == "error"
    assert "\x1b" not in last["error"]  # the message a person reads is printable too
    passthrough = _run("--progress", "json", "--passthrough")
    # Asked for: the raw bytes go to standard error (stdout stays event lines only).
    assert b"\x1b]0;pwned-title\x07" in passthrough.stderr
    assert_event_output(passthrough.stdout.decode())


def test_html_in_task_text_stays_json_data_on_the_server(tmp_path: Path) -> None:
    import httpx

    from dockprogress.events import Kind, Operation
    from dockprogress.sinks.web.server import ServerThread
    from dockprogress.task import Task

    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>\x1b[2J"
    task = Task("run:<b>x</b>", Operation.RUN, Kind.COUNT, description=hostile)
    event = task.update(current=1, total=2, description=hostile)
    assert event is not None
    with ServerThread(port=0) as server:
        server.hub.publish(event)
        response = httpx.get(server.url + "/api/tasks", timeout=10)
        page = httpx.get(server.url + "/", timeout=10)
    assert response.headers["content-type"].startswith("application/json")
    entries = json.loads(response.text)
    assert entries[0]["event"]["description"] == hostile  # data, unchanged
    assert entries[0]["event"]["task"] == "run:<b>x</b>"
    assert "<img" not in page.text  # the page holds no task text; it renders with textContent
    assert "script-src 'self'" in page.headers["content-security-policy"]
