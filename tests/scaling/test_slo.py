"""Load testing and SLOs: every claim of docs/scaling/load_testing.md, over real sockets.

slo_check.py is started with the run line from its docstring (only the SLO file
and the URL change). These tests check the checker's logic, never a machine's
speed: one SLO file, a light load and targets of a second, against two endpoints
of slow_service whose latency is decided by the URL. `/slow?ms=0` answers at
once: no machine, however busy, takes a second over it. `/slow?ms=1500` sleeps
1.5 s before answering: no machine, however fast, answers it in under a second.
The figures of a real load test (the committed slo.toml against recipe-api at
100 requests a second) belong to `nox -s bench`, not to a test.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from kit import sysdeps
from kit.examples import RunningExample, StartExample
from kit.process import ROOT, free_port
from kit.snippets import example_command

SLO_CHECK = "scaling/slo_check.py"
RECIPE_API = "why_distributed/recipe_api.py"
SLOW = "scaling/slow_service.py"
SLO = ROOT / "snippets/scaling/slo.toml"
SLO_OUTPUT = ROOT / "snippets/scaling/slo_check.out"
BASELINE = ROOT / "snippets/scaling/load_baseline.sh"
BENCH = ROOT / "bench"


def slo_check(slo: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Run slo_check.py as its run line says, with another SLO file and URL."""
    env, argv = example_command(SLO_CHECK)
    assert argv[-3] == "--slo", argv
    assert argv[-1].startswith("http://"), argv
    argv[-2:] = [str(slo), url]
    return subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def slo_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.toml"
    path.write_text(text)
    return path


def committed_objectives() -> list[str]:
    """The objectives of the committed slo.toml, the file the page shows."""
    return list(tomllib.loads(SLO.read_text())["objectives"])


SLOW_MS = 1500  # every answer of the slow endpoint sleeps this long first
TARGET_MS = 1000  # between the two: met by the fast endpoint on any machine, never by the slow


def deterministic_slo(tmp_path: Path) -> Path:
    """The committed objectives, with targets that only the endpoint decides.

    10 requests in one second, all in flight at once if need be and each given
    10 s: no queueing in the generator and no timeout, even with every core busy.
    """
    objectives = "".join(
        f"{key} = {0.01 if key == 'max_error_rate' else TARGET_MS}\n"
        for key in committed_objectives()
    )
    return slo_file(
        tmp_path,
        "[load]\nrate = 10\nduration = 1\nconcurrency = 20\ntimeout = 10\n\n"
        f"[objectives]\n{objectives}",
    )


def report_shape(text: str) -> str:
    """The shape of the report: the load, the URL, targets and figures vary, the rest not."""
    text = re.sub(
        r"^\d+ requests to \S+ at [\d.]+/s for [\d.]+ s \(open loop, at most \d+ in flight\)",
        "N requests to URL at R/s for D s (open loop, at most C in flight)",
        text,
    )
    text = re.sub(r"behind schedule: \d+ times", "behind schedule: N times", text)
    text = re.sub(r"<= \d+(\.\d+)?( ms|%)", r"<= T\2", text)
    text = re.sub(r" +\d+(\.\d+)?( ms|%)  (PASS|FAIL)", r" N\2  \3", text)
    return re.sub(r" +", " ", text)  # columns are aligned to the widest figure


def measured(lines: list[str], objective: str) -> tuple[float, str]:
    """(the measured figure, PASS or FAIL) of one objective's line."""
    line = next(line for line in lines if line.startswith(objective))
    match = re.search(r"([\d.]+)( ms|%)  (PASS|FAIL)$", line)
    assert match, line
    return float(match[1]), match[3]


@pytest.fixture(scope="module")
def slow_service(run_shared_example: StartExample) -> RunningExample:
    return run_shared_example(SLOW)


