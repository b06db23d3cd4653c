"""The built site as a reader meets it, in a real browser (issue 15).

The site is built once with `mkdocs build --strict` into a temporary directory,
served on loopback by `python -m http.server`, and read in headless Chromium
(Debian's, driven by Playwright through `executable_path`: browser downloads are
not reachable here). Every page of the sitemap is loaded once; that one load
records its console errors, its requests beyond 127.0.0.1 (all blocked) and its
Mermaid diagrams (one test per chapter and claim, so a failure names both). The
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
import time
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
# What a page may wait for (a diagram to render, search results): generous for a busy
# machine, and only ever spent in full when something is broken.
WAIT_MS = 10_000
# Any URL that does not go to the local server: aborted before it leaves, and recorded.
OUTSIDE = re.compile(rf"^(?!(https?|wss?)://{re.escape(LOOPBACK)}[:/]).+:")
SEARCH_INDEX = "search/search_index.json"

# Material renders each diagram into a *closed* shadow root. This init script keeps a
# handle on every shadow root a page attaches (the mode stays closed), so the test can
# look inside for the SVG.
KEEP_SHADOW_ROOTS = """
(() => {
  const attach = Element.prototype.attachShadow;
  const roots = new WeakMap();
  window.__shadowRoots = roots;
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    roots.set(this, root);
    return root;
  };
})();
"""
# How many div.mermaid hosts hold a rendered SVG that is not mermaid's error diagram.
RENDERED_DIAGRAMS = """
() => [...document.querySelectorAll("div.mermaid")].filter((host) => {
  const root = window.__shadowRoots && window.__shadowRoots.get(host);
  const svg = root && root.querySelector("svg");
  return svg && svg.getAttribute("aria-roledescription") !== "error";
}).length
"""


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
    context.add_init_script(KEEP_SHADOW_ROOTS)
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


def expected_diagrams(site: Path, path: str) -> int:
    html = site / path.lstrip("/")
    html = html / "index.html" if path.endswith("/") else html
    return len(re.findall(r'<pre class="mermaid"', html.read_text()))


def wait_for_diagrams(browsing: Browsing, expected: int, console_mark: int) -> str | None:
    """None once `expected` diagrams are SVGs; else what went wrong. An uncaught error
    (Mermaid's parse errors are) ends the wait at once: that diagram will not come."""
    page = browsing.page
    deadline = time.monotonic() + WAIT_MS / 1000
    while (rendered := page.evaluate(RENDERED_DIAGRAMS)) < expected:
        uncaught = [e for e in browsing.console[console_mark:] if e.startswith("uncaught")]
        if uncaught or time.monotonic() > deadline:
            why = uncaught[0].splitlines()[:2] if uncaught else [f"none after {WAIT_MS} ms"]
            return f"{rendered} of {expected} rendered to an SVG: {' '.join(why)}"
        page.wait_for_timeout(50)
    return None


@dataclasses.dataclass
class Visit:
    """One load of one page, and what it showed."""

    path: str
    failed: str | None = None
    console_errors: list[str] = dataclasses.field(default_factory=list)
    outside: list[str] = dataclasses.field(default_factory=list)
    broken_diagrams: str | None = None
    cut_code: list[str] = dataclasses.field(default_factory=list)


# Code blocks wider than their box at the test's 1280 px window: the first line of
# each, to name it. A reader would have to scroll sideways to read them.
CUT_CODE = """() => [...document.querySelectorAll('.md-content pre > code')]
  .filter(code => code.scrollWidth > code.clientWidth + 1)
  .map(code => code.textContent.split('\\n')[0].slice(0, 60))"""


SCREENSHOTS = {
    "/": "home",
    "/why_distributed/sample_services/": "sample_services-mermaid",
    "/scaling/haproxy/": "haproxy",
    "/404.html": "404",
}


def visit(browsing: Browsing, site: Path, path: str) -> Visit:
    page = browsing.page
    seen = Visit(path)
    console_mark, outside_mark = browsing.marks()
    try:
        response = page.goto(path, wait_until="load")
    except Error as error:
        seen.failed = str(error).splitlines()[0]
        return seen
    if response is None or not response.ok:
        seen.failed = f"HTTP {response.status if response else '?'}"
    expected = expected_diagrams(site, path)
    if expected:
        blocked_mermaid = [url for url in browsing.outside[outside_mark:] if "mermaid" in url]
        if blocked_mermaid:  # no need to wait for what cannot arrive
            seen.broken_diagrams = f"Mermaid requested from outside: {blocked_mermaid}"
        else:
            seen.broken_diagrams = wait_for_diagrams(browsing, expected, console_mark)
    seen.cut_code = page.evaluate(CUT_CODE)
    if path in SCREENSHOTS:
        page.screenshot(path=browsing.screenshots / f"{SCREENSHOTS[path]}.png")
    seen.console_errors = browsing.errors_since(console_mark, outside_mark)
    seen.outside = browsing.outside[outside_mark:]
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
def test_every_mermaid_block_renders_to_an_svg(
    tour: Callable[[str], list[Visit]], group: str
) -> None:
    assert {v.path: v.broken_diagrams for v in tour(group) if v.broken_diagrams} == {}


def test_the_site_has_diagrams(built_site: Path) -> None:
    """The test above passes vacuously if no diagram reaches the built pages."""
    pages = site_pages(built_site)[:-1]
    assert sum(expected_diagrams(built_site, path) for path in pages) > 0, (
        "no Mermaid block in the built site: is the mermaid fence still set up?"
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
