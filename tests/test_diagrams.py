"""The diagrams are SVG drawn ahead of time, one pair per ```mermaid fence (no browser).

tools/diagrams.py (`./nox -s diagrams`) draws each fence of docs/ to a light and a
dark SVG in docs/assets/diagrams/; hooks/mermaid.py puts both in the page in place of
the fence and fails the build when a fence has none. These tests read the files:
every fence has its pair and no SVG is left over; the fences found in the Markdown
are those the build hands the hook; each SVG is named, scoped by its own ids and
fetches nothing; and the hook inlines a known diagram and refuses a changed one.
tests/site/ loads the built pages in a browser.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import markdown
import pytest
from kit.process import ROOT
from mkdocs.exceptions import PluginError
from pymdownx.superfences import fence_code_format

_spec = importlib.util.spec_from_file_location("mermaid_hook", ROOT / "hooks" / "mermaid.py")
assert _spec
assert _spec.loader
hook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hook)

SOURCES = hook.sources()
PAGE = SimpleNamespace(file=SimpleNamespace(src_uri="chapter/page.md"))


def as_mkdocs_renders(text: str) -> str:
    """Markdown to HTML with the `mermaid` custom fence of mkdocs.yml."""
    fence = {"name": "mermaid", "class": "mermaid", "format": fence_code_format}
    return markdown.markdown(
        text,
        extensions=["pymdownx.superfences", "admonition", "pymdownx.details"],
        extension_configs={"pymdownx.superfences": {"custom_fences": [fence]}},
    )


def test_the_site_has_diagrams() -> None:
    assert len(SOURCES) >= 20
    assert any("docs/index.md" in pages for pages in SOURCES.values())


def test_every_fence_has_its_light_and_dark_svg() -> None:
    assert hook.missing() == [], "run ./nox -s diagrams and commit docs/assets/diagrams/"


def test_no_svg_is_left_over() -> None:
    wanted = {f"{hook.key(source)}.{scheme}.svg" for source in SOURCES for scheme in hook.SCHEMES}
    cached = {path.name for path in hook.CACHE.iterdir()}
    assert cached - wanted == set(), "run ./nox -s diagrams: it deletes them"


def test_the_fences_found_are_those_the_build_hands_the_hook() -> None:
    """tools/diagrams.py reads the Markdown, the hook reads the HTML: one key for both."""
    from_markdown, from_html = set(), set()
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        if "mermaid" not in text:
            continue
        from_markdown |= {hook.key(source) for source in hook.fences(text)}
        blocks = hook.BLOCK.finditer(as_mkdocs_renders(text))
        from_html |= {hook.key(hook.html.unescape(block["code"])) for block in blocks}
    assert from_html == from_markdown
    assert len(from_html) == len(SOURCES)


def test_a_fence_in_an_admonition_is_found_too() -> None:
    text = '!!! note "A note"\n\n    ```mermaid\n    flowchart LR\n        A --> B\n    ```\n'
    assert list(hook.fences(text)) == ["flowchart LR\n    A --> B"]
    (block,) = hook.BLOCK.finditer(as_mkdocs_renders(text))
    assert hook.key(hook.html.unescape(block["code"])) == hook.key("flowchart LR\n    A --> B")


@pytest.mark.parametrize("source", sorted(SOURCES), ids=lambda s: hook.key(s))
def test_each_svg_is_named_scoped_and_self_contained(source: str) -> None:
    for scheme in hook.SCHEMES:
        svg = hook.svg_path(source, scheme).read_text(encoding="utf-8")
        own = f"d{hook.key(source)}-{scheme}"
        assert svg.startswith(f'<svg id="{own}"')
        assert re.search(r'<svg [^>]*role="img"', svg)
        label = re.search(r'<svg [^>]*aria-label="([^"]{10,})"', svg)
        assert label, "a screen reader would say only 'image'"
        ids = re.findall(r'\bid="([^"]+)"', svg)
        assert [name for name in ids if not name.startswith(own)] == []
        assert len(ids) == len(set(ids))
        assert "<foreignObject" not in svg  # SVG text: no label cut off by a wider font
        assert 'aria-roledescription="error"' not in svg
        assert not re.search(r'(?:href|src)="(?!#)', svg), "an SVG that fetches something"


def figure_of(source: str) -> str:
    html = as_mkdocs_renders(f"Before.\n\n```mermaid\n{source}\n```\n\nAfter.\n")
    assert '<pre class="mermaid">' in html
    return hook.on_page_content(html, page=PAGE)


def test_the_hook_puts_both_svgs_in_place_of_the_fence() -> None:
    source = next(iter(SOURCES))
    name = hook.key(source)
    page = figure_of(source)
    assert 'class="mermaid"' not in page  # Material would fetch Mermaid for it
    figure = re.search(r'<figure class="diagram">(.*?)</figure>', page, re.DOTALL)
    assert figure
    assert re.findall(r'<svg id="([^"]+)"', figure[1]) == [f"d{name}-light", f"d{name}-dark"]
    assert page.index("Before.") < figure.start() < figure.end() < page.index("After.")


def test_a_changed_diagram_fails_the_build_until_it_is_drawn() -> None:
    """The negative control: one more node, no SVG for it, the build stops and says why."""
    source = next(iter(SOURCES)) + "\n    extra --> node"
    with pytest.raises(PluginError, match=r"chapter/page\.md: .*\./nox -s diagrams"):
        figure_of(source)


def test_the_cache_is_not_copied_as_files(tmp_path: Path) -> None:
    """The SVGs are in the pages already: the site does not serve them again as files."""
    from mkdocs.structure.files import File, Files

    uris = ["index.md", "assets/diagrams/0123456789abcdef.light.svg", "assets/logo.svg"]
    files = Files([File(uri, str(ROOT / "docs"), str(tmp_path), False) for uri in uris])
    assert [f.src_uri for f in hook.on_files(files, config=None)] == [uris[0], uris[2]]
