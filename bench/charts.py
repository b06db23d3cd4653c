"""Charts beside the benchmark tables: one SVG per results file, drawn from its table.

`python -m bench NAME` redraws NAME's chart after writing its results file, and
`python -m bench charts` redraws every chart from the committed results files, so a
chart never shows other figures than the table beside it. Each SVG carries the
results file's stamp as its caption (tests/test_charts.py compares the two).

The SVGs are made to diff cleanly: text stays text (system fonts, nothing to load),
no date in the metadata, fixed ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.process import ROOT

from bench.common import output_path


@dataclass(frozen=True)
class Chart:
    """Bars for one table of a results file: a bar group per row, a colour per column."""

    results: str  # snippets/<this>, the results file
    svg: str  # docs/<this>, the chart
    title: str
    unit: str  # the value axis label
    columns: Sequence[str]  # the table columns drawn as bars (values parsed from cells)
    table: int = 0  # which table of the file (0 = the first)
    label: str = ""  # the column naming each row (default: the first)
    rows: Callable[[str], bool] = lambda _label: True
    value: Callable[[str], float | None] = field(default=lambda cell: first_number(cell))
    log: bool = False
    kind: str = "barh"  # or "line": x = `x` column, one line per value of `label`
    x: str = ""
    # A line across the chart, read from the results text: (label, value) or None.
    threshold: Callable[[str], tuple[str, float] | None] = lambda _text: None


NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def first_number(cell: str) -> float | None:
    """The first number in a table cell: "23,464" -> 23464, "0.67 s (max 0.97 s)" -> 0.67."""
    if cell.strip().startswith("<"):  # "<1": under the resolution, drawn as 0
        return 0.0
    match = NUMBER.search(cell)
    return float(match[0].replace(",", "")) if match else None


def in_parentheses(cell: str) -> float | None:
    """The number in parentheses: "35 (233%)" -> 233."""
    match = re.search(r"\(([\d.,]+)\s*%?\)", cell)
    return float(match[1].replace(",", "")) if match else None


def total(cell: str) -> float | None:
    """The sum of a cell's numbers: "211, 103, 176" -> 490."""
    numbers = NUMBER.findall(cell.replace(", ", " "))
    return sum(float(n.replace(",", "")) for n in numbers) if numbers else None


def percent_after_of(cell: str) -> float | None:
    """ "2,321 of 6,000 (38.68 %)" -> 38.68."""
    match = re.search(r"\(([\d.]+) %\)", cell)
    return float(match[1]) if match else None


CHARTS = [
    Chart(
        "why_distributed/bench_recipe_api.md",
        "why_distributed/img/bench_recipe_api.svg",
        "GET /recipes/42 on one core",
        "requests per second",
        ["req/s"],
    ),
    Chart(
        "why_distributed/bench_loop_lag.md",
        "why_distributed/img/bench_loop_lag.svg",
        "/health while the route is busy",
        "milliseconds (log scale)",
        ["/health median", "/health worst"],
        log=True,
    ),
    Chart(
        "why_distributed/bench_gil_pools.md",
        "why_distributed/img/bench_gil_pools.svg",
        "fib(31) x 12 on 2 cores",
        "seconds",
        ["time"],
    ),
    Chart(
        "protocols/bench_compression_sizes.md",
        "protocols/img/bench_compression_sizes.svg",
        "Compressed size, as % of the JSON",
        "% of identity (lower is smaller)",
        ["gzip", "br", "zstd"],
        value=in_parentheses,
    ),
    Chart(
        "protocols/bench_protocols.md",
        "protocols/img/bench_protocols.svg",
        "One recipe, 10 concurrent callers, one core",
        "requests per second",
        ["req/s"],
        table=1,
    ),
    Chart(
        "scaling/bench_workers.md",
        "scaling/img/bench_workers.svg",
        "GET /fibonacci/25: one process against two",
        "requests per second",
        ["req/s"],
    ),
    Chart(
        "scaling/bench_worker_memory.md",
        "scaling/img/bench_worker_memory.svg",
        "Memory of the whole process tree",
        "MiB",
        ["tree RSS (sum)", "tree PSS (sum)"],
    ),
    Chart(
        "scaling/bench_proxy_overhead.md",
        "scaling/img/bench_proxy_overhead.svg",
        "Direct, or through HAProxy",
        "requests per second",
        ["req/s"],
    ),
    Chart(
        "scaling/bench_capacity.md",
        "scaling/img/bench_capacity.svg",
        "p99 latency as the offered rate rises",
        "p99 ms (log scale)",
        ["p99 ms"],
        table=1,
        kind="line",
        x="rate/s",
        log=True,
        threshold=lambda text: (
            (f"objective: p99 <= {m[1]} ms", float(m[1]))
            if (m := re.search(r"p99 <= (\d+) ms", text))
            else None
        ),
    ),
    Chart(
        "observability/bench_telemetry_cost.md",
        "observability/img/bench_telemetry_cost.svg",
        "What each kind of telemetry costs",
        "requests per second",
        ["req/s"],
    ),
    Chart(
        "containers/bench_images.md",
        "containers/img/bench_images.svg",
        "Image sizes",
        "MB",
        ["size"],
    ),
    Chart(
        "deployments/test_layers.md",
        "deployments/img/test_layers.svg",
        "What one test costs, by layer",
        "seconds per test (log scale)",
        ["per test, s"],
        rows=lambda label: "pipeline" not in label,
        log=True,
    ),
    Chart(
        "resilience/graceful_restart.md",
        "resilience/img/graceful_restart.svg",
        "Requests failed while one instance restarts (3 rounds)",
        "failed requests",
        ["failed, per round"],
        value=total,
    ),
    Chart(
        "resilience/db_pool.md",
        "resilience/img/db_pool.svg",
        "Recovery after PostgreSQL comes back",
        "seconds (median of 3)",
        ["recovery (median of 3)"],
        table=1,
        label="PostgreSQL stopped for",
    ),
    Chart(
        "resilience/cache_memory.md",
        "resilience/img/cache_memory.svg",
        "Memory held after N distinct keys",
        "MB (log scale)",
        ["dict", "TTLCache(maxsize=1000)"],
        value=lambda cell: first_number(cell.split(",")[-1]),
        log=True,
    ),
    Chart(
        "resilience/retry_storm.md",
        "resilience/img/retry_storm.svg",
        "Attempts per request",
        "attempts per request",
        ["attempts per request"],
    ),
    Chart(
        "resilience/chaos.md",
        "resilience/img/chaos.svg",
        "Requests failed under chaos",
        "% failed",
        ["failed"],
        value=percent_after_of,
    ),
    Chart(
        "primitives/redis_pipelines.md",
        "primitives/img/redis_pipelines.svg",
        "1,000 INCRs",
        "milliseconds",
        ["wall time (median of 7)"],
    ),
]


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """The Markdown tables of a results file, as (header, rows), in order."""
    found: list[tuple[list[str], list[list[str]]]] = []
    lines = [line.strip() for line in text.splitlines()]
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1]):
            header = split_row(lines[i])
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(split_row(lines[i]))
                i += 1
            found.append((header, rows))
        else:
            i += 1
    return found


