"""1,000 INCRs against a real Redis: one at a time, in a MULTI/EXEC pipeline, in a plain pipeline.

Uses the very functions the "Redis by type" page shows (examples/primitives/
redis_types.py: `one_by_one`, `pipelined`), against a throwaway redis-server on
loopback started through the test kit. Each way runs ROUNDS times; the table gives
the median wall time and the round trips it made. Loopback is the best case for
round trips: between two machines each one costs a network round trip more.

Writes snippets/primitives/redis_pipelines.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType

from kit.process import ROOT
from kit.services.redis import RedisServer

from bench.common import markdown_table, stamp, write_results

RESULTS = "primitives/redis_pipelines.md"
COMMAND = "./nox -s bench -- redis_pipelines"
N = 1_000
ROUNDS = 7


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "redis_types", ROOT / "examples" / "primitives" / "redis_types.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def measure(types: ModuleType, url: str) -> list[tuple[str, str, str, str]]:
    ways = {
        "one `await r.incr()` at a time": (lambda r, k: types.one_by_one(r, k, N), N),
        "`pipeline(transaction=True)` (MULTI/EXEC)": (
            lambda r, k: types.pipelined(r, k, N, transaction=True),
            1,
        ),
        "`pipeline(transaction=False)`": (
            lambda r, k: types.pipelined(r, k, N, transaction=False),
            1,
        ),
    }
    rows = []
    async with types.client(url) as r:
        await r.ping()  # the connection is made before anything is timed
        baseline = None
        for name, (run, trips) in ways.items():
            times = []
            for n in range(ROUNDS):
                counter = types.key(f"bench:{n}")
                await r.unlink(counter)
                started = time.perf_counter()
                assert await run(r, counter) == N
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            baseline = baseline or median
            rows.append(
                (name, f"{trips:,}", f"{median * 1000:.1f} ms", f"{baseline / median:.0f}x")
            )
            print(rows[-1], flush=True)
        await types.forget(r, "*")
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-redis-pipelines-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        try:
            rows = asyncio.run(measure(example(), server.url))
        finally:
            server.stop()
    table = markdown_table(
        [f"{N:,} INCRs, sent as", "round trips", f"wall time (median of {ROUNDS})", "speed-up"],
        rows,
    )
    body = f"redis.asyncio client and redis-server on the same machine (loopback):\n\n{table}"
    # `redis-server --version`: "Redis server v=7.0.15 sha=... malloc=... bits=64 build=..."
    stamp_line = re.sub(
        r"Redis Redis server v=(\S+) [^,]*?build=\w+",
        r"Redis \1",
        stamp(["redis"], {"Redis": ["redis-server", "--version"]}),
    )
    write_results(RESULTS, body, stamp_line, COMMAND)
