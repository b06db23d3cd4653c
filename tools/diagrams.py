"""Render every ```mermaid fence of docs/ to SVG, ahead of the build (`./nox -s diagrams`).

For each diagram source, two SVGs go to docs/assets/diagrams/ (committed), named by
the source's hash as hooks/mermaid.py looks them up: `<key>.light.svg` (Mermaid's
"default" theme) and `<key>.dark.svg` (its "dark" theme). They are drawn by the
Mermaid that package-lock.json pins (node_modules/mermaid/dist/mermaid.min.js, loaded
from disk) in Debian's Chromium driven by Playwright: no browser download, no
network. Labels are SVG text, not HTML in a <foreignObject>: a reader whose fonts are
wider than this machine's sees a label run past its box, never one cut off.

Only the diagrams without both SVGs are drawn (`--all` draws every one again, after
a Mermaid upgrade or a change below); SVGs that no fence uses any more are deleted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from kit import sysdeps  # noqa: E402  (the test kit's installers: chromium, npm ci)

_spec = importlib.util.spec_from_file_location("mermaid_hook", ROOT / "hooks" / "mermaid.py")
assert _spec
assert _spec.loader
hook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hook)

MERMAID_JS = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
THEMES = {"light": "default", "dark": "dark"}

# Renders one source with one theme; returns the SVG with role="img" and an aria-label
# (the diagram's title when it has one, else its kind and its first labels).
RENDER = """
async ([id, source, theme]) => {
  mermaid.initialize({
    startOnLoad: false,
    securityLevel: "strict",
    theme,
    htmlLabels: false,
    flowchart: { htmlLabels: false },
  });
  const { svg } = await mermaid.render(id, source);
  const box = document.createElement("div");
  box.innerHTML = svg;
  const root = box.querySelector("svg");
  if (root.getAttribute("aria-roledescription") === "error") {
    throw new Error("mermaid drew its error diagram");
  }
  const title = source.match(/^\\s*(?:accTitle\\s*:|title\\s)\\s*(.+)$/m);
  let label;
  if (title) {
    label = title[1].trim();
  } else {
    const kind = (root.getAttribute("aria-roledescription") || "diagram")
      .replace(/-v\\d+$/, "").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
    const words = [];
    for (const text of root.querySelectorAll("text")) {
      // A label of several lines is a <tspan> per line: a space between them.
      const rows = text.querySelectorAll(":scope > tspan");
      const parts = rows.length ? [...rows].map((row) => row.textContent) : [text.textContent];
      const line = parts.join(" ").replace(/\\s+/g, " ").trim();
      if (line && !words.includes(line)) words.push(line);
    }
    label = `${kind[0].toUpperCase()}${kind.slice(1)}: ${words.join(", ")}`;
    if (label.length > 240) label = `${label.slice(0, 237).replace(/[ ,]+\\S*$/, "")}...`;
  }
  root.setAttribute("role", "img");
  root.setAttribute("aria-label", label);
  return root.outerHTML;
}
"""


def unique_ids(svg: str, prefix: str) -> str:
    """Every id of the SVG starts with `prefix` (the render id): a page holds the light
    and the dark SVG of a diagram at once, and a marker found by `url(#arrowhead)` in the
    hidden one draws no arrowhead in the shown one."""
    for name in sorted(set(re.findall(r'\bid="([^"]+)"', svg)), key=len, reverse=True):
        if name.startswith(prefix):
            continue
        new = f"{prefix}-{name}"
        svg = svg.replace(f'id="{name}"', f'id="{new}"')
        svg = re.sub(rf"#{re.escape(name)}(?![\w-])", f"#{new}", svg)
    # Mermaid gives an edge's path and its label one id, and a sequence diagram's actor
    # at the top and at the bottom: the second and later ones get a suffix (nothing
    # refers to them).
    seen: dict[str, int] = {}

    def once(match: re.Match[str]) -> str:
        name = match[1]
        seen[name] = seen.get(name, 0) + 1
        return match[0] if seen[name] == 1 else f'id="{name}-{seen[name]}"'

    return re.sub(r'\bid="([^"]+)"', once, svg)


def rounded(svg: str) -> str:
    """Coordinates to two decimals, in the tags only (never a label's text): Mermaid
    writes its paths with 15, which is three quarters of a flowchart's SVG."""

    def tag(match: re.Match[str]) -> str:
        return re.sub(r"(\d+\.\d\d)\d+", r"\1", match[0])

    svg = re.sub(r' data-points="[^"]*"', "", svg)  # base64 of the points, unused
    return re.sub(r"<[^>]+>", tag, svg)


def render(todo: dict[str, str]) -> None:
    """Each (key, source) of `todo` drawn in both themes into the cache."""
    from playwright.sync_api import sync_playwright

    chromium = sysdeps.require("chromium")["chromium"]
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    args.append("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page()
        page.route("**/*", lambda route: route.abort())  # nothing is fetched
        page.set_content("<!doctype html><html><head></head><body></body></html>")
        page.add_script_tag(path=str(MERMAID_JS))
        for name, source in todo.items():
            for scheme, theme in THEMES.items():
                svg_id = f"d{name}-{scheme}"
                svg = page.evaluate(RENDER, [svg_id, source, theme])
                svg = rounded(unique_ids(svg, svg_id))
                (hook.CACHE / f"{name}.{scheme}.svg").write_text(svg + "\n", encoding="utf-8")
            print(f"drew {name}: {source.splitlines()[0]}", flush=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="draw every diagram again")
    options = parser.parse_args()
    wanted = {hook.key(source): source for source in hook.sources()}
    hook.CACHE.mkdir(parents=True, exist_ok=True)
    todo = {
        name: source
        for name, source in wanted.items()
        if options.all
        or not all((hook.CACHE / f"{name}.{scheme}.svg").exists() for scheme in THEMES)
    }
    if todo:
        sysdeps.require_npm_tools()  # node_modules/mermaid, as package-lock.json pins it
        render(todo)
    for path in sorted(hook.CACHE.glob("*.svg")):
        if path.name.split(".")[0] not in wanted:
            print(f"deleted {path.relative_to(ROOT)}: no fence uses it", flush=True)
            path.unlink()
    print(f"{len(wanted)} diagrams, {len(todo)} drawn", flush=True)


if __name__ == "__main__":
    main()
