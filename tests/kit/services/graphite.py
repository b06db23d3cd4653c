"""carbon-cache, graphite-web and the StatsD daemon, started from statsd_graphite.sh.

Used by tests/observability/test_statsd.py (the `graphite` fixture) and by the
graph benchmark (bench/observability/statsd_graph.py). The script's commands run as the page
shows them, on free ports, in a temporary directory, with StatsD flushing
every second and carbon keeping one point per second (the committed files say
10 s, a production value).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kit import snippets, sysdeps
from kit.process import LOOPBACK, ROOT, Process, free_port, free_udp_port, port_open, wait_until

SCRIPT = "snippets/observability/statsd_graphite.sh"
READER_DIR = "/tmp/recipe-graphite"  # noqa: S108  (the reader's directory in the script)


class GraphiteStack:
    def __init__(self, workdir: Path) -> None:
        sysdeps.require("carbon-cache", "graphite-manage")
        self.workdir = workdir
        self.ports = {p: free_port() for p in ("2003", "2004", "7002", "8080", "8126")}
        self.statsd_port = free_udp_port()
        self.ports["8125"] = self.statsd_port
        self.services: list[Process] = []
        self.url = f"http://{LOOPBACK}:{self.ports['8080']}"

    def local(self, line: str) -> str:
        line = line.replace(READER_DIR, str(self.workdir))
        for port, mine in self.ports.items():
            line = line.replace(f"127.0.0.1:{port}", f"{LOOPBACK}:{mine}")
            line = line.replace(f"/{port}/", f"/{mine}/").replace(f"_PORT={port}", f"_PORT={mine}")
        line = line.replace("STATSD_FLUSH_MS=10000", "STATSD_FLUSH_MS=1000")
        for relative in ("snippets/", "node_modules/"):
            line = line.replace(f" {relative}", f" {ROOT}/{relative}")
            line = line.replace(f"={relative}", f"={ROOT}/{relative}")
        return line

    def start(self) -> None:
        lines = [self.local(line) for line in snippets.commands(SCRIPT)]
        mkdir, copy, render, carbon, migrate, web, npm, statsd = lines
        for line in (mkdir, copy, render):
            subprocess.run(["bash", "-c", line], check=True)
        schemas = self.workdir / "storage-schemas.conf"
        schemas.write_text(schemas.read_text().replace("retentions = 10s:", "retentions = 1s:"))
        # The script's npm line, as sysdeps runs it (once per machine, under a lock).
        assert shlex.split(npm) == sysdeps.NPM_CI, npm
        sysdeps.require_npm_tools()

        self.launch("carbon", carbon, "2003", lambda: port_open(self.ports["7002"]))
        env, argv = snippets.split(migrate)
        subprocess.run(argv, env={**os.environ, **env}, cwd=self.workdir, check=True)

        def web_ready() -> bool:
            try:
                return httpx.get(f"{self.url}/metrics/find?query=*", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        self.launch("graphite-web", web, "8080", web_ready)
        self.launch("statsd", statsd, "8126", lambda: port_open(self.ports["8126"]))

    def launch(self, name: str, line: str, port: str, ready) -> None:
        env, argv = snippets.split(line)
        process = Process(name, argv, self.workdir / f"{name}.log", env=env, cwd=self.workdir)
        self.services.append(process.start(ready))

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()

    # --- reading back -------------------------------------------------------

    def find(self, query: str) -> list[str]:
        answer = httpx.get(f"{self.url}/metrics/find", params={"query": query}, timeout=5)
        answer.raise_for_status()
        return sorted(node["text"] for node in answer.json())

    def series(self, target: str, since: str = "-5min") -> list[float]:
        answer = httpx.get(
            f"{self.url}/render",
            params={"target": target, "format": "json", "from": since},
            timeout=5,
        )
        answer.raise_for_status()
        return [v for series in answer.json() for v, _ in series["datapoints"] if v is not None]

    def total(self, target: str) -> float:
        return sum(self.series(target))

    def wait_for_total(self, target: str, expected: float, timeout: float = 15) -> None:
        wait_until(lambda: self.total(target) >= expected, timeout, f"{target} >= {expected}")

    def png(self, params: dict[str, str]) -> bytes:
        answer = httpx.get(f"{self.url}/render", params=params, timeout=30)
        answer.raise_for_status()
        assert answer.headers["content-type"] == "image/png"
        return answer.content


@pytest.fixture(scope="module")
def graphite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphiteStack]:
    """carbon, graphite-web and StatsD for a test module (they take seconds to start)."""
    stack = GraphiteStack(tmp_path_factory.mktemp("graphite"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
    for process in stack.services:  # node's statsd exits by the signal itself (-15)
        assert process.returncode in (0, -15), process.output()
