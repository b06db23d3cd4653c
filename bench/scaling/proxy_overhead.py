"""What a reverse proxy costs: each service direct, and behind HAProxy.

Three pairs, measured with autocannon (`-c 10`), alternating round by round:

- recipe-api direct, and through `haproxy_lb.cfg` (its three server lines all
  point at the same single recipe-api process, so only the proxy differs);
- gzip in the application (`compression_producer.py`, `GET /recipes?count=10`,
  `Accept-Encoding: gzip`), and gzip in HAProxy (`haproxy_compression.cfg` in
  front of the same process, which the request asks for identity first:
  `Accept-Encoding: gzip;q=0.5, identity`, so the application answers plain
  JSON and HAProxy compresses it);
- TLS in the application (`tls_producer.py`), and TLS terminated in HAProxy
  (`haproxy_tls.cfg` in front of plain recipe-api), certificates from
  `tls_certs.py`, trusted by autocannon through `NODE_EXTRA_CA_CERTS`.

Every backend is pinned to one CPU, HAProxy and autocannon share the other:
on a 2-core machine there is no third core, and that is part of the result.
Writes snippets/scaling/bench_proxy_overhead.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from kit.examples import RunningExample
from kit.process import LOOPBACK
from kit.services.haproxy import RunningHaproxy

from bench import load
from bench.common import ROOT, duration, markdown_table, stamp, write_results

RESULTS = "scaling/bench_proxy_overhead.md"
COMMAND = "./nox -s bench -- proxy_overhead"
ROUNDS = 3
DEFAULT_SECONDS = 3  # 3 rounds x 6 setups x 3 s + warm-up + start-up: about 80 s
PLAIN = ("Accept-Encoding: gzip",)
IDENTITY_FIRST = ("Accept-Encoding: gzip;q=0.5, identity",)


def make_certs(directory: Path) -> None:
    """The HAProxy page's own script: tls_certs.py, then the combined PEM HAProxy wants."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run(
        ["sh", "snippets/scaling/haproxy_tls_pem.sh"],
        cwd=ROOT,
        env={**os.environ, "CERT_DIR": str(directory), "PATH": path},
        check=True,
        capture_output=True,
    )


def check_encoding(name: str, url: str, headers: tuple[str, ...], expected: str | None) -> None:
    """The setup does what the table says: who compresses, and whether at all."""
    sent = dict(header.split(": ", 1) for header in headers)
    got = httpx.get(url, headers=sent, timeout=5).headers.get("Content-Encoding")
    if got != expected:
        raise RuntimeError(f"{name}: Content-Encoding {got!r}, expected {expected!r}")


def make_target(
    key: str,
    name: str,
    front: RunningExample | RunningHaproxy,
    backend: RunningExample,
    path: str,
    headers: tuple[str, ...] = (),
    scheme: str = "http",
) -> load.Target:
    """The client connects to `front` (the application itself, or HAProxy before it)."""
    host = "localhost" if scheme == "https" else LOOPBACK  # the certificate names localhost
    watch = {"backend": backend.pid}
    if front is not backend:
        watch["proxy"] = front.pid
    return load.Target(name, f"{scheme}://{host}:{front.port}{path}", watch, headers, key)


