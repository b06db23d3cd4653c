"""Threads, processes and the GIL: the behaviour the page claims, never the timing."""

from __future__ import annotations

import re

import pytest
from kit.examples import assert_output_is_shown, run_program
from kit.process import ROOT

PAGE = ROOT / "docs" / "why_distributed" / "threads_processes.md"
GIL_POOLS = "why_distributed/gil_pools.py"
MESSAGE_PASSING = "why_distributed/message_passing.py"
SHOWN = ROOT / "snippets" / "why_distributed" / "message_passing.txt"
POOL_LINE = re.compile(
    r"^(?P<name>\S+) +results (?P<agree>agree|DIFFER), (?P<pids>\d+) process\(es\), "
    r"(?P<threads>\d+) thread\(s\), \d+\.\d\d s$",
    re.M,
)


@pytest.fixture(scope="module")
def pools() -> dict[str, re.Match[str]]:
    # Small jobs keep the test quick; the program's barrier makes sure both
    # worker processes are up before any job runs.
    output = run_program(GIL_POOLS, "--jobs", "4", "--n", "24", "--workers", "2")
    assert output.startswith("fib(24) x 4 jobs, 2 workers per pool\n")
    found = {match["name"]: match for match in POOL_LINE.finditer(output)}
    assert list(found) == ["serial", "ThreadPoolExecutor", "ProcessPoolExecutor"], output
    return found


def test_every_way_computes_the_serial_results(pools: dict[str, re.Match[str]]) -> None:
    assert {line["agree"] for line in pools.values()} == {"agree"}


def test_serial_work_runs_in_one_thread_of_one_process(pools: dict[str, re.Match[str]]) -> None:
    assert (pools["serial"]["pids"], pools["serial"]["threads"]) == ("1", "1")


def test_thread_pool_work_stays_in_one_process(pools: dict[str, re.Match[str]]) -> None:
    assert pools["ThreadPoolExecutor"]["pids"] == "1"
    assert 1 <= int(pools["ThreadPoolExecutor"]["threads"]) <= 2


def test_process_pool_work_spreads_over_processes(pools: dict[str, re.Match[str]]) -> None:
    assert pools["ProcessPoolExecutor"]["pids"] == "2"


def test_message_passing_output_is_what_the_page_shows() -> None:
    assert_output_is_shown(run_program(MESSAGE_PASSING), SHOWN)


def test_page_includes_the_output_it_explains() -> None:
    # The page's inline Python block runs in tests/test_docs.py, with every other page's.
    assert f'--8<-- "{SHOWN.relative_to(ROOT)}"' in PAGE.read_text()
