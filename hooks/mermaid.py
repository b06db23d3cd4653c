"""Mermaid diagrams as SVG drawn ahead of time: no reader's browser runs Mermaid.

Each ```mermaid fence of docs/ has two SVGs in docs/assets/diagrams/, named by the
fence's source (`<sha256, 16 hex>.light.svg` and `.dark.svg`), which
`./nox -s diagrams` (tools/diagrams.py) renders with the Mermaid that package-lock.json
pins, in a headless Chromium, and commits. As a MkDocs hook (`hooks:` in mkdocs.yml)
this file replaces each `<pre class="mermaid">` that the fence becomes with a
`<figure class="diagram">` holding both SVGs inline; docs/stylesheets/diagrams.css
shows the one of the reader's colour scheme. A fence without its SVGs (a new or
changed diagram) fails the build, naming the page and `./nox -s diagrams`: the build
itself needs no browser and no node_modules, and `mkdocs build --strict` proves the
committed SVGs are those of the sources.

Run as a script (`python hooks/mermaid.py`, as `nox -s docs` does) it makes the same
check over docs/ before the build, in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import html
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CACHE = DOCS / "assets" / "diagrams"
SCHEMES = ("light", "dark")  # mermaid's "default" theme and its "dark" one
STYLESHEET = "stylesheets/diagrams.css"
RUN = "run `./nox -s diagrams` and commit docs/assets/diagrams/"

# A ```mermaid fence in Markdown, at any indent (inside an admonition or a tab).
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})mermaid[ \t]*\n"
    r"(?P<body>.*?)\n(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
# What pymdownx.superfences makes of one (the `mermaid` custom fence in mkdocs.yml).
BLOCK = re.compile(r'<pre class="mermaid"><code>(?P<code>.*?)</code></pre>', re.DOTALL)


def key(source: str) -> str:
    """A diagram's name in the cache: its source's sha256, less surrounding blank space."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:16]


def svg_path(source: str, scheme: str) -> Path:
    return CACHE / f"{key(source)}.{scheme}.svg"


def fences(text: str) -> Iterator[str]:
    """The source of each mermaid fence in a Markdown text."""
    for match in FENCE.finditer(text):
        indent = match["indent"]
        lines = match["body"].split("\n")
        yield "\n".join(line.removeprefix(indent) for line in lines)


def sources() -> dict[str, list[str]]:
    """Every diagram source in docs/, with the pages that have it."""
    found: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for source in fences(page.read_text(encoding="utf-8")):
            found.setdefault(source.strip(), []).append(page.relative_to(ROOT).as_posix())
    return found


def missing() -> list[str]:
    """`page: first line` of each fence whose SVGs are not both in the cache."""
    return [
        f"{pages[0]}: {source.splitlines()[0]}"
        for source, pages in sources().items()
        if not all(svg_path(source, scheme).exists() for scheme in SCHEMES)
    ]


def figure(source: str) -> str | None:
    """The <figure> that stands for a diagram, or None when its SVGs are not cached."""
    paths = [svg_path(source, scheme) for scheme in SCHEMES]
    if not all(path.exists() for path in paths):
        return None
    svgs = "".join(path.read_text(encoding="utf-8").strip() for path in paths)
    return f'<figure class="diagram">{svgs}</figure>'


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    # The stylesheet that shows one SVG of each pair, whether or not mkdocs.yml lists it.
    if STYLESHEET not in config.extra_css:
        config.extra_css.append(STYLESHEET)
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    # The SVGs are inlined in the pages: not copied as files of their own.
    for file in [f for f in files if f.src_uri.startswith("assets/diagrams/")]:
        files.remove(file)
    return files


def on_page_content(page_html: str, page: Any, **kwargs: Any) -> str:
    from mkdocs.exceptions import PluginError

    absent: list[str] = []

    def replace(match: re.Match[str]) -> str:
        source = html.unescape(match["code"])
        found = figure(source)
        if found is None:
            absent.append(source.strip().splitlines()[0])
            return match[0]
        return found

    result = BLOCK.sub(replace, page_html)
    if absent:
        where = page.file.src_uri if getattr(page, "file", None) else "a page"
        raise PluginError(
            f"{where}: no pre-rendered SVG for the mermaid diagram(s) "
            f"{', '.join(repr(line) for line in absent)}: {RUN}"
        )
    return result


if __name__ == "__main__":
    absent = missing()
    if absent:
        sys.exit("diagrams without their SVGs:\n  " + "\n  ".join(absent) + f"\n{RUN}")
