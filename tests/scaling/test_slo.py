"""Load testing and SLOs: the claims of docs/scaling/load_testing.md and slos.md, on sockets.

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

import ast
import functools
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

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
SLO_BAD_OUTPUT = ROOT / "snippets/scaling/slo_check_bad.out"
COLUMNS = ROOT / "snippets/scaling/autocannon_columns.txt"
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


def committed_objectives() -> dict:
    """The objectives of the committed slo.toml, the file the page shows."""
    return tomllib.loads(SLO.read_text())["objectives"]


SLOW_MS = 1500  # every answer of the slow endpoint sleeps this long first
TARGET_MS = 1000  # between the two: met by the fast endpoint on any machine, never by the slow


def deterministic_slo(tmp_path: Path) -> Path:
    """The committed objectives, with targets that only the endpoint decides.

    10 requests in one second, all in flight at once if need be and each given
    10 s: no queueing in the generator and no timeout, even with every core busy.
    """
    latency = ", ".join(
        f"{{ percentile = {objective['percentile']}, max_ms = {TARGET_MS} }}"
        for objective in committed_objectives()["latency"]
    )
    return slo_file(
        tmp_path,
        "[load]\nrate = 10\nduration = 1\nconcurrency = 20\ntimeout = 10\n\n"
        f"[objectives]\nlatency = [{latency}]\nmax_error_rate = 0.01\n",
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
GOOD_OBJECTIVES = "[objectives]\nlatency = [{ percentile = 99, max_ms = 100 }]\n"


@functools.cache
def slo_check_module() -> ModuleType:
    """slo_check.py imported by path (it is a single file, not a package)."""
    spec = importlib.util.spec_from_file_location("slo_check", ROOT / "examples" / SLO_CHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["slo_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def documented_exit_code_for_bad_input() -> int:
    """The exit code slo_check.py's docstring promises for bad input."""
    source = (ROOT / "examples" / SLO_CHECK).read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    match = re.search(r"(\d) for bad\s+input", docstring)
    assert match, "the docstring says which exit code bad input gets"
    return int(match[1])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD_LOAD + GOOD_OBJECTIVES + "[extra]\n", "extra: Extra inputs are not permitted"),
        (GOOD_OBJECTIVES, "load: Field required"),
        (GOOD_LOAD, "objectives: Field required"),
        (GOOD_LOAD + "rps = 3\n" + GOOD_OBJECTIVES, "load.rps: Extra inputs are not permitted"),
        (  # the typo that would silently drop an objective
            GOOD_LOAD + "[objectives]\np99_ms = 5\n",
            "objectives.p99_ms: Extra inputs are not permitted",
        ),
        ("[load]\nduration = 1\n" + GOOD_OBJECTIVES, "load.rate: Field required"),
        (
            '[load]\nrate = "10"\nduration = 1\n' + GOOD_OBJECTIVES,
            "load.rate: Input should be a valid number",
        ),
        (
            "[load]\nrate = true\nduration = 1\n" + GOOD_OBJECTIVES,
            "load.rate: Input should be a valid number",
        ),
        (
            "[load]\nrate = 10\nduration = -1\n" + GOOD_OBJECTIVES,
            "load.duration: Input should be greater than 0",
        ),
        (
            "[load]\nrate = 10\nduration = 301\n" + GOOD_OBJECTIVES,
            "load.duration: Input should be less than or equal to 300",
        ),
        (
            "[load]\nrate = 1000\nduration = 200\n" + GOOD_OBJECTIVES,
            "load: rate x duration must be between 1 and 100,000 requests",
        ),
        (
            "[load]\nrate = 0.5\nduration = 1\n" + GOOD_OBJECTIVES,
            "load: rate x duration must be between 1 and 100,000 requests",
        ),
        (
            GOOD_LOAD + "concurrency = 0\n" + GOOD_OBJECTIVES,
            "load.concurrency: Input should be greater than 0",
        ),
        (
            GOOD_LOAD + "concurrency = 2.5\n" + GOOD_OBJECTIVES,
            "load.concurrency: Input should be a valid integer",
        ),
        (GOOD_LOAD + "[objectives]\n", "objectives: needs at least one objective"),
        (
            GOOD_LOAD + "[objectives]\nmax_error_rate = 2\n",
            "objectives.max_error_rate: Input should be less than or equal to 1",
        ),
        (  # the field path goes down into the list: the second latency objective
            GOOD_LOAD + "[objectives]\nlatency = [{ percentile = 50, max_ms = 5 },"
            " { percentile = 100.5, max_ms = 5 }]\n",
            "objectives.latency.1.percentile: Input should be less than or equal to 100",
        ),
        (
            GOOD_LOAD + "[objectives]\nlatency = [{ percentile = 0, max_ms = 5 }]\n",
            "objectives.latency.0.percentile: Input should be greater than 0",
        ),
        (
            GOOD_LOAD + "[objectives]\nlatency = [{ percentile = 99, max_ms = 0 }]\n",
            "objectives.latency.0.max_ms: Input should be greater than 0",
        ),
        (
            GOOD_LOAD + "[objectives]\nlatency = [{ percentile = 99 }]\n",
            "objectives.latency.0.max_ms: Field required",
        ),
        (
            GOOD_LOAD
            + "[objectives]\nlatency = ["
            + ", ".join(["{ percentile = 99, max_ms = 5 }"] * 11)
            + "]\n",
            "objectives.latency: List should have at most 10 items after validation, not 11",
        ),
    ],
)
def test_a_bad_slo_file_exits_with_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    """The program's own main(), in this process: many cases, one interpreter start."""
    slo = slo_file(tmp_path, text)
    code = slo_check_module().main(["--slo", str(slo), "http://127.0.0.1:4000/recipes/42"])
    out, err = capsys.readouterr()
    assert code == documented_exit_code_for_bad_input() == 2
    assert out == ""  # nothing was sent: the file is checked first
    assert err == f"slo_check: {slo}: {problem}\n"  # one line, no traceback


