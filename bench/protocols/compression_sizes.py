"""Bytes saved and CPU spent by gzip, Brotli and Zstandard on JSON.

Runs the table code of examples/protocols/compression_sizes.py (sizes of
payloads from tiny to large, with the producer's settings), then times each
encoding compressing and decompressing a 100-recipe and a 10,000-recipe body
on one core. Writes snippets/protocols/bench_compression_sizes.md.
"""

from __future__ import annotations

import runpy
import statistics
import time
import zlib
from collections.abc import Callable

import brotli
import zstandard

from bench.common import ROOT, duration, markdown_table, stamp, write_results

EXAMPLE = ROOT / "examples" / "protocols" / "compression_sizes.py"
RESULTS = "protocols/bench_compression_sizes.md"
COMMAND = "./nox -s bench -- compression_sizes"
TIMED = ("100 recipes", "10,000 recipes")

DECOMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: zlib.decompress(data, wbits=31),
    "br": brotli.decompress,
    # The producer's frames carry no content size: a decompressobj handles that.
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


def seconds_per_call(function: Callable[[], object], budget: float) -> float:
    """Median time of one call, over batches that together take about `budget` seconds."""
    started = time.perf_counter()
    function()  # warm-up, and a first estimate
    once = max(time.perf_counter() - started, 1e-7)
    per_batch = max(1, int(budget / 10 / once))
    samples = []
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline or len(samples) < 3:
        started = time.perf_counter()
        for _ in range(per_batch):
            function()
        samples.append((time.perf_counter() - started) / per_batch)
    return statistics.median(samples)


def speed_table(example: dict, budget: float) -> str:
    payloads = example["payloads"]()
    rows = []
    for name, codec in example["CODECS"].items():
        row = [name]
        for label in TIMED:
            body = payloads[label]
            compressed = codec(body)
            assert DECOMPRESS[name](compressed) == body
            compress = seconds_per_call(lambda b=body, c=codec: c(b), budget)
            decompress = seconds_per_call(lambda z=compressed, n=name: DECOMPRESS[n](z), budget)
            row += [
                f"{compress * 1e3:.2f} ms ({len(body) / compress / 1e6:,.0f} MB/s)",
                f"{decompress * 1e3:.2f} ms",
            ]
        rows.append(row)
    header = ["encoding"]
    for label in TIMED:
        header += [f"compress {label}", f"decompress {label}"]
    return markdown_table(header, rows)


def main() -> None:
    example = runpy.run_path(str(EXAMPLE))  # defines table() without running the example
    sizes = example["table"]()
    print(sizes, flush=True)
    # 4 timings per encoding, 3 encodings: about 12 s by default.
    speeds = speed_table(example, budget=duration(12) / 12)
    print(speeds, flush=True)
    body = (
        f"**Bytes on the wire**\n\n{sizes}\n\n"
        f"**Time per body on one core** (median; MB/s of JSON compressed)\n\n{speeds}"
    )
    versions = (
        f", zlib {zlib.ZLIB_RUNTIME_VERSION}, libzstd {'.'.join(map(str, zstandard.ZSTD_VERSION))}."
    )
    stamp_line = stamp(["brotli", "zstandard", "orjson"]).removesuffix(".") + versions
    write_results(RESULTS, body, stamp_line, COMMAND)
