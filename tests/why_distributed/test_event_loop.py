"""The event loop page: the order event_loop_order.py prints is the order the page shows."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness import ROOT, command_from_run_line, run_line

EXAMPLE = "why_distributed/event_loop_order.py"
SHOWN = ROOT / "snippets" / "why_distributed" / "event_loop_order.txt"


def run(example: str) -> str:
    """Run a one-shot example exactly as its docstring's run line says."""
    line_env, argv = command_from_run_line(run_line(example))
    result = subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, **line_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_run_line_is_the_plain_command() -> None:
    assert run_line(EXAMPLE) == f"python examples/{EXAMPLE}"


def test_printed_order_is_the_order_the_page_shows() -> None:
    output = run(EXAMPLE)
    assert output == SHOWN.read_text(), (
        f"the output changed; if that is intended, regenerate the page's copy with\n"
        f"  python examples/{EXAMPLE} > {SHOWN.relative_to(ROOT)}\n"
        f"and check that the page's explanation still matches. Output:\n{output}"
    )


def test_order_is_the_same_on_every_run() -> None:
    assert run(EXAMPLE) == run(EXAMPLE) == SHOWN.read_text()


def test_shown_file_is_used_by_the_page() -> None:
    page = (ROOT / "docs" / "why_distributed" / "event_loop.md").read_text()
    assert f'--8<-- "{Path(SHOWN).relative_to(ROOT)}"' in page
