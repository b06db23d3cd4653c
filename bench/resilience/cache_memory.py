"""Memory held by an unbounded dict cache and by a TTLCache(maxsize=1000), against keys.

The very functions the "Caches" page shows (examples/resilience/leaky_cache.py) fill
each cache with N distinct keys, from empty; tracemalloc measures the Python memory
still allocated afterwards (the cache and its keys and values).

Writes snippets/resilience/cache_memory.md.
"""

from __future__ import annotations

import gc
import importlib.util
import tracemalloc

from cachetools import TTLCache
from kit.process import ROOT

from bench.common import markdown_table, stamp, write_results

RESULTS = "resilience/cache_memory.md"
COMMAND = "./nox -s bench -- cache_memory"
COUNTS = (10_000, 100_000, 1_000_000)
MAXSIZE = 1000


def leaky_cache():
    path = ROOT / "examples" / "resilience" / "leaky_cache.py"
    spec = importlib.util.spec_from_file_location("leaky_cache", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def held_mb(fill, cache, count: int) -> tuple[float, int]:
    """(MB still allocated once `count` distinct keys went through `cache`, its entries)."""
    gc.collect()
    tracemalloc.start()
    for i in range(count):
        fill(cache, f"user:{i}")
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return current / 1e6, len(cache)


def main() -> None:
    module = leaky_cache()
    rows = []
    for count in COUNTS:
        dict_mb, dict_entries = held_mb(module.cached_unbounded, {}, count)
        bounded = TTLCache(maxsize=MAXSIZE, ttl=300)
        ttl_mb, ttl_entries = held_mb(module.cached_bounded, bounded, count)
        rows.append(
            (
                f"{count:,}",
                f"{dict_entries:,} entries, {dict_mb:.1f} MB",
                f"{ttl_entries:,} entries, {ttl_mb:.2f} MB",
            )
        )
        print(rows[-1], flush=True)
    table = markdown_table(["distinct keys", "dict", f"TTLCache(maxsize={MAXSIZE})"], rows)
    body = (
        "Python memory still allocated after N distinct keys went through each cache "
        "(tracemalloc), with leaky_cache.py's functions:\n\n" + table
    )
    write_results(RESULTS, body, stamp(["cachetools"]), COMMAND)
