"""Threads, processes and the GIL: the behaviour the page claims, never the timing."""

from __future__ import annotations

import asyncio
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

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


# How big are the pools? asyncio's default executor, in this process.


def cpus() -> int:
    return getattr(os, "process_cpu_count", os.cpu_count)() or 1


def default_executor_after_two_jobs() -> tuple[int, int, str]:
    async def main() -> tuple[int, int, str]:
        for _ in range(2):
            name = await asyncio.to_thread(lambda: threading.current_thread().name)
        default = asyncio.get_running_loop()._default_executor
        assert isinstance(default, ThreadPoolExecutor)
        return default._max_workers, len(default._threads), name

    return asyncio.run(main())


def test_default_executor_has_min_32_cpus_plus_4_threads_started_as_needed() -> None:
    assert default_executor_after_two_jobs() == (min(32, cpus() + 4), 1, "asyncio_0")


def test_default_executor_is_capped_at_32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 100)
    monkeypatch.setattr(os, "process_cpu_count", lambda: 100, raising=False)
    assert default_executor_after_two_jobs()[0] == 32


def test_set_default_executor_replaces_the_pool_to_thread_uses() -> None:
    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(2, thread_name_prefix="ours")
        )
        return await asyncio.to_thread(lambda: threading.current_thread().name)

    assert asyncio.run(main()) == "ours_0"
