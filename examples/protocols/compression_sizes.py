"""How many bytes gzip, Brotli and Zstandard save on JSON, from tiny to large.

Encodes payloads from a 15-byte health answer to 10,000 recipes (the same
recipes, byte for byte, as compression_producer.py sends), compresses each
with the settings that producer uses (gzip level 6, Brotli quality 5,
Zstandard level 3), and prints a Markdown table of the sizes. Small payloads
grow: every format adds a header and a checksum, and there is too little
repetition to pay for them. Large ones shrink to a small fraction.

Run it:

    python examples/protocols/compression_sizes.py

No environment variables, no arguments.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
import orjson
import zstandard

# The same recipes as compression_producer.py (examples are single files).
DISHES = ["Chicken Tikka Masala", "Pad Thai", "Shakshuka", "Jollof Rice", "Pierogi", "Pho"]
FOODS = ["Chicken", "Rice noodles", "Eggs", "Tomatoes", "Onion", "Garlic", "Rice", "Flour"]
STEPS = ["Chop everything.", "Fry the onion.", "Simmer for 20 minutes.", "Season to taste."]


def recipe(i: int) -> dict:
    return {
        "id": i,
        "name": f"{DISHES[i % len(DISHES)]} #{i}",
        "steps": " ".join(STEPS[: 1 + i % len(STEPS)]),
        "ingredients": [
            {"id": k, "name": FOODS[(i + 3 * k) % len(FOODS)], "quantity": f"{(i * 7 + k) % 900} g"}
            for k in range(1, 2 + i % 4)
        ],
    }


# --8<-- [start:codecs]
def zstd(data: bytes) -> bytes:
    # Like the producer: a compressobj writes no content size in the frame header.
    stream = zstandard.ZstdCompressor(level=3).compressobj()
    return stream.compress(data) + stream.flush()


CODECS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: zlib.compress(data, 6, wbits=31),
    "br": lambda data: brotli.compress(data, quality=5),
    "zstd": zstd,
}


def payloads() -> dict[str, bytes]:
    """JSON bodies from tiny to large, labelled for the table."""
    bodies = {
        "health answer": orjson.dumps({"status": "ok"}),
        "404 error": orjson.dumps(
            {"description": "Not Found", "status": 404, "message": "no recipe with id 7"}
        ),
    }
    for count in (1, 10, 100, 1000, 10_000):
        label = f"{count:,} recipe{'s' if count > 1 else ''}"
        bodies[label] = orjson.dumps([recipe(i) for i in range(1, count + 1)])
    return bodies


# --8<-- [end:codecs]


# --8<-- [start:table]
def sizes() -> dict[str, dict[str, int]]:
    """Bytes on the wire for each payload: identity, then each encoding."""
    return {
        label: {"identity": len(body)} | {name: len(codec(body)) for name, codec in CODECS.items()}
        for label, body in payloads().items()
    }


def table() -> str:
    lines = [
        "| payload | identity | gzip | br | zstd |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, row in sizes().items():
        cells = [f"{row['identity']:,}"]
        cells += [f"{row[name]:,} ({row[name] / row['identity']:.0%})" for name in CODECS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --8<-- [end:table]


if __name__ == "__main__":
    print(table())
