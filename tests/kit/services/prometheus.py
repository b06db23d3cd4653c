"""Prometheus, Alertmanager and the blackbox exporter, started from the pages' scripts.

The Prometheus family shares one start-up: a daemon from argv on a free port,
ready once `/-/ready` answers, stopped with SIGTERM and required to exit 0.
`prometheus(target)` is the metrics page's set-up (snippets/observability/
metrics_prometheus.sh, scraping every second instead of the committed 5 s).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kit import snippets, sysdeps
from kit.process import LOOPBACK, ROOT, Process, free_port, http_ok, wait_until

METRICS_SCRIPT = "snippets/observability/metrics_prometheus.sh"
READER_DIR = "/tmp/recipe-prom"  # noqa: S108  (the reader's directory in the script)


def start_daemon(name: str, argv: list[str], port: int, workdir: Path) -> Process:
    """Start prometheus, prometheus-alertmanager or the blackbox exporter; wait for /-/ready."""
    program = sysdeps.require(argv[0])[argv[0]]
    process = Process(name, [program, *argv[1:]], workdir / f"{name}.log", cwd=workdir)
    return process.start(http_ok(f"http://{LOOPBACK}:{port}/-/ready"))


def stop_daemons(processes: list[Process]) -> None:
    """SIGTERM each (last started first); each must exit with code 0."""
    codes = {p.name: p.stop() for p in reversed(processes)}
    failed = {name: code for name, code in codes.items() if code != 0}
    assert not failed, f"exit codes {failed}:\n" + "\n".join(p.output() for p in processes)


class Prometheus:
    """A running Prometheus and its HTTP query API."""

    def __init__(self, port: int, process: Process) -> None:
        self.port = port
        self.process = process
        self.url = f"http://{LOOPBACK}:{port}"

    def query(self, promql: str) -> list[dict]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def values(self, promql: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql)}

    def wait_for(self, promql: str, label: str, expected: dict[str, float]) -> None:
        """Scrapes happen every second: poll until the values arrive, within a bound."""
        wait_until(lambda: self.values(promql, label) == expected, 20, f"{promql} == {expected}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    """`prometheus("127.0.0.1:PORT")` runs the commands of metrics_prometheus.sh against
    that target with a 1 s scrape interval, a data directory under tmp_path and a free
    port, and returns once it is ready; each one must exit 0 on SIGTERM at the end."""
    mkdir, render, check, run = snippets.commands(METRICS_SCRIPT)
    assert mkdir == f"mkdir -p {READER_DIR}"
    started: list[Process] = []

    def start(target: str) -> Prometheus:
        port = free_port()

        def local(line: str) -> str:
            line = line.replace(READER_DIR, str(tmp_path))
            line = line.replace("127.0.0.1:4000", target)
            line = line.replace("__INTERVAL__/5s", "__INTERVAL__/1s")
            return line.replace("127.0.0.1:9090", f"{LOOPBACK}:{port}")

        subprocess.run(["bash", "-c", local(render)], cwd=ROOT, check=True)
        config = (tmp_path / "prometheus.yml").read_text()
        assert "__" not in config
        assert f'"{target}"' in config
        assert "scrape_interval: 1s" in config
        _, argv = snippets.split(local(check))
        sysdeps.require("promtool")
        checked = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout + checked.stderr
        _, argv = snippets.split(local(run))
        assert argv[0] == "prometheus"
        started.append(start_daemon("prometheus", argv, port, tmp_path))
        return Prometheus(port, started[-1])

    yield start
    stop_daemons(started)
