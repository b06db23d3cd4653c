"""The event loop page: the order event_loop_order.py prints is the order the page shows;
timer handles do what the page says; a call_soon chain does not starve I/O, and Node's
process.nextTick chain does."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import pytest
from kit import sysdeps
from kit.examples import assert_output_is_shown, run_program
from kit.process import ROOT
from kit.snippets import run_line

EXAMPLE = "why_distributed/event_loop_order.py"
SHOWN = ROOT / "snippets" / "why_distributed" / "event_loop_order.txt"
TIMERS = "why_distributed/timer_handles.py"
TIMERS_SHOWN = ROOT / "snippets" / "why_distributed" / "timer_handles.txt"
STARVATION = "why_distributed/starvation.py"
STARVATION_SHOWN = ROOT / "snippets" / "why_distributed" / "starvation.txt"
NEXT_TICK = ROOT / "snippets" / "why_distributed" / "next_tick.js"
NEXT_TICK_SHOWN = ROOT / "snippets" / "why_distributed" / "next_tick.txt"
PAGE = ROOT / "docs" / "why_distributed" / "event_loop.md"
Chains = dict[str, tuple[str, str]]


def test_run_line_is_the_plain_command() -> None:
    for example in (EXAMPLE, TIMERS, STARVATION):
        assert run_line(example) == f"python examples/{example}"


def test_printed_order_is_the_order_the_page_shows() -> None:
    assert_output_is_shown(run_program(EXAMPLE), SHOWN)


def test_order_is_the_same_on_every_run() -> None:
    assert run_program(EXAMPLE) == run_program(EXAMPLE) == SHOWN.read_text()


def test_shown_files_are_used_by_the_page() -> None:
    page = PAGE.read_text()
    for shown in (SHOWN, TIMERS_SHOWN, STARVATION_SHOWN, NEXT_TICK, NEXT_TICK_SHOWN):
        assert f'--8<-- "{Path(shown).relative_to(ROOT)}"' in page


# Timers and their handles


def test_timer_handles_output_is_what_the_page_shows() -> None:
    output = run_program(TIMERS)
    assert_output_is_shown(output, TIMERS_SHOWN)
    # Neither the cancelled timers nor the one pending when main returned ever ran,
    # and asyncio.run returned without waiting an hour for the last one.
    assert "cancelled 20 ms timer fired" not in output
    assert "10 s timer fired" not in output
    assert "an hour later" not in output
    assert output.endswith("asyncio.run has returned, without waiting for the timer\n")


def fired_timers(cancel: bool) -> list[str]:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        fired: list[str] = []
        loop.call_later(0.01, fired.append, "kept")
        dropped = loop.call_later(0.01, fired.append, "dropped")
        if cancel:
            dropped.cancel()
            assert dropped.cancelled()
        # A third timer due after both: by the time it fires, both had their chance.
        await asyncio.sleep(0.02)
        return fired

    return asyncio.run(main())


def test_a_cancelled_timer_never_runs() -> None:
    assert fired_timers(cancel=True) == ["kept"]
    assert fired_timers(cancel=False) == ["kept", "dropped"]  # control: it would have run


def test_when_is_on_the_loops_monotonic_clock() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        before = loop.time()
        handle = loop.call_later(10, print)
        after = loop.time()
        assert before + 10 <= handle.when() <= after + 10  # call_at(loop.time() + delay)
        first, on_loop, last = time.monotonic(), loop.time(), time.monotonic()
        assert first <= on_loop <= last  # the default loop's clock is time.monotonic()
        handle.cancel()

    asyncio.run(main())


# Chains of callbacks: starving the loop, or not


CHAIN_LINE = re.compile(
    r"^(?P<name>.+?) +I/O serviced: (?P<io>never|after link \d+) +"
    r"timer fired during the chain: (?P<timer>yes|no)$",
    re.M,
)


def chains(output: str) -> Chains:
    """Each chain's line: (when the I/O callback ran, whether the timer fired)."""
    return {m["name"]: (m["io"], m["timer"]) for m in CHAIN_LINE.finditer(output)}


@pytest.fixture(scope="module")
def starvation() -> Chains:
    output = run_program(STARVATION)
    assert_output_is_shown(output, STARVATION_SHOWN)
    return chains(output)


def test_a_call_soon_chain_does_not_starve_io_or_timers(starvation: Chains) -> None:
    assert starvation["call_soon chain"] == ("after link 1", "yes")


def test_a_sleep_zero_loop_does_not_starve_io_or_timers(starvation: Chains) -> None:
    assert starvation["sleep(0) loop"] == ("after link 2", "yes")


def test_awaits_that_never_suspend_starve_the_loop(starvation: Chains) -> None:
    # The blocking page explains these two lines.
    assert starvation["drain a full queue"] == ("never", "no")
    assert starvation["drain, sleep(0) /100"] == ("after link 200", "yes")


def test_node_next_tick_and_promise_chains_starve_io_and_set_immediate_does_not() -> None:
    node = sysdeps.require("node")["node"]
    result = subprocess.run(
        [node, str(NEXT_TICK.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stderr == ""
    assert_output_is_shown(result.stdout, NEXT_TICK_SHOWN)
    assert chains(result.stdout) == {
        "process.nextTick chain": ("never", "no"),
        "await in a loop": ("never", "no"),
        "setImmediate chain": ("after link 0", "yes"),
    }
