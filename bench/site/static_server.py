"""Serve a built site on 127.0.0.1 the way a static host does: gzip for text.

`python -m http.server` sends every file as it is on disk; GitHub Pages, Netlify and
any nginx in front of a docs site compress HTML, CSS, JavaScript, JSON and SVG.
Lighthouse would otherwise score the missing compression, not the site.

    python bench/site/static_server.py DIRECTORY PORT
"""

from __future__ import annotations

import gzip
import http.server
import io
import sys
from functools import partial
from pathlib import Path

COMPRESSED = {".html", ".css", ".js", ".mjs", ".json", ".svg", ".xml", ".txt"}


class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self) -> io.BufferedIOBase | None:  # type: ignore[override]
        path = Path(self.translate_path(self.path))
        if path.is_dir() and self.path.split("?")[0].endswith("/"):
            path = path / "index.html"
        wants_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (wants_gzip and path.is_file() and path.suffix in COMPRESSED):
            return super().send_head()  # as is: images, directory redirects, 404s
        body = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=600")
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, *args: object) -> None:
        """Quiet: Lighthouse makes hundreds of requests."""


def main() -> None:
    directory, port = sys.argv[1], int(sys.argv[2])
    handler = partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
