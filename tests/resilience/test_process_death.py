"""The "death of a process" page: exit codes and signals as a supervisor sees them,
and what becomes of an exception in a task that nobody awaits."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from kit.examples import assert_output_is_shown, command_for, start_example
from kit.process import ROOT, wait_until

EXITS = "resilience/exits.py"
TASKS = "resilience/task_exceptions.py"
SERVICE = "resilience/crash_policy_service.py"
SNIPPETS = ROOT / "snippets" / "resilience"
PAGE = ROOT / "docs" / "resilience" / "process_death.md"
BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold
NEVER_RETRIEVED = "Task exception was never retrieved"

# way -> (the shell's $?, Python's returncode)
WAYS = {
    "ok": (0, 0),
    "error": (1, 1),
    "raise": (1, 1),
    "sigint": (128 + signal.SIGINT, -signal.SIGINT),
    "sigterm": (128 + signal.SIGTERM, -signal.SIGTERM),
    "sigkill": (128 + signal.SIGKILL, -signal.SIGKILL),
    "no-such-way": (2, 2),
}


def relative(text: str) -> str:
    """Paths in tracebacks as a reader in the repository sees them, not this machine's."""
    return text.replace(f"{ROOT}/", "")


def default_signals() -> None:
    """In the child before exec: SIGINT and SIGHUP as a terminal gives them. A run
    in the background (`nohup`, `cmd &` in a script) inherits them ignored, and an
    ignored signal stays ignored across exec: Python would install no handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def program(example: str) -> list[str]:
    """The run line's interpreter and file, without the arguments it shows."""
    _, argv = command_for(example)
    return argv[: argv.index(f"examples/{example}") + 1]


def run(example: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*program(example), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=default_signals,
    )


def shell(*args: str) -> tuple[str, int]:
    """exits.py run by bash as a reader runs it, then `echo $?`: (transcript, status).

    The program's stderr joins its stdout; bash's own job messages ("Terminated",
    "Killed") go to bash's stderr, which is left out.
    """
    command = " ".join(["python", f"examples/{EXITS}", *args])
    bin_dir = Path(sys.executable).parent  # `python` is this interpreter
    result = subprocess.run(
        ["bash", "-c", f'{command} 2>&1; echo "exit status $?"'],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        preexec_fn=default_signals,
    )
    status = int(result.stdout.rsplit("exit status ", 1)[1])
    return f"$ {command}\n{relative(result.stdout)}", status


# --- exit codes and signals ------------------------------------------------------


def test_the_shell_sees_128_plus_the_signal_and_the_page_shows_it() -> None:
    transcripts = []
    for way, (status, _) in WAYS.items():
        transcript, seen = shell(way)
        assert seen == status, transcript
        transcripts.append(transcript)
    transcript, seen = shell("sigterm", "--graceful")
    assert seen == 0, transcript
    transcripts.append(transcript)
    assert_output_is_shown("\n".join(transcripts), SNIPPETS / "process_death_exits.out")


@pytest.mark.parametrize("way", WAYS)
def test_python_sees_minus_the_signal(way: str) -> None:
    result = run(EXITS, way)
    assert result.returncode == WAYS[way][1], result.stdout + result.stderr


def test_what_each_way_prints() -> None:
    assert run(EXITS, "ok").stdout == "ok: done\nfinally: cleanup ran\n"
    error = run(EXITS, "error")
    assert error.stderr == "error: input.csv not found\n"  # one line, no traceback
    raised = run(EXITS, "raise")
    assert raised.stderr.startswith("Traceback (most recent call last):")
    assert raised.stderr.endswith("RuntimeError: nobody catches this\n")
    assert "KeyboardInterrupt" in run(EXITS, "sigint").stderr
    usage = run(EXITS, "no-such-way")
    assert usage.stderr.startswith("usage: exits.py")
    assert "invalid choice: 'no-such-way'" in usage.stderr


def test_a_default_sigterm_skips_finally_and_a_handler_runs_it() -> None:
    """Without a handler the process is gone before any Python code runs again."""
    assert run(EXITS, "sigterm").stdout == ""
    handled = run(EXITS, "sigterm", "--graceful")
    assert handled.returncode == 0
    assert handled.stdout == "SIGTERM received: exiting 0\nfinally: cleanup ran\n"


def test_sigkill_cannot_be_handled() -> None:
    for args in (["sigkill"], ["sigkill", "--graceful"]):
        result = run(EXITS, *args)
        assert result.returncode == -signal.SIGKILL
        assert result.stdout == "a SIGKILL handler is refused: OSError(22, 'Invalid argument')\n"
    with pytest.raises(OSError, match="Invalid argument"):  # SIGSTOP: refused too
        signal.signal(signal.SIGSTOP, signal.SIG_IGN)


def waiting(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*program(EXITS), "wait", *args],
        cwd=ROOT,
        preexec_fn=default_signals,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().endswith("waiting for a signal\n")
    return process


