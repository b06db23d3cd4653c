"""The memory leak of a cache without bounds, next to one with a bound.

A dict used as a cache keeps every key it was ever asked for: with distinct
keys (user ids, search strings, URLs), it grows until the process runs out of
memory. A `cachetools.TTLCache(maxsize=...)` evicts the least recently used
entry when full, and expired entries on the way: it never holds more than
`maxsize`. The program asks both for the same distinct keys and prints their sizes.

Run it:

    python examples/resilience/leaky_cache.py
"""

from __future__ import annotations

from cachetools import TTLCache


# --8<-- [start:caches]
def load(key: str) -> str:
    return f"value of {key}"  # stands for a slow read from a database


def cached_unbounded(cache: dict[str, str], key: str) -> str:
    if key not in cache:
        cache[key] = load(key)  # never removed: one more entry per distinct key
    return cache[key]


def cached_bounded(cache: TTLCache, key: str) -> str:
    value = cache.get(key)
    if value is None:
        value = cache[key] = load(key)  # when full, the least recently used goes
    return value


# --8<-- [end:caches]


def main() -> None:
    unbounded: dict[str, str] = {}
    bounded: TTLCache = TTLCache(maxsize=1000, ttl=300)
    for count in (1_000, 10_000, 100_000):
        for i in range(count):
            key = f"user:{i}"
            cached_unbounded(unbounded, key)
            cached_bounded(bounded, key)
        print(f"{count:>7} distinct keys: dict {len(unbounded):>7}, TTLCache {len(bounded):>5}")


if __name__ == "__main__":
    main()