def test_a_fast_endpoint_meets_every_objective(
    slow_service: RunningExample, tmp_path: Path
) -> None:
    url = f"{slow_service.url}/slow?ms=0"
    result = slo_check(deterministic_slo(tmp_path), url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"10 requests to {url} at 10/s for 1 s (open loop, at most 20 in flight)"
    assert lines[1].startswith("errors: 0;")
    for objective in ("p50 latency", "p90 latency", "p99 latency", "error rate"):
        assert measured(lines, objective)[1] == "PASS", objective
    assert lines[-1] == "all objectives met"
    # The page shows a real run of the committed file against recipe-api: this
    # code prints the same report line for line, with other figures.
    assert report_shape(result.stdout) == report_shape(SLO_OUTPUT.read_text())


def test_a_slow_endpoint_violates_the_latency_objectives(
    slow_service: RunningExample, tmp_path: Path
) -> None:
    result = slo_check(deterministic_slo(tmp_path), f"{slow_service.url}/slow?ms={SLOW_MS}")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("errors: 0;")  # slow is not failed: the timeout is 10 s
    for objective in ("p50 latency", "p90 latency", "p99 latency"):
        figure, verdict = measured(lines, objective)
        assert figure >= SLOW_MS, objective  # latency counts the whole wait
        assert verdict == "FAIL", objective
    assert measured(lines, "error rate") == (0.0, "PASS")
    assert lines[-1] == "objectives violated"


def test_the_committed_slo_file_is_valid() -> None:
    # The file is checked before any request: a valid one gets as far as the URL.
    result = slo_check(SLO, "http://10.0.0.1/")
    assert result.returncode == 2
    assert result.stderr == (
        "slo_check: 10.0.0.1 is not a loopback address: this tool only loads this machine\n"
    )
    load = tomllib.loads(SLO.read_text())["load"]
    assert (load["rate"], load["duration"], load["concurrency"]) == (100, 5, 20)  # as shown


@pytest.mark.parametrize("failure", ["404", "refused", "timeout"])
def test_failed_requests_count_against_the_error_budget(
    run_example: StartExample, slow_service: RunningExample, tmp_path: Path, failure: str
) -> None:
    timeout = "0.005" if failure == "timeout" else "2"
    slo = slo_file(
        tmp_path,
        f"[load]\nrate = 20\nduration = 0.5\ntimeout = {timeout}\n\n"
        "[objectives]\nmax_error_rate = 0\n",
    )
    if failure == "404":
        url = f"{run_example(RECIPE_API).url}/recipes/7"  # no such recipe
    elif failure == "refused":
        url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    else:
        url = f"{slow_service.url}/slow?ms=50"  # sleeps longer than the 5 ms timeout
    result = slo_check(slo, url)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("errors: 10;")
    assert re.fullmatch(r"error rate +<= 0\.00% +100\.00%  FAIL", lines[4])


GOOD_LOAD = "[load]\nrate = 10\nduration = 1\n"
GOOD_OBJECTIVES = "[objectives]\np99_ms = 100\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot read"),
        ("[load\nrate = 10", "is not valid TOML"),
        (GOOD_LOAD + GOOD_OBJECTIVES + "[extra]\n", "unknown table or key 'extra'"),
        (GOOD_OBJECTIVES, "the [load] table is missing"),
        (GOOD_LOAD, "the [objectives] table is missing"),
        (GOOD_LOAD + "rps = 3\n" + GOOD_OBJECTIVES, "unknown key 'rps' in [load]"),
        (GOOD_LOAD + "[objectives]\np98_ms = 5\n", "unknown key 'p98_ms' in [objectives]"),
        ("[load]\nduration = 1\n" + GOOD_OBJECTIVES, "[load] needs rate"),
        ('[load]\nrate = "fast"\nduration = 1\n' + GOOD_OBJECTIVES, "rate must be a number"),
        ("[load]\nrate = true\nduration = 1\n" + GOOD_OBJECTIVES, "rate must be a number"),
        ("[load]\nrate = 10\nduration = -1\n" + GOOD_OBJECTIVES, "duration must be more than 0"),
        ("[load]\nrate = 10\nduration = 301\n" + GOOD_OBJECTIVES, "at most 300"),
        ("[load]\nrate = 1000\nduration = 200\n" + GOOD_OBJECTIVES, "between 1 and 100,000"),
        ("[load]\nrate = 0.5\nduration = 1\n" + GOOD_OBJECTIVES, "between 1 and 100,000"),
        (GOOD_LOAD + "concurrency = 0\n" + GOOD_OBJECTIVES, "concurrency must be more than 0"),
        (GOOD_LOAD + "[objectives]\n", "needs at least one objective"),
        (GOOD_LOAD + "[objectives]\nmax_error_rate = 2\n", "max_error_rate must be at least 0"),
    ],
)
def test_bad_slo_files_exit_2_with_a_message(tmp_path: Path, text: str | None, message) -> None:
    slo = tmp_path / "missing.toml" if text is None else slo_file(tmp_path, text)
    result = slo_check(slo, "http://127.0.0.1:4000/recipes/42")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("slo_check: ")
    assert message in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/recipes/42", "is not an http:// or https:// URL"),
        ("recipes/42", "is not an http:// or https:// URL"),
        ("http://example.com/", "example.com is not a loopback address"),
        ("http://10.0.0.1/", "10.0.0.1 is not a loopback address"),
    ],
)
def test_urls_off_this_machine_exit_2(url: str, message: str) -> None:
    result = slo_check(SLO, url)
    assert result.returncode == 2
    assert result.stderr.startswith("slo_check: ")
    assert message in result.stderr


def test_baseline_autocannon_script_runs(run_example) -> None:
    sysdeps.require_npm_tools()
    recipe_api = run_example(RECIPE_API)
    # from bench/, npx finds the autocannon that bench/package-lock.json pins
    result = subprocess.run(
        ["bash", str(BASELINE)],
        cwd=BENCH,
        env={**os.environ, "DURATION": "1", "URL": f"{recipe_api.url}/recipes/42"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = result.stderr  # autocannon writes its tables to stderr
    assert f"Running 1s test @ {recipe_api.url}/recipes/42" in report
    assert "10 connections" in report
    for row in ("Latency", "Req/Sec", "Bytes/Sec"):
        assert re.search(rf"│ {row} +│", report), row
    assert re.search(r"\d+k? requests in [\d.]+s", report)
    assert "errors" not in report
