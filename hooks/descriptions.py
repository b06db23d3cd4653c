"""Each page's own <meta name="description">: its front matter's, or its first paragraph.

Material writes `page.meta.description` into the page head and falls back to the
site's description, so without this hook every page would tell search engines and
link previews the same sentence. The first paragraph of prose after the title is
what a reader meets first; it is cut at a word boundary to about 160 characters.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.structure.pages import Page

LIMIT = 160
SKIP = re.compile(r"^(?:#|!!!|\?\?\?|```|~~~|\||<|--8<--|[-*+] |\d+\. |\*\[|    |\[.*\]:)")


def first_paragraph(markdown: str) -> str:
    """The first block of plain prose lines, as text without Markdown markup."""
    paragraph: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        if not stripped:
            if paragraph:
                break
            continue
        if not paragraph and SKIP.match(line):
            continue
        if paragraph and SKIP.match(line):
            break
        paragraph.append(stripped)
    return plain(" ".join(paragraph))


def plain(text: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)  # reference links
    text = re.sub(r"[*_`]", "", text)  # emphasis and code marks
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    # The theme writes the description into an attribute as it is: nothing to escape.
    text = text.replace('"', "'").replace("&", "and").replace("<", "").replace(">", "")
    return " ".join(text.split())


def shorten(text: str, limit: int = LIMIT) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def on_page_markdown(markdown: str, page: Page, **_: Any) -> str:
    if not page.meta.get("description"):
        description = first_paragraph(markdown)
        if description:
            page.meta["description"] = shorten(description)
    return markdown
