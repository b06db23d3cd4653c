"""The same CPU-bound work serially, on threads and on processes.

Runs examples/why_distributed/gil_pools.py with its default sizes a few
times, takes the median time of each way, and writes
snippets/why_distributed/bench_gil_pools.md.
"""

from __future__ import annotations

import re
import statistics

from kit.examples import run_program

from bench.common import duration, markdown_table, stamp, write_results

EXAMPLE = "why_distributed/gil_pools.py"
RESULTS = "why_distributed/bench_gil_pools.md"
COMMAND = "./nox -s bench -- gil_pools"
SECONDS_PER_ROUND = 8  # a default run of the example takes 5 to 7 s
HEADER = re.compile(r"^fib\((\d+)\) x (\d+) jobs, (\d+) workers per pool$", re.M)
LINE = re.compile(
    r"^(?P<name>\S+) +results (?P<agree>agree|DIFFER), (?P<pids>\d+) process\(es\), "
    r"(?P<threads>\d+) thread\(s\), (?P<seconds>\d+\.\d\d) s$",
    re.M,
)


def run_once() -> tuple[re.Match[str], list[re.Match[str]]]:
    output = run_program(EXAMPLE, timeout=300)  # its run line; exit 0, nothing on stderr
    header = HEADER.search(output)
    lines = list(LINE.finditer(output))
    if header is None or len(lines) != 3 or any(m["agree"] != "agree" for m in lines):
        raise RuntimeError(f"unexpected output from {EXAMPLE}:\n{output}")
    print(output, end="", flush=True)
    return header, lines


def main() -> None:
    # About 25 s by default: five rounds. BENCH_DURATION=2 makes a quick look, one round.
    rounds = max(1, round(duration(25) / SECONDS_PER_ROUND))
    runs = [run_once() for _ in range(rounds)]
    header = runs[0][0]
    n, jobs, workers = header.groups()
    rows = []
    serial = statistics.median(float(lines[0]["seconds"]) for _, lines in runs)
    for i, last in enumerate(runs[-1][1]):
        seconds = statistics.median(float(lines[i]["seconds"]) for _, lines in runs)
        rows.append(
            [
                f"`{last['name']}`" if last["name"] != "serial" else "serial loop",
                last["pids"],
                last["threads"],
                f"{seconds:.2f} s",
                f"{serial / seconds:.2f}x",
            ]
        )
    body = (
        f"`fib({n})` computed {jobs} times, pools of {workers} workers (the CPU count), "
        f"median of {rounds} run(s); the process pool's time includes starting its workers.\n\n"
        + markdown_table(
            ["Way", "processes used", "threads used", "time", "speed-up over serial"], rows
        )
    )
    write_results(RESULTS, body, stamp(), COMMAND)


if __name__ == "__main__":
    main()
