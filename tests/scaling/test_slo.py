"""Load testing and SLOs: every claim of docs/scaling/load_testing.md, over real sockets.

slo_check.py is started with the run line from its docstring (only the SLO file
and the URL change), against chapter 1's recipe-api (fast) and slow_service
(every answer sleeps first: slow). Outcomes never hang on timing: the passing
case has generous targets at a low rate, the failing cases targets no server can
meet (a 1 ms p99 for an answer that sleeps 50 ms) or errors on every request.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from kit import sysdeps
from kit.examples import assert_output_is_shown
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


def without_figures(text: str) -> str:
    """The shape of the report: the figures of one run differ from the next."""
    text = re.sub(r"behind schedule: \d+ times", "behind schedule: N times", text)
    return re.sub(r" +\d+(\.\d+)?( ms|%)  (PASS|FAIL)", r" N\2  \3", text)


def test_committed_slo_passes_for_recipe_api(run_example) -> None:
    recipe_api = run_example(RECIPE_API)
    result = slo_check(SLO, f"{recipe_api.url}/recipes/42")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"500 requests to {recipe_api.url}/recipes/42 at 100/s for 5 s "
        "(open loop, at most 20 in flight)"
    )
    assert lines[1].startswith("errors: 0;")
    for objective in ("p50 latency", "p90 latency", "p99 latency", "error rate"):
        assert any(line.startswith(objective) and line.endswith("PASS") for line in lines)
    assert lines[-1] == "all objectives met"
    # the page shows this run's output, with the URL it documents
    shown = result.stdout.replace(recipe_api.url, "http://127.0.0.1:4000")
    assert_output_is_shown(shown, SLO_OUTPUT, normalize=without_figures)


def test_slow_endpoint_violates_a_latency_objective(run_example, tmp_path: Path) -> None:
    service = run_example(SLOW)
    slo = slo_file(
        tmp_path,
        "[load]\nrate = 10\nduration = 1\nconcurrency = 2\n\n"
        "[objectives]\np50_ms = 60000\np99_ms = 1\n",
    )
    # Every answer sleeps 50 ms first: no request can take under 1 ms, on any machine.
    result = slo_check(slo, f"{service.url}/slow?ms=50")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("p50 latency") and line.endswith("PASS") for line in lines)
    assert any(line.startswith("p99 latency") and line.endswith("FAIL") for line in lines)
    assert lines[-1] == "objectives violated"


@pytest.mark.parametrize("failure", ["404", "refused", "timeout"])
def test_failed_requests_count_against_the_error_budget(
    run_example, tmp_path: Path, failure: str
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
        url = f"{run_example(SLOW).url}/slow?ms=50"  # sleeps longer than the 5 ms timeout
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
