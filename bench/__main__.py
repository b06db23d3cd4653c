"""Run benchmarks: `python -m bench` runs them all, `python -m bench NAME...` some.

Each benchmark is a module under bench/<chapter>/ with a `main()` that writes
its results file under snippets/<chapter>/. They start everything through the
test kit (tests/kit, imported as `kit`: `nox -s bench` puts tests/ on
PYTHONPATH) and load servers through bench/load.py. By hand:

    PYTHONPATH=tests BENCH_DURATION=1 BENCH_OUTPUT=/tmp/bench python -m bench workers

`python -m bench charts` only redraws the charts (bench/charts.py) from the
committed results files. BENCH_DURATION shortens each measurement; BENCH_OUTPUT
writes the results under another directory, leaving the committed figures alone.
"""

from __future__ import annotations

import importlib
import sys

from bench import charts, common

BENCHMARKS = {
    "recipe_api_vs_node": "bench.why_distributed.recipe_api_vs_node",
    "loop_lag": "bench.why_distributed.loop_lag",
    "gil_pools": "bench.why_distributed.gil_pools",
    "where_time_goes": "bench.why_distributed.where_time_goes",
    "compression_sizes": "bench.protocols.compression_sizes",
    "protocols_compared": "bench.protocols.protocols_compared",
    "workers": "bench.scaling.workers",
    "worker_memory": "bench.scaling.worker_memory",
    "proxy_overhead": "bench.scaling.proxy_overhead",
    "capacity": "bench.scaling.capacity",
    "telemetry_cost": "bench.observability.telemetry_cost",
    "statsd_graph": "bench.observability.statsd_graph",
    "container_images": "bench.containers.images",
    "test_layers": "bench.deployments.test_layers",
    "graceful_restart": "bench.resilience.graceful_restart",
    "db_pool": "bench.resilience.pool",
    "cache_memory": "bench.resilience.cache_memory",
    "retry_storm": "bench.resilience.retry_storm",
    "chaos": "bench.resilience.chaos",
    "redis_pipelines": "bench.primitives.pipelines",
    "lighthouse": "bench.site.lighthouse",
}


def run(names: list[str]) -> None:
    if names == ["charts"]:  # redraw every chart from the committed results files
        charts.main()
        return
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names or list(BENCHMARKS):
        print(f"== bench {name}", flush=True)
        importlib.import_module(BENCHMARKS[name]).main()
        charts.main(common.WRITTEN)  # the chart beside each table it wrote
        common.WRITTEN.clear()


if __name__ == "__main__":
    run(sys.argv[1:])
