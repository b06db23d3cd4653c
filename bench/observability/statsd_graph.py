"""The graph on the StatsD page: graphite-web renders what statsd_service.py sent.

Starts carbon, graphite-web and the StatsD daemon the way the tests do
(kit.services.graphite, from statsd_graphite.sh, one-second flushes),
recipe-api and statsd_service.py, then sends about 40 requests a second for
60 s (one at a time). From second 20 to second 35 recipe-api is frozen
(SIGSTOP): it accepts connections and answers nothing, so each call from
web-api waits its 0.5 s timeout and web-api answers 502. graphite-web then
renders responses per second by status and the slowest outbound call per
second, and the PNG is written to docs/observability/img/statsd_graph.png.
Writes snippets/observability/bench_statsd_graph.md (what was sent, and the stamp).
"""

from __future__ import annotations

import os
import signal
import time

import httpx
from kit.process import LOOPBACK
from kit.services.graphite import GraphiteStack

from bench import load
from bench.common import markdown_table, output_path, stamp, write_results

RESULTS = "observability/bench_statsd_graph.md"
COMMAND = "./nox -s bench -- statsd_graph"
PNG = "docs/observability/img/statsd_graph.png"
SECONDS = 60
OUTAGE = (20, 35)
RATE = 40  # requests per second
COUNTERS = "stats.counters.web-api.response"


def main() -> None:
    with load.Servers("graphite") as servers:
        stack = GraphiteStack(servers.log_dir)
        try:
            stack.start()
            producer = servers.example("why_distributed/recipe_api.py")
            service = servers.example(
                "observability/statsd_service.py",
                env={
                    "TARGET": producer.url,
                    "TARGET_TIMEOUT": "0.5",
                    "STATSD": f"{LOOPBACK}:{stack.statsd_port}",
                    "HEALTH_INTERVAL": "1",
                },
            )
            counts: dict[int, int] = {}
            started = time.monotonic()
            paused = resumed = False
            with httpx.Client(timeout=5) as client:
                next_at = started
                while (elapsed := time.monotonic() - started) < SECONDS:
                    if elapsed >= OUTAGE[0] and not paused:
                        print(f"{elapsed:.0f} s: freezing recipe-api (SIGSTOP)", flush=True)
                        os.kill(producer.pid, signal.SIGSTOP)
                        paused = True
                    if elapsed >= OUTAGE[1] and not resumed:
                        print(f"{elapsed:.0f} s: recipe-api resumes (SIGCONT)", flush=True)
                        os.kill(producer.pid, signal.SIGCONT)
                        resumed = True
                    status = client.get(f"{service.url}/").status_code
                    counts[status] = counts.get(status, 0) + 1
                    # The next request 1/RATE s after this one, with no catching up after a
                    # slow stretch: a user who waited does not come back twice as often.
                    next_at = max(next_at + 1 / RATE, time.monotonic())
                    time.sleep(max(0.0, next_at - time.monotonic()))
            time.sleep(3)  # the last flushes: StatsD every second, then carbon
            png = stack.png(
                {
                    "target": [
                        f'alias(transformNull({COUNTERS}.200.rate),"200 per second")',
                        f'alias(transformNull({COUNTERS}.502.rate),"502 per second")',
                        "alias(secondYAxis(stats.timers.web-api.outbound.recipe-api.upper),"
                        '"slowest call to recipe-api (ms)")',
                    ],
                    "from": f"-{SECONDS + 5}s",
                    "width": "900",
                    "height": "360",
                    "title": "web-api, as StatsD sent it to Graphite",
                    "vtitle": "responses per second",
                    "vtitleRight": "milliseconds",
                    "lineWidth": "2",
                    "bgcolor": "white",
                    "fgcolor": "black",
                    "majorGridLineColor": "#cccccc",
                    "minorGridLineColor": "#eeeeee",
                }
            )
        finally:
            stack.stop()
    path = output_path(PNG)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    print(f"wrote {path} ({len(png):,} bytes)", flush=True)
    rows = [[status, f"{count:,}"] for status, count in sorted(counts.items())]
    body = "\n\n".join(
        [
            markdown_table(["status", "responses"], rows),
            f"Up to {RATE} requests per second, one at a time, for {SECONDS} s to `GET /`; "
            f"recipe-api frozen (SIGSTOP) from second {OUTAGE[0]} to second {OUTAGE[1]}, "
            "web-api's timeout for it 0.5 s; StatsD flushing every second.",
        ]
    )
    write_results(
        RESULTS,
        body,
        stamp(["statsd", "sanic"], {"carbon": ["dpkg-query", "-W", "graphite-carbon"]}),
        COMMAND,
    )


if __name__ == "__main__":
    main()
