"""The built site as a reader meets it, in a real browser (issue 15).

The site is built once with `mkdocs build --strict` into a temporary directory,
served on loopback by `python -m http.server`, and read in headless Chromium
(Debian's, driven by Playwright through `executable_path`: browser downloads are
not reachable here). Every page of the sitemap is loaded once; that one load
records its console errors, its requests beyond 127.0.0.1 (all blocked), its
diagrams (SVG drawn ahead of time, hooks/mermaid.py: one shown in the light scheme
and one in the dark, and no request for Mermaid) (one test per chapter and claim, so
a failure names both). The
other tests click through what a reader clicks: the chapter navigation, search, a
copy button, the light/dark toggle, the 404 page.

Screenshots of a few pages are kept as artifacts in pytest's temporary directory
(`screenshots*/` under the basetemp), never in the repository.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kit import site, sysdeps
from kit.process import LOOPBACK, ROOT, Process, free_port, http_ok
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

# Every chapter of the book: a folder of docs/ with an index page.
CHAPTERS = sorted(index.parent.name for index in (ROOT / "docs").glob("*/index.md"))
# What a page may wait for (search results, a link to follow): generous for a busy
# machine, and only ever spent in full when something is broken.
WAIT_MS = 10_000
# Any URL that does not go to the local server: aborted before it leaves, and recorded.
OUTSIDE = re.compile(rf"^(?!(https?|wss?)://{re.escape(LOOPBACK)}[:/]).+:")
SEARCH_INDEX = "search/search_index.json"

# For each diagram of the page (figure.diagram, hooks/mermaid.py), the schemes of the
# SVGs a reader sees ("light", "dark", "light,dark", "" for none), with "(too wide)"
# when one runs past the content column.
SHOWN_DIAGRAMS = """
() => [...document.querySelectorAll("figure.diagram")].map((figure) => {
  const column = figure.closest(".md-content").getBoundingClientRect();
  const shown = [...figure.querySelectorAll(":scope > svg")].filter((svg) => {
    const box = svg.getBoundingClientRect();
    return box.width > 10 && box.height > 10 && getComputedStyle(svg).visibility !== "hidden";
  });
  const wide = shown.some((svg) => svg.getBoundingClientRect().right > column.right + 1);
  return shown.map((svg) => svg.id.split("-").pop()).join(",") + (wide ? " (too wide)" : "");
})
"""
# The scheme Material's toggle sets on <body>, and the SVG each one must show.
SCHEMES = {"default": "light", "slate": "dark"}


@pytest.fixture(scope="module")
def built_site() -> Path:
    """The site built from this tree, strictly (kit.site: once per tree, shared with
    tests/test_site_assets.py); a failed build fails, never skips."""
    return site.built_site()


@pytest.fixture(scope="module")
def base_url(built_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The built site on a loopback port, as a static host serves it."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    serve = ["http.server", "--bind", LOOPBACK, str(port), "--directory", built_site]
    server = Process(
        "http.server",
        [sys.executable, "-m", *serve],
        tmp_path_factory.mktemp("http") / "http.server.log",
    ).start(ready=http_ok(f"{url}/"))
    yield url
    server.stop()


@dataclasses.dataclass
class Browsing:
    """One browser, one context, one page for the whole module, and what they saw."""

    page: Page
    base_url: str
    screenshots: Path
    outside: list[str] = dataclasses.field(default_factory=list)  # blocked request URLs
    console: list[str] = dataclasses.field(default_factory=list)  # errors, uncaught exceptions
    mermaid: list[str] = dataclasses.field(default_factory=list)  # requests for Mermaid
    # Material's search worker fetches and indexes the whole site's text (about 2 MB) on
    # every page load: half the time of a tour of every page. Pages get an empty index
    # unless a test searches (the `real_search` fixture).
    real_search: bool = False

    def errors_since(self, console_mark: int, outside_mark: int) -> list[str]:
        """Console errors since the marks, less the failed loads of blocked outside URLs
        (test_no_request_leaves_the_machine reports those)."""
        blocked = set(self.outside[outside_mark:])
        return [
            error
            for error in self.console[console_mark:]
            if not any(url in error for url in blocked)
        ]

    def marks(self) -> tuple[int, int]:
        return len(self.console), len(self.outside)

    def requests_for_mermaid_since(self, start: Callable[[], object]) -> list[str]:
        mark = len(self.mermaid)
        start()
        return self.mermaid[mark:]


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = sysdeps.require("chromium")["chromium"]
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    # Belt and braces with the route below: no name but loopback resolves, so not even
    # a DNS query leaves from something the route does not see.
    args.append("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    browser = playwright.chromium.launch(executable_path=chromium, args=args)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def browsing(
    browser: Browser, base_url: str, built_site: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browsing]:
    context: BrowserContext = browser.new_context(
        base_url=base_url,
        viewport={"width": 1280, "height": 800},
        color_scheme="light",
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    seen = Browsing(page, base_url, tmp_path_factory.mktemp("screenshots"))

    def block(route: Route) -> None:
        seen.outside.append(route.request.url)
        route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            seen.console.append(f"{message.text} ({where})")

    index = json.loads((built_site / SEARCH_INDEX).read_text())
    empty_index = json.dumps({"config": index["config"], "docs": []})

    def search_index(route: Route) -> None:
        if seen.real_search:
            route.fallback()
        else:
            route.fulfill(body=empty_index, content_type="application/json")

    context.route(OUTSIDE, block)
    context.route(f"**/{SEARCH_INDEX}", search_index)
    page.on("console", console)
    # From the site or from outside: a page that asks for Mermaid runs it in the browser.
    context.on("request", lambda r: seen.mermaid.append(r.url) if "mermaid" in r.url else None)
    page.on("pageerror", lambda error: seen.console.append(f"uncaught: {error}"))
    yield seen
    context.close()


@pytest.fixture
def real_search(browsing: Browsing) -> Iterator[None]:
    """This test's pages get the site's real search index."""
    browsing.real_search = True
    yield
    browsing.real_search = False


def site_pages(site: Path) -> list[str]:
    """Every page's path ("/", "/protocols/http/", ...) from the sitemap, and the 404 page."""
    locations = re.findall(r"<loc>([^<]+)</loc>", (site / "sitemap.xml").read_text())
    paths = [urlsplit(location).path for location in locations]
    return [*paths, "/404.html"]