@pytest.mark.parametrize(
    ("sig", "graceful", "code"),
    [
        (signal.SIGTERM, False, -signal.SIGTERM),
        (signal.SIGTERM, True, 0),
        (signal.SIGHUP, False, -signal.SIGHUP),
        (signal.SIGHUP, True, 0),
    ],
    ids=["SIGTERM", "SIGTERM-graceful", "SIGHUP", "SIGHUP-graceful"],
)
def test_a_signal_from_outside(sig: int, graceful: bool, code: int) -> None:
    process = waiting(*(["--graceful"] if graceful else []))
    process.send_signal(sig)
    out, err = process.communicate(timeout=BOUND)
    assert process.returncode == code, out + err
    assert ("finally: cleanup ran" in out) is graceful


# --- a task nobody awaits -------------------------------------------------------


def test_forgotten_task_is_logged_and_the_process_goes_on() -> None:
    result = run(TASKS, "--policy", "none")
    assert result.returncode == 0
    assert result.stderr.startswith(f"ERROR asyncio: {NEVER_RETRIEVED}\n")
    assert "ConnectionError: price feed refused the connection" in result.stderr
    assert result.stdout.count("still serving") == 5  # every tick after the failure
    assert result.stdout.endswith("exit code 0\n")


def test_a_kept_reference_delays_the_log_until_the_task_is_collected() -> None:
    """Merged output: the error comes after the last tick, not before the first."""
    result = subprocess.run(
        [*program(TASKS), "--policy", "keep-reference"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.index("tick 5") < result.stdout.index(NEVER_RETRIEVED)


def transcript(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*program(TASKS), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("policy", ["none", "exit", "taskgroup"])
def test_each_policy_prints_what_the_page_shows(policy: str) -> None:
    result = transcript("--policy", policy)
    assert result.returncode == (0 if policy == "none" else 1)
    shown = SNIPPETS / f"process_death_tasks_{policy}.out"
    assert_output_is_shown(relative(result.stdout), shown)


def test_the_exit_policy_logs_once_and_exits_1_before_serving_on() -> None:
    result = run(TASKS, "--policy", "exit")
    assert result.returncode == 1
    assert result.stderr.startswith(f"CRITICAL prices: fatal: {NEVER_RETRIEVED}; exiting 1\n")
    assert result.stderr.count("fatal:") == 1
    assert "ERROR asyncio" not in result.stderr  # the policy replaced the default handler
    assert "still serving" not in result.stdout


def test_the_task_group_cancels_the_sibling_and_exits_1() -> None:
    result = run(TASKS, "--policy", "taskgroup")
    assert result.returncode == 1
    assert result.stderr == (
        "CRITICAL prices: fatal: ConnectionError('price feed refused the connection'); exiting 1\n"
    )
    assert "still serving" not in result.stdout


# --- the service and its policy ------------------------------------------------------


def test_a_failed_background_task_stops_the_service_with_exit_1(tmp_path: Path) -> None:
    service = start_example(
        SERVICE, tmp_path, env={"REFRESH_INTERVAL": "0.2", "FAIL_ON_REFRESH": "3"}, ready=""
    )
    try:
        wait_until(lambda: not service.alive(), BOUND, "the service to exit after the failure")
    finally:
        code = service.stop()
    log = service.output()
    assert code == 1, log
    fatal = [line for line in log.splitlines() if "fatal:" in line]
    assert len(fatal) == 1, log
    assert "CRITICAL" in fatal[0]
    assert f"{NEVER_RETRIEVED} (ConnectionError('price feed refused refresh 3'))" in fatal[0]
    assert log.count(NEVER_RETRIEVED) == 1  # asyncio's default handler said nothing
    assert "Server Stopped" in log  # the same stop as SIGTERM's, not a crash
    assert_output_is_shown(from_the_failure_on(log), SNIPPETS / "process_death_service.out")


def from_the_failure_on(log: str) -> str:
    """The log from the fatal record on, without timestamps and process ids."""
    start = log.rindex("\n", 0, log.index("fatal:")) + 1
    tail = re.sub(r"^\w+ +\d{4}-\d\d-\d\d \S+ \S+ ", "", log[start:], flags=re.MULTILINE)
    return relative(re.sub(r" \[\d+\]$", "", tail, flags=re.MULTILINE))


def test_without_a_failure_the_service_refreshes_and_stops_with_0(tmp_path: Path) -> None:
    """The control: the same service keeps refreshing, and SIGTERM gives exit code 0."""
    service = start_example(SERVICE, tmp_path, env={"REFRESH_INTERVAL": "0.05"})
    try:
        wait_until(
            lambda: httpx.get(f"{service.url}/prices", timeout=5).json()["refreshes"] >= 3,
            BOUND,
            "three refreshes",
        )
    finally:
        code = service.stop()
    assert code == 0, service.output()
    assert "fatal:" not in service.output()


def test_the_page_shows_every_output_file() -> None:
    page = PAGE.read_text()
    for shown in sorted(SNIPPETS.glob("process_death*.out")):
        assert f'--8<-- "{shown.relative_to(ROOT)}"' in page, shown.name