def test_the_error_the_page_shows(tmp_path: Path) -> None:
    latency = "[{ percentile = 50, max_ms = 5 }, { percentile = 100.5, max_ms = 5 }]"
    slo = slo_file(tmp_path, f"{GOOD_LOAD}[objectives]\nlatency = {latency}\n")
    result = slo_check(slo, "http://127.0.0.1:4000/recipes/42")
    assert result.returncode == 2
    assert result.stderr.replace(str(slo), "slo.toml") == SLO_BAD_OUTPUT.read_text()


def test_every_problem_of_a_file_is_on_the_one_line(tmp_path: Path) -> None:
    slo = slo_file(tmp_path, "[load]\nrate = 0\nduration = 1\n[objectives]\nmax_error_rate = -1\n")
    result = slo_check(slo, "http://127.0.0.1:4000/recipes/42")
    assert result.returncode == 2
    assert result.stderr == (
        f"slo_check: {slo}: load.rate: Input should be greater than 0; "
        "objectives.max_error_rate: Input should be greater than or equal to 0\n"
    )


@pytest.mark.parametrize(
    ("text", "message"), [(None, "cannot read"), ("[load\nrate = 10", "is not valid TOML")]
)
def test_an_unreadable_slo_file_exits_2(tmp_path: Path, text: str | None, message: str) -> None:
    slo = tmp_path / "missing.toml" if text is None else slo_file(tmp_path, text)
    result = slo_check(slo, "http://127.0.0.1:4000/recipes/42")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("slo_check: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


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
    # the columns the page explains are autocannon's own, table by table and row by row
    assert table_cells(report) == table_cells(COLUMNS.read_text())
    # a one-second run has one sample per second: every Req/Sec percentile is the same
    assert "# of samples: 1" in report


def table_cells(text: str) -> list[list[str]]:
    """The header rows (Stat...) and the first cell of each figure row, in order."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows.append(cells if cells[0] == "Stat" else cells[:1])
    return rows
