"""Benchmarks: `nox -s bench` regenerates every figure the pages show."""
