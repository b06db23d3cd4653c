"""The event loop page: the order event_loop_order.py prints is the order the page shows."""

from __future__ import annotations

from pathlib import Path

from kit.examples import assert_output_is_shown, run_program
from kit.process import ROOT
from kit.snippets import run_line

EXAMPLE = "why_distributed/event_loop_order.py"
SHOWN = ROOT / "snippets" / "why_distributed" / "event_loop_order.txt"


def test_run_line_is_the_plain_command() -> None:
    assert run_line(EXAMPLE) == f"python examples/{EXAMPLE}"


def test_printed_order_is_the_order_the_page_shows() -> None:
    assert_output_is_shown(run_program(EXAMPLE), SHOWN)


def test_order_is_the_same_on_every_run() -> None:
    assert run_program(EXAMPLE) == run_program(EXAMPLE) == SHOWN.read_text()


def test_shown_file_is_used_by_the_page() -> None:
    page = (ROOT / "docs" / "why_distributed" / "event_loop.md").read_text()
    assert f'--8<-- "{Path(SHOWN).relative_to(ROOT)}"' in page