def built_page(site: Path, path: str) -> str:
    html = site / path.lstrip("/")
    return (html / "index.html" if path.endswith("/") else html).read_text()


def expected_diagrams(site: Path, path: str) -> int:
    return built_page(site, path).count('<figure class="diagram">')


def unshown_diagrams(browsing: Browsing, expected: int, name: str | None) -> str | None:
    """None when each of the `expected` diagrams shows its light SVG in the light scheme
    and its dark one in the dark, inside the column; else what the reader sees. The
    scheme is switched as Material's toggle does, on <body>, and set back."""
    page = browsing.page
    body = page.locator("body")
    before = body.get_attribute("data-md-color-scheme")
    problems = []
    for scheme, svg in SCHEMES.items():
        body.evaluate("(body, scheme) => body.setAttribute('data-md-color-scheme', scheme)", scheme)
        shown = page.evaluate(SHOWN_DIAGRAMS)
        if shown != [svg] * expected:
            problems.append(f"{scheme}: {shown or 'no figure'} where {expected} x {svg!r}")
        if name:
            page.screenshot(path=browsing.screenshots / f"{name}-{scheme}.png")
    if before is not None:
        body.evaluate("(body, scheme) => body.setAttribute('data-md-color-scheme', scheme)", before)
    return "; ".join(problems) or None


@dataclasses.dataclass
class Visit:
    """One load of one page, and what it showed."""

    path: str
    failed: str | None = None
    console_errors: list[str] = dataclasses.field(default_factory=list)
    outside: list[str] = dataclasses.field(default_factory=list)
    broken_diagrams: str | None = None
    mermaid_requests: list[str] = dataclasses.field(default_factory=list)
    cut_code: list[str] = dataclasses.field(default_factory=list)


# Code blocks wider than their box at the test's 1280 px window: the first line of
# each, to name it. A reader would have to scroll sideways to read them.
CUT_CODE = """() => [...document.querySelectorAll('.md-content pre > code')]
  .filter(code => code.scrollWidth > code.clientWidth + 1)
  .map(code => code.textContent.split('\\n')[0].slice(0, 60))"""


SCREENSHOTS = {
    "/": "home",
    "/why_distributed/sample_services/": "sample_services-diagram",
    "/scaling/haproxy/": "haproxy",
    "/404.html": "404",
}


def visit(browsing: Browsing, site: Path, path: str) -> Visit:
    page = browsing.page
    seen = Visit(path)
    console_mark, outside_mark = browsing.marks()
    mermaid_mark = len(browsing.mermaid)
    try:
        response = page.goto(path, wait_until="load")
    except Error as error:
        seen.failed = str(error).splitlines()[0]
        return seen
    if response is None or not response.ok:
        seen.failed = f"HTTP {response.status if response else '?'}"
    if 'class="mermaid"' in built_page(site, path):
        seen.broken_diagrams = "a mermaid block left for the browser to render"
    elif expected := expected_diagrams(site, path):
        seen.broken_diagrams = unshown_diagrams(browsing, expected, SCREENSHOTS.get(path))
    seen.cut_code = page.evaluate(CUT_CODE)
    if path in SCREENSHOTS and not expected_diagrams(site, path):
        page.screenshot(path=browsing.screenshots / f"{SCREENSHOTS[path]}.png")
    seen.console_errors = browsing.errors_since(console_mark, outside_mark)
    seen.outside = browsing.outside[outside_mark:]
    seen.mermaid_requests = browsing.mermaid[mermaid_mark:]
    return seen


