"""Each benchmark chart is drawn from the table it stands beside, and is shown with it.

bench/charts.py lists the charts: a results file under snippets/ and the SVG that
`nox -s bench` draws from it under docs/. The SVG carries the results file's stamp
as its caption, so a table measured again without its chart redrawn (or a chart
drawn from other figures) shows up here as a stamp that differs.
"""

from __future__ import annotations

import ast
import html
import os
import re

import pytest
from kit.process import ROOT

CHARTS_PY = ROOT / "bench" / "charts.py"


def charts() -> list[tuple[str, str]]:
    """(results, svg) of every Chart(...) in bench/charts.py, read without importing it."""
    found = []
    for node in ast.walk(ast.parse(CHARTS_PY.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Chart":
            results, svg = (ast.literal_eval(arg) for arg in node.args[:2])
            found.append((results, svg))
    return found


CHARTS = charts()


def stamp(results_text: str) -> str:
    pattern = r"<small>(Measured .*?\.)(?: Regenerate with .*)?</small>"
    match = re.search(pattern, results_text, re.S)
    assert match, "the results file has no stamp line"
    return " ".join(match[1].split())


def test_the_charts_are_found() -> None:
    assert len(CHARTS) >= 15
    assert len({svg for _, svg in CHARTS}) == len(CHARTS)


@pytest.mark.parametrize(("results", "svg"), CHARTS, ids=[svg for _, svg in CHARTS])
def test_chart_is_drawn_from_the_results_beside_it(results: str, svg: str) -> None:
    results_text = (ROOT / "snippets" / results).read_text()
    drawn = ROOT / "docs" / svg
    assert drawn.exists(), f"docs/{svg} missing: run `./nox -s bench -- charts`"
    svg_text = drawn.read_text()
    # The caption is wrapped over several <text> elements: compare the words in order.
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", svg_text)).split())
    assert stamp(results_text) in words, (
        f"docs/{svg} was not drawn from the current snippets/{results}: "
        "run `./nox -s bench -- charts` and commit both"
    )
    # Nothing for the browser to fetch: no fonts, no images, no scripts from elsewhere.
    assert not re.search(r"""(?:href|src)=["']https?:""", svg_text)


@pytest.mark.parametrize(("results", "svg"), CHARTS, ids=[svg for _, svg in CHARTS])
def test_every_page_with_the_table_shows_the_chart(results: str, svg: str) -> None:
    include = f'--8<-- "snippets/{results}"'
    pages = [page for page in (ROOT / "docs").rglob("*.md") if include in page.read_text()]
    assert pages, f"no page includes snippets/{results}"
    for page in pages:
        image = os.path.relpath(ROOT / "docs" / svg, page.parent)
        text = page.read_text()
        assert f"]({image})" in text, f"{page.relative_to(ROOT)} shows no {image}"
        # The table stays, collapsed under the chart.
        assert re.search(r'\?\?\? note "The figures, as a table"\n\n\s+' + re.escape(include), text)