def measure(seconds: int, warmup: int, cpus: load.Cpus) -> list[load.Target]:
    """Every backend pinned to the server CPU; HAProxy shares the load tester's."""
    with tempfile.TemporaryDirectory(prefix="bench-proxy-certs-") as tmp:
        certs = Path(tmp)
        make_certs(certs)
        with load.Servers("proxy") as servers:
            recipe = servers.example("why_distributed/recipe_api.py", cpus=cpus.server)
            compressing = servers.example("protocols/compression_producer.py", cpus=cpus.server)
            tls_app = servers.example(
                "protocols/tls_producer.py",
                env={"TLS_CERT": str(certs / "server.pem"), "TLS_KEY": str(certs / "server.key")},
                ready="port",
                cpus=cpus.server,
            )
            lb = servers.haproxy(
                "snippets/scaling/haproxy_lb.cfg",
                {f"BACKEND{i}_PORT": str(recipe.port) for i in (1, 2, 3)},
                cpus=cpus.load,
            )
            gzip_proxy = servers.haproxy(
                "snippets/scaling/haproxy_compression.cfg",
                {"BACKEND_PORT": str(compressing.port)},
                cpus=cpus.load,
            )
            tls_proxy = servers.haproxy(
                "snippets/scaling/haproxy_tls.cfg",
                {"BACKEND_PORT": str(recipe.port), "CERT_PEM": str(certs / "haproxy.pem")},
                cpus=cpus.load,
            )
            recipes = "/recipes?count=10"
            targets = [
                make_target("direct", "recipe-api direct", recipe, recipe, "/recipes/42"),
                make_target("lb", "recipe-api through HAProxy", lb, recipe, "/recipes/42"),
                make_target(
                    "gzip-app", "gzip in the application", compressing, compressing, recipes, PLAIN
                ),
                make_target(
                    "gzip-proxy",
                    "gzip in HAProxy",
                    gzip_proxy,
                    compressing,
                    recipes,
                    IDENTITY_FIRST,
                ),
                make_target(
                    "tls-app",
                    "TLS in the application",
                    tls_app,
                    tls_app,
                    "/recipes/42",
                    scheme="https",
                ),
                make_target(
                    "tls-proxy", "TLS in HAProxy", tls_proxy, recipe, "/recipes/42", scheme="https"
                ),
            ]
            check_encoding(targets[2].name, targets[2].url, PLAIN, "gzip")
            check_encoding(
                "the application, asked for identity first", targets[2].url, IDENTITY_FIRST, None
            )
            check_encoding(targets[3].name, targets[3].url, IDENTITY_FIRST, "gzip")
            load.alternate(
                targets,
                seconds=seconds,
                warmup=warmup,
                rounds=ROUNDS,
                cpus=cpus.load,
                env={"NODE_EXTRA_CA_CERTS": str(certs / "ca.pem")},
            )
    return targets


PAIRS = [("direct", "lb"), ("gzip-app", "gzip-proxy"), ("tls-app", "tls-proxy")]


def report(targets: list[load.Target], seconds: int, warmup: int, cpus: load.Cpus) -> str:
    by_key = {target.key: target for target in targets}
    rows = []
    for direct_key, proxied_key in PAIRS:
        direct = by_key[direct_key]
        for target in (direct, by_key[proxied_key]):
            rps = target.requests_per_second()
            change = rps / direct.requests_per_second() - 1
            rows.append(
                [
                    target.name,
                    f"{rps:,.0f}",
                    "" if target is direct else f"{change:+.0%}",
                    load.milliseconds(target.median("latency", "p50")),
                    load.milliseconds(target.median("latency", "p99")),
                    sum(load.failures(run) for run in target.runs),
                    load.percent(load.median_known([run["backend_cpu"] for run in target.runs])),
                    ""
                    if "proxy" not in target.watch
                    else load.percent(load.median_known([run["proxy_cpu"] for run in target.runs])),
                    load.percent(statistics.median(run["client_cpu"] for run in target.runs)),
                ]
            )
    pins = cpus.sentence.replace("each server", "each application").replace(
        "autocannon to", "HAProxy and autocannon to"
    )
    runs = [run for target in targets for run in target.runs]
    crowded = sum(1 for run in runs if load.crowded_out(run, "backend"))
    note = (
        f"In {crowded} of {len(runs)} runs neither the application nor autocannon got "
        f"{load.STARVED_BELOW:.0%} of a core: other work on the machine competed with them, "
        "and those figures understate what the setup can do."
        if crowded
        else ""
    )
    return "\n\n".join(
        [
            markdown_table(
                [
                    "setup",
                    "req/s",
                    "vs direct",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "app CPU",
                    "HAProxy CPU",
                    "autocannon CPU",
                ],
                rows,
            ),
            f"autocannon `-c {load.CONNECTIONS} -d {seconds}`, median of {ROUNDS} alternating "
            f"rounds after a {warmup} s warm-up; {pins}. recipe-api answers `GET /recipes/42` "
            "(about 200 bytes of JSON); the compression rows `GET /recipes?count=10` (10 "
            "recipes); the TLS rows use keep-alive connections, so they measure encryption, not "
            "handshakes. CPU is the share of one core each process used during a run; "
            "latency is in whole milliseconds.",
            note,
        ]
    )


def main() -> None:
    load.autocannon_path()
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    cpus = load.pick_cpus()
    targets = measure(seconds, warmup, cpus)
    stamp_line = stamp(
        ["sanic", "uvloop"],
        {
            "haproxy": ["haproxy", "-v"],
            "node": ["node", "--version"],
            "autocannon": load.AUTOCANNON_VERSION,
        },
    )
    write_results(RESULTS, report(targets, seconds, warmup, cpus), stamp_line, COMMAND)