# The pages in groups of one chapter each, so each test stays short and names its
# chapter; "home" is the home page and the 404 page.
GROUPS = ["home", *CHAPTERS]


def group_of(path: str) -> str:
    first = path.strip("/").split("/")[0]
    return first if first in CHAPTERS else "home"


@pytest.fixture(scope="module")
def tour(browsing: Browsing, built_site: Path) -> Callable[[str], list[Visit]]:
    """Every page of a group loaded once (the first test that asks pays for it): its
    console, its outside requests and its diagrams."""
    pages = site_pages(built_site)
    visits: dict[str, list[Visit]] = {}

    def of(group: str) -> list[Visit]:
        if group not in visits:
            paths = [path for path in pages if group_of(path) == group]
            visits[group] = [visit(browsing, built_site, path) for path in paths]
        return visits[group]

    return of


@pytest.mark.parametrize("group", GROUPS)
def test_every_page_loads(tour: Callable[[str], list[Visit]], group: str) -> None:
    visits = tour(group)
    assert visits, f"the sitemap has no page of {group}"
    assert {v.path: v.failed for v in visits if v.failed} == {}


@pytest.mark.parametrize("group", GROUPS)
def test_no_request_leaves_the_machine(tour: Callable[[str], list[Visit]], group: str) -> None:
    """Fonts, diagrams, the repository's stars: a reader offline sees every page whole."""
    outside = {v.path: v.outside for v in tour(group) if v.outside}
    hosts = sorted({urlsplit(url).netloc for urls in outside.values() for url in urls})
    assert outside == {}, f"pages request {hosts} (blocked)"


def test_the_blocker_sees_outside_requests(browsing: Browsing) -> None:
    """No outside request above means none was made, not that none was seen."""
    browsing.page.goto("/")
    mark = len(browsing.outside)
    browsing.page.evaluate("fetch('https://example.invalid/probe').catch(() => null)")
    assert browsing.outside[mark:] == ["https://example.invalid/probe"]


@pytest.mark.parametrize("group", GROUPS)
def test_no_page_logs_a_console_error(tour: Callable[[str], list[Visit]], group: str) -> None:
    assert {v.path: v.console_errors for v in tour(group) if v.console_errors} == {}


@pytest.mark.parametrize("group", GROUPS)
def test_every_diagram_shows_one_svg_in_each_scheme(
    tour: Callable[[str], list[Visit]], group: str
) -> None:
    assert {v.path: v.broken_diagrams for v in tour(group) if v.broken_diagrams} == {}


@pytest.mark.parametrize("group", GROUPS)
def test_no_page_requests_mermaid(tour: Callable[[str], list[Visit]], group: str) -> None:
    """The diagrams are drawn ahead of time: no reader's browser downloads or runs Mermaid."""
    assert {v.path: v.mermaid_requests for v in tour(group) if v.mermaid_requests} == {}


def test_a_request_for_mermaid_would_be_seen(browsing: Browsing) -> None:
    """No request for Mermaid above means none was made, not that none was seen."""
    browsing.page.goto("/")
    probe = "fetch('javascripts/mermaid.min.js').catch(() => null)"
    seen = browsing.requests_for_mermaid_since(lambda: browsing.page.evaluate(probe))
    assert seen == [f"{browsing.base_url}/javascripts/mermaid.min.js"]


def test_a_hidden_diagram_would_be_seen(browsing: Browsing, built_site: Path) -> None:
    """The negative control of the diagram check: with the stylesheet that picks one SVG
    per scheme gone, both show, and the check says so."""
    path = "/why_distributed/event_loop/"
    browsing.page.goto(path)
    assert unshown_diagrams(browsing, expected_diagrams(built_site, path), None) is None
    browsing.page.evaluate(
        "document.querySelectorAll('link[href$=\"diagrams.css\"]').forEach((l) => l.remove())"
    )
    broken = unshown_diagrams(browsing, expected_diagrams(built_site, path), None)
    assert broken
    assert "light,dark" in broken


