"""Shared helpers for benchmarks: results files stamped with date, machine and versions.

Results go to snippets/ (and images to docs/), where the pages include them.
BENCH_OUTPUT=DIR writes them under DIR instead, in the same layout: a trial run
that leaves the committed figures alone.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from kit.process import ROOT


def output_path(relative: str) -> Path:
    """Where a file the pages show is written: ROOT/relative, or under BENCH_OUTPUT."""
    return Path(os.environ.get("BENCH_OUTPUT") or ROOT) / relative


def duration(default: float) -> float:
    """Seconds per measurement; BENCH_DURATION overrides (e.g. 2 for a quick look)."""
    return float(os.environ.get("BENCH_DURATION", default))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def program_version(argv: Sequence[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).strip().splitlines()[0]


def stamp(packages: Iterable[str] = (), programs: dict[str, Sequence[str]] | None = None) -> str:
    """One Markdown line saying when, where and with what versions a figure was made."""
    versions = [f"Python {platform.python_version()}"]
    for name in packages:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    for name, argv in (programs or {}).items():
        version = program_version(argv)
        if version.lower().startswith(f"{name.lower()} version"):
            # `haproxy -v`: "HAProxy version 2.6.12-1 2023/12/04 - https://haproxy.org/"
            versions.append(version.replace(" version", "", 1).split(" - ")[0])
        else:
            versions.append(f"{name} {version}")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Measured {now} on {cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}; " + ", ".join(versions) + "."
    )


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


WRITTEN: list[str] = []  # results files written by this run (bench/__main__.py draws their charts)


def write_results(relative: str, body: str, stamp_line: str, command: str) -> Path:
    """Write snippets/<relative>: the figures, the stamp, and the command that made them."""
    path = output_path(f"snippets/{relative}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"{body.rstrip()}\n\n<small>{stamp_line} Regenerate with `{command}`.</small>\n"
    )
    print(f"wrote {path}")
    WRITTEN.append(relative)
    return path
