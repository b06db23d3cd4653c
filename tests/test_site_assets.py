"""The built site needs nothing from another host (issue 15, section 1), read from its files.

The site is built once, with --strict, into a temporary directory. Then:
- no page loads a script, stylesheet, font, image or frame from another host (links
  a reader may follow, `<a href>`, are fine);
- no page loads Mermaid: each diagram is SVG drawn ahead of time and inlined
  (hooks/mermaid.py), and no `pre.mermaid` is left for Material to render (it would
  fetch Mermaid from unpkg.com);
- no page asks for Google Fonts, nor mounts Material's repository widget (which
  calls the GitHub API);
- the 404 page offers search and links every chapter;
- the repository has its LICENSE, and the footer says so;
- every page has a description of its own, a last-update date, an edit button, and
  abbreviations explained on hover.

tests/site/ loads the same pages in a browser; this module reads the files.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kit import site as kit_site
from kit.process import ROOT

SITE_URL = "https://distributed-python.github.io/"
MKDOCS_YML = ROOT / "mkdocs.yml"
CHAPTERS = sorted(path.parent.name for path in (ROOT / "docs").glob("*/index.md"))

# Attributes whose URL the browser fetches by itself when it reads the page.
FETCHED = {
    ("script", "src"),
    ("link", "href"),
    ("img", "src"),
    ("img", "srcset"),
    ("source", "src"),
    ("source", "srcset"),
    ("video", "src"),
    ("video", "poster"),
    ("audio", "src"),
    ("iframe", "src"),
    ("embed", "src"),
    ("object", "data"),
    ("image", "href"),
    ("use", "href"),
    ("input", "src"),
}
# <link rel=...> values that name the page rather than fetch anything.
NOT_FETCHED_RELS = {"canonical", "alternate", "author", "license", "next", "prev"}
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")


class Resources(HTMLParser):
    """Every URL a page makes the browser fetch, with its tag, plus the scripts' src."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fetched: list[tuple[str, str]] = []
        self.scripts: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "style":
            self.in_style = True
        if "style" in values:
            self.fetched += [(f"<{tag} style>", url) for url in CSS_URL.findall(values["style"])]
        if tag == "link" and set(values.get("rel", "").split()) & NOT_FETCHED_RELS:
            return
        for name, value in values.items():
            if (tag, name) in FETCHED and value:
                urls = (
                    [part.split()[0] for part in value.split(",")] if "srcset" in name else [value]
                )
                self.fetched += [(f"<{tag} {name}>", url) for url in urls if url]
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self.fetched += [("<style>", url) for url in CSS_URL.findall(data)]


def is_outside(url: str) -> bool:
    """A URL with a host of its own that is not the site's (relative and data: URLs are not)."""
    parts = urlsplit(url)
    if not parts.netloc:
        return parts.scheme not in {"", "data", "blob"}  # e.g. "javascript:" is neither
    return not url.startswith(SITE_URL)


@pytest.fixture(scope="module")
def site() -> Path:
    """The site built from this tree, strictly (kit.site: once per tree, shared with
    the browser test)."""
    return kit_site.built_site()


class Page:
    def __init__(self, name: str, html: str) -> None:
        self.name, self.html = name, html
        self.resources = Resources()
        self.resources.feed(html)
        self.resources.close()


