"""Small accessibility fixes to the theme's HTML, found by Lighthouse (bench/site/lighthouse.py).

Material's search panel is a `role="dialog"` with no name, which screen readers
announce as an unnamed dialog: it gets `aria-label="Search"`. The colour fixes (code
comments, links inside text) are in docs/stylesheets/extra.css.
"""

from __future__ import annotations

from typing import Any

SEARCH_DIALOG = '<div class="md-search" data-md-component="search" role="dialog">'
NAMED = '<div class="md-search" data-md-component="search" role="dialog" aria-label="Search">'


def on_post_page(output: str, **_: Any) -> str:
    return output.replace(SEARCH_DIALOG, NAMED)
