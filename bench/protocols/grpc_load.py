"""A small gRPC load client: N concurrent callers of GetRecipe(42) for D seconds.

    PYTHONPATH=examples/protocols python bench/protocols/grpc_load.py TARGET CONCURRENCY SECONDS

prints one JSON object: requests, requests per second, p50/p99 latency in ms and
errors. The generated stubs (snippets/protocols/grpc_codegen.sh) are imported
from PYTHONPATH. ghz, the usual gRPC load tester, is not available here; this is
the same idea in a few lines of grpc.aio, over one channel (one HTTP/2
connection) like a real consumer.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

import grpc
import recipe_pb2
import recipe_pb2_grpc


async def run(target: str, concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = recipe_pb2_grpc.RecipeServiceStub(channel)
        request = recipe_pb2.GetRecipeRequest(id=42)
        await stub.GetRecipe(request, timeout=5)  # connect before the clock starts
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal errors
            while (start := time.perf_counter()) < deadline:
                try:
                    await stub.GetRecipe(request, timeout=5)
                    latencies.append(time.perf_counter() - start)
                except grpc.aio.AioRpcError:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": quantiles[49] * 1000,
        "p99": quantiles[98] * 1000,
        "errors": errors,
    }


if __name__ == "__main__":
    target, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(run(target, concurrency, seconds))))