@pytest.fixture(scope="module")
def pages(site: Path) -> list[Page]:
    """Every built page, parsed once (about 75 pages, 11 MB of HTML)."""
    return [
        Page(path.relative_to(site).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(site.rglob("*.html"))
    ]


def test_site_url_is_the_one_these_tests_allow() -> None:
    assert f"\nsite_url: {SITE_URL}\n" in (ROOT / "mkdocs.yml").read_text()


def test_no_page_loads_anything_from_another_host(pages: list[Page]) -> None:
    assert len(pages) > 50  # every page was read, not an empty directory
    outside = [
        f"{page.name}: {tag} {url}"
        for page in pages
        for tag, url in page.resources.fetched
        if is_outside(url)
    ]
    assert not outside, "\n".join(outside)


def test_no_stylesheet_loads_anything_from_another_host(site: Path) -> None:
    outside = [
        f"{path.relative_to(site)}: {url}"
        for path in sorted(site.rglob("*.css"))
        for url in CSS_URL.findall(path.read_text(encoding="utf-8"))
        if is_outside(url)
    ]
    assert not outside, "\n".join(outside)


def test_google_fonts_appear_nowhere(site: Path) -> None:
    for path in sorted(site.rglob("*")):
        if path.is_file() and path.suffix in {".html", ".css", ".js", ".json", ".xml"}:
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "fonts.googleapis.com" not in text, path
            assert "fonts.gstatic.com" not in text, path


def test_no_page_loads_mermaid(site: Path, pages: list[Page]) -> None:
    assert sorted(site.rglob("*mermaid*")) == []  # the 3.5 MB script is not even copied
    for page in pages:
        assert not [src for src in page.resources.scripts if "mermaid" in src], page.name
        assert 'class="mermaid"' not in page.html, page.name


def test_every_diagram_is_in_its_page_as_svg(pages: list[Page]) -> None:
    with_diagrams = [page.name for page in pages if '<figure class="diagram"><svg' in page.html]
    assert "why_distributed/event_loop/index.html" in with_diagrams
    assert len(with_diagrams) >= 20


def test_no_page_mounts_the_repository_widget_that_calls_the_github_api(
    site: Path, pages: list[Page]
) -> None:
    for page in pages:
        assert 'data-md-component="source"' not in page.html, page.name
    # The link itself stays, as a plain link.
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="https://github.com/distributed-python/distributed-python"' in home


def test_the_404_page_offers_search_and_every_chapter(site: Path) -> None:
    html = (site / "404.html").read_text(encoding="utf-8")
    assert 'for="__search"' in html  # a button that opens Material's search
    links = set(re.findall(r'<a href="([^"]+)"', html))
    assert len(CHAPTERS) >= 10
    missing = [slug for slug in CHAPTERS if f"/{slug}/" not in links]
    assert not missing, missing


def test_the_repository_has_a_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Distributed Python authors" in text


def content_pages(pages: list[Page]) -> list[Page]:
    """The pages written in docs/ (not 404.html, not the search index's assets)."""
    return [page for page in pages if page.name.endswith("index.html")]


def test_every_page_has_a_description_of_its_own(pages: list[Page]) -> None:
    """hooks/descriptions.py: search engines and link previews see the page's first words."""
    site_description = re.search(r"^site_description: (.*)$", MKDOCS_YML.read_text(), re.M)
    assert site_description
    seen: dict[str, str] = {}
    problems = []
    for page in content_pages(pages):
        if page.name == "index.html":
            continue  # the home page: the site's own description is its own
        match = re.search(r'<meta name="description" content="([^"]*)"', page.html)
        description = match[1] if match else ""
        if not description or description == site_description[1].strip():
            problems.append(f"{page.name}: no description of its own")
        elif len(description) > 170:
            problems.append(f"{page.name}: {len(description)} characters")
        elif description in seen:
            problems.append(f"{page.name}: the same description as {seen[description]}")
        seen.setdefault(description, page.name)
    assert not problems, "\n".join(problems)


def test_every_page_says_when_it_changed_and_where_to_edit_it(pages: list[Page]) -> None:
    problems = []
    for page in content_pages(pages):
        if "git-revision-date-localized-plugin-date" not in page.html:
            problems.append(f"{page.name}: no last-update date")
        if not re.search(r'href="[^"]+/edit/main/docs/[^"]+\.md"[^>]*rel="edit"', page.html):
            problems.append(f"{page.name}: no edit button")
    assert not problems, "\n".join(problems)


def test_abbreviations_explain_themselves_on_the_pages(pages: list[Page]) -> None:
    by_name = {page.name: page.html for page in pages}
    assert '<abbr title="Server Name Indication' in by_name["protocols/tls/index.html"]
    assert '<abbr title="Service level objective' in by_name["scaling/slos/index.html"]


def test_the_footer_states_the_licence(pages: list[Page]) -> None:
    (home,) = [page for page in pages if page.name == "index.html"]
    footer = home.html[home.html.index('class="md-footer-meta') :]
    assert re.search(r'<a href="[^"]+/LICENSE">MIT licence</a>', footer)