def split_row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def plain(text: str) -> str:
    """Table cell Markdown as chart text: no backticks, no bold."""
    return re.sub(r"[`*]", "", text)


def stamp_of(text: str) -> str:
    """The results file's stamp line, without the regenerate hint and the HTML."""
    match = re.search(r"<small>(Measured .*?\.)(?: Regenerate with .*)?</small>", text, re.S)
    if match is None:
        raise ValueError("no stamp line (<small>Measured ...</small>)")
    return " ".join(match[1].split())


def draw(chart: Chart) -> Path:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text as <text>: the reader's fonts, nothing embedded
            "svg.hashsalt": "distributed-python",  # stable ids, so reruns diff cleanly
            "font.size": 10,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    results = output_path(f"snippets/{chart.results}")
    if not results.exists():  # BENCH_OUTPUT set, this benchmark not run into it
        results = ROOT / "snippets" / chart.results
    text = results.read_text()
    header, rows = tables(text)[chart.table]
    label_at = header.index(chart.label) if chart.label else 0
    stamp = stamp_of(text)
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * max(len(rows), 3)), layout="constrained")
    if chart.kind == "line":
        x_at, y_at = header.index(chart.x), header.index(chart.columns[0])
        for name in dict.fromkeys(row[label_at] for row in rows):
            points = [
                (first_number(row[x_at]), chart.value(row[y_at]))
                for row in rows
                if row[label_at] == name
            ]
            ax.plot(*zip(*points, strict=True), marker="o", label=plain(name))
        if line := chart.threshold(text):
            ax.axhline(line[1], color="#c62828", linestyle="--", linewidth=1, label=line[0])
        ax.set_xlabel(plain(chart.x))
        ax.set_ylabel(chart.unit)
        ax.legend(frameon=False)
        fig.set_figheight(3.6)
    else:
        kept = [row for row in rows if chart.rows(row[label_at])]
        labels = [plain(row[label_at]) for row in kept]
        height = 0.8 / len(chart.columns)
        for n, column in enumerate(chart.columns):
            at = header.index(column)
            values = [chart.value(row[at]) or 0.0 for row in kept]
            positions = [i + (n - (len(chart.columns) - 1) / 2) * height for i in range(len(kept))]
            bars = ax.barh(positions, values, height=height * 0.9, label=plain(column))
            ax.bar_label(bars, labels=[plain(row[at]) for row in kept], padding=3, fontsize=8)
        ax.set_yticks(range(len(kept)), labels)
        ax.invert_yaxis()  # the table's first row on top
        ax.set_xlabel(chart.unit)
        ax.margins(x=0.18)
        if len(chart.columns) > 1:
            ax.legend(frameon=False, loc="best")
    if chart.log:
        (ax.set_yscale if chart.kind == "line" else ax.set_xscale)("log")
    ax.set_title(chart.title, loc="left", fontweight="bold")
    fig.text(0.0, 0.0, stamp, fontsize=6, color="#555555", wrap=True, va="bottom")
    fig.get_layout_engine().set(h_pad=0.25)
    path = output_path(f"docs/{chart.svg}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None}, facecolor="white")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def for_results(results: Sequence[str]) -> list[Chart]:
    return [chart for chart in CHARTS if chart.results in results]


def main(results: Sequence[str] | None = None) -> None:
    """Redraw the charts of these results files (snippets-relative), or all of them."""
    for chart in CHARTS if results is None else for_results(results):
        draw(chart)
