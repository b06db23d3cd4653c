"""carbon-cache, graphite-web and the StatsD daemon, started from statsd_graphite.sh.

Used by tests/observability/test_statsd.py and by the graph benchmark
(bench/observability/statsd_graph.py). The script's commands run as the page
shows them, on free ports, in a temporary directory, with StatsD flushing
every second and carbon keeping one point per second (the committed files say
10 s, a production value).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path

import httpx
import sysdeps
from harness import LOOPBACK, ROOT, Service, free_port, port_open, wait_until

SNIPPETS = ROOT / "snippets" / "observability"
READER_DIR = "/tmp/recipe-graphite"  # noqa: S108  (the reader's directory in the script)


def script_lines() -> list[str]:
    text = (SNIPPETS / "statsd_graphite.sh").read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def split_env(line: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(line)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


class GraphiteStack:
    def __init__(self, workdir: Path) -> None:
        sysdeps.require("carbon-cache", "graphite-manage")
        self.workdir = workdir
        self.ports = {p: free_port() for p in ("2003", "2004", "7002", "8080", "8126")}
        self.statsd_port = free_port()  # UDP; a free TCP port number is free enough here
        self.ports["8125"] = self.statsd_port
        self.services: list[Service] = []
        self.url = f"http://{LOOPBACK}:{self.ports['8080']}"

    def local(self, line: str) -> str:
        line = line.replace(READER_DIR, str(self.workdir))
        for port, mine in self.ports.items():
            line = line.replace(f"127.0.0.1:{port}", f"{LOOPBACK}:{mine}")
            line = line.replace(f"/{port}/", f"/{mine}/").replace(f"_PORT={port}", f"_PORT={mine}")
        line = line.replace("STATSD_FLUSH_MS=10000", "STATSD_FLUSH_MS=1000")
        for relative in ("snippets/", "bench/"):
            line = line.replace(f" {relative}", f" {ROOT}/{relative}")
            line = line.replace(f"={relative}", f"={ROOT}/{relative}")
        return line

    def start(self) -> None:
        lines = [self.local(line) for line in script_lines()]
        mkdir, copy, render, carbon, migrate, web, npm, statsd = lines
        for line in (mkdir, copy, render):
            subprocess.run(["bash", "-c", line], check=True)
        schemas = self.workdir / "storage-schemas.conf"
        schemas.write_text(schemas.read_text().replace("retentions = 10s:", "retentions = 1s:"))
        # The script's npm line, as sysdeps runs it (once per machine, under a lock).
        assert shlex.split(npm)[:3] == ["npm", "ci", "--prefix"], npm
        sysdeps.require_npm_tools()

        self.launch("carbon", carbon, "2003", lambda: port_open(self.ports["7002"]))
        env, argv = split_env(migrate)
        subprocess.run(argv, env={**os.environ, **env}, cwd=self.workdir, check=True)

        def web_ready() -> bool:
            try:
                return httpx.get(f"{self.url}/metrics/find?query=*", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        self.launch("graphite-web", web, "8080", web_ready)
        self.launch("statsd", statsd, "8126", lambda: port_open(self.ports["8126"]))

    def launch(self, name: str, line: str, port: str, ready) -> None:
        env, argv = split_env(line)
        service = Service(name, argv, self.ports[port], self.workdir, stop_signal=signal.SIGTERM)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # Service passes our environment on to the process
        try:
            service.start(ready)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.services.append(service)

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