def test_the_site_has_diagrams(built_site: Path) -> None:
    """The test above passes vacuously if no diagram reaches the built pages."""
    pages = site_pages(built_site)[:-1]
    assert sum(expected_diagrams(built_site, path) for path in pages) > 0, (
        "no diagram in the built site: is the mermaid fence and hooks/mermaid.py still set up?"
    )


def test_the_navigation_reaches_every_chapter(browsing: Browsing) -> None:
    """From the home page, each chapter through its link in the sidebar, one after another."""
    page = browsing.page
    page.goto("/")
    for chapter in CHAPTERS:
        sidebar = page.locator(".md-sidebar--primary")
        link = sidebar.locator(f'a.md-nav__link[href$="{chapter}/"]').filter(visible=True)
        expect(link.first, f"a link to the {chapter} chapter in the sidebar").to_be_visible()
        # Followed from the keyboard (focus, Enter), as a reader can: the sidebar scrolls
        # on its own, and Material may still be scrolling it to the current page, which
        # a mouse click waits on to see the link inside the window.
        link.first.press("Enter")
        expect(page).to_have_url(f"{browsing.base_url}/{chapter}/")
        expect(page.locator("article h1")).to_be_visible()


def search(browsing: Browsing, term: str) -> list[str]:
    """Type `term` into the header's search box; the result links, once some appear.
    The page loaded and searched without a console error."""
    page = browsing.page
    page.locator("input.md-search__input").click()
    page.keyboard.type(term)
    results = page.locator(".md-search-result__item > a")
    expect(results.first, f"a search result for {term!r}").to_be_attached()
    return [href for href in results.evaluate_all("links => links.map(a => a.href)")]


def searches_from(browsing: Browsing, path: str, term: str) -> list[str]:
    marks = browsing.marks()
    browsing.page.goto(path)
    found = search(browsing, term)
    assert browsing.errors_since(*marks) == []
    return found


@pytest.mark.parametrize(
    ("term", "page_path"),
    [("HAProxy", "/scaling/haproxy/"), ("idempotency", "/resilience/idempotency/")],
)
@pytest.mark.usefixtures("real_search")
def test_search_finds(browsing: Browsing, term: str, page_path: str) -> None:
    found = searches_from(browsing, "/", term)
    assert any(urlsplit(href).path == page_path for href in found), found


def test_the_copy_button_copies_exactly_the_code(browsing: Browsing) -> None:
    """The home page's install block is snippets/why_distributed/install.sh, whole."""
    page = browsing.page
    script = (ROOT / "snippets/why_distributed/install.sh").read_text()
    page.goto("/")
    page.evaluate("navigator.clipboard.writeText('')")
    first_line = script.splitlines()[0]
    block = page.locator("div.highlight", has=page.locator("code", has_text=first_line))
    expect(block, "the install block on the home page").to_have_count(1)
    block.hover()
    block.locator("button[data-md-type=copy], button.md-clipboard").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == script.rstrip()


def test_the_light_dark_toggle_switches_the_scheme(browsing: Browsing) -> None:
    page = browsing.page
    page.goto("/")
    body = page.locator("body")
    toggle = page.locator("form[data-md-component=palette] label").filter(visible=True)
    background = "getComputedStyle(document.body).backgroundColor"
    expect(body).to_have_attribute("data-md-color-scheme", "default")
    light = page.evaluate(background)
    toggle.click()
    expect(body).to_have_attribute("data-md-color-scheme", "slate")
    assert page.evaluate(background) != light
    page.screenshot(path=browsing.screenshots / "home-dark.png")
    toggle.click()
    expect(body).to_have_attribute("data-md-color-scheme", "default")
    assert page.evaluate(background) == light


@pytest.mark.usefixtures("real_search")
def test_the_404_page_offers_search_and_the_chapters(browsing: Browsing) -> None:
    """http.server answers a missing URL with its own page; a static host (GitHub Pages)
    serves the site's 404.html, so that is the page loaded here."""
    page = browsing.page
    found = searches_from(browsing, "/404.html", "HAProxy")
    content = page.locator(".md-content")
    missing = [
        chapter
        for chapter in CHAPTERS
        if not content.locator(f'a[href$="/{chapter}/"], a[href="{chapter}/"]').count()
    ]
    assert any(urlsplit(href).path == "/scaling/haproxy/" for href in found), found
    assert missing == [], "chapters the 404 page's content does not link to"


@pytest.mark.parametrize("group", GROUPS)
def test_code_fits_the_page_at_1280_px(tour: Callable[[str], list[Visit]], group: str) -> None:
    """No code block needs a sideways scroll in a 1280 px window (docs/stylesheets/extra.css)."""
    assert {v.path: v.cut_code for v in tour(group) if v.cut_code} == {}
