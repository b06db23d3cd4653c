"""Where recipe-api's time goes: a profile, other frameworks, other Sanic releases.

Three measurements for docs/why_distributed/where_time_goes.md, each against
the Node.js twin (node_server.js) in the same run, every server pinned to the
first CPU and autocannon (`-c 10`) to the second:

1. profile: py-spy samples recipe-api under load. It writes the flame graph
   (docs/why_distributed/img/recipe_api_flamegraph.svg) and, from a second
   recording of the same load, the share of samples per part of the work
   (snippets/why_distributed/bench_where_profile.md).
2. frameworks: the same JSON from Node `http`, recipe-api as shipped, Sanic tuned,
   FastAPI and Starlette on uvicorn, Starlette on Granian, aiohttp, Granian's RSGI
   and a bare uvloop + httptools protocol, in alternating rounds; the median per
   server and its ratio to Node (snippets/why_distributed/bench_frameworks.md and
   docs/why_distributed/img/frameworks_vs_node.svg).
3. versions: recipe-api on the last Sanic releases, each installed with uv into a
   throwaway virtual environment, alternating with Node
   (snippets/why_distributed/bench_sanic_versions.md).
"""

from __future__ import annotations

import collections
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
from kit import sysdeps
from kit.process import ROOT

from bench import load
from bench.common import duration, markdown_table, output_path, stamp, write_results

COMMAND = "./nox -s bench -- where_time_goes"
PATH = "/recipes/42"
RECIPE_API = "why_distributed/recipe_api.py"
HERE = "bench/why_distributed"  # the variant servers, relative to the root where they start
ROUNDS = 5  # A B C ... A B C ...: the median of each server's rounds is reported
DEFAULT_SECONDS = 3  # per run: (10 servers + 4 in the versions run) x 5 rounds x 3 s < 4 min
PROFILE_SECONDS = 6  # per py-spy recording; two recordings
SANIC_VERSIONS = ["24.12.0", "25.3.0", "25.12.1"]  # the last three release lines
VERSION_PACKAGES = ["orjson", "pydantic", "pydantic-settings", "httpx"]  # recipe-api's imports

FLAMEGRAPH = "docs/why_distributed/img/recipe_api_flamegraph.svg"
CHART = "docs/why_distributed/img/frameworks_vs_node.svg"
PROFILE_RESULTS = "why_distributed/bench_where_profile.md"
FRAMEWORK_RESULTS = "why_distributed/bench_frameworks.md"
VERSION_RESULTS = "why_distributed/bench_sanic_versions.md"

# name on the page, program under bench/why_distributed (None: recipe-api itself), env
VARIANTS: list[tuple[str, str | None, dict[str, str]]] = [
    ("Sanic: recipe-api as shipped", None, {}),
    ("Sanic: tuned", "server_sanic_tuned.py", {}),
    ("Sanic tuned, as ASGI on uvicorn", "server_sanic_tuned.py", {"ASGI": "1"}),
    ("FastAPI on uvicorn", "server_fastapi.py", {}),
    ("Starlette on uvicorn", "server_starlette.py", {}),
    ("Starlette on Granian (ASGI)", "server_starlette.py", {"GRANIAN": "1"}),
    ("aiohttp", "server_aiohttp.py", {}),
    ("Granian RSGI, no framework", "server_granian_rsgi.py", {}),
    ("bare uvloop + httptools", "server_bare.py", {}),
]
NODE = "Node.js: http"

# Where a sample's innermost Python frame lies, first match wins. py-spy shows Python
# frames only: time in C under a Python line (orjson, a socket write) counts for that
# line, and time in uvloop's own C code (polling, reading sockets, calling callbacks)
# shows as the frame that started the loop, `_run_server_forever`.
PARTS = [
    ("handler and JSON encoding (orjson)", r"recipe_api\.py|response/convenience\.py"),
    (
        "event loop: uvloop polling and reading sockets, asyncio",
        r"_run_server_forever|asyncio/|uvloop",
    ),
    # Sanic's HttpProtocol.send, compiled at start-up: its `transport.write(data)` line
    # is where the answer goes to the kernel.
    ("socket writes (`transport.write` in Sanic's `send`)", r"^send \(send:"),
    (
        "Sanic HTTP/1: parse the request, build the response and its headers",
        r"sanic/http/|sanic/headers\.py|sanic/response/|sanic/server/|sanic/compat\.py|"
        r"^(http1_request_header|http1_response_header|read|connection_task) ",
    ),
    (
        "Sanic dispatch: request object, routing, handle_request",
        r"sanic/app\.py|sanic/request/|sanic_routing/|sanic/router\.py|sanic/models/|"
        r"sanic/signals\.py|sanic/config\.py|^(handle_request|handle_exception|find_route) |^<",
    ),
]
OTHER = "other"


def variant_argv(program: str) -> list[str]:
    return [sys.executable, f"{HERE}/{program}"]


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is missing: `./nox -s bench` installs it (bench group)")
    return found


def uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".venv-nox/bin/uv")
    if not Path(found).exists():
        raise RuntimeError("uv is missing: ./nox installs it in .venv-nox")
    return found


def uv_version() -> str:
    said = subprocess.run([uv(), "--version"], capture_output=True, text=True, check=True)
    return " ".join(said.stdout.split()[:2])  # "uv 0.13.9"


# --- 1. profile ------------------------------------------------------------------------


def profile_seconds() -> int:
    return max(2, round(duration(PROFILE_SECONDS)))


def record(pid: int, url: str, fmt: str, out: Path, cpus: load.Cpus) -> str:
    """py-spy records `pid` for PROFILE_SECONDS while autocannon loads `url`."""
    seconds = profile_seconds()
    argv = [str(load.autocannon_path()), "-c", str(load.CONNECTIONS), "-d", str(seconds + 2)]
    with subprocess.Popen(
        [*load.taskset(cpus.load), *argv, url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as cannon:
        time.sleep(1)  # connections open and the server busy before the first sample
        # --nonblocking: reading the stacks without pausing the process. Pausing it
        # (the default) lands the samples on lines that make system calls (os.getpid(),
        # a socket write) several times more often than the time they take.
        spy = [py_spy(), "record", "--nonblocking", "--format", fmt, "-o", str(out)]
        spy += ["--pid", str(pid)]
        result = subprocess.run(
            [*load.taskset(cpus.load), *spy, "--duration", str(seconds), "--rate", "200"],
            capture_output=True,
            text=True,
            check=False,
        )
        cannon.wait()
    if result.returncode != 0:
        raise RuntimeError(
            f"py-spy failed ({result.returncode}): {result.stderr.strip()}\n"
            "It attaches with ptrace: as root, or with /proc/sys/kernel/yama/ptrace_scope 0."
        )
    said = (result.stdout + result.stderr).splitlines()
    return next((line for line in reversed(said) if "Samples" in line), "")


def part_of(frame: str) -> str:
    for name, pattern in PARTS:
        if re.search(pattern, frame):
            return name
    return OTHER


def shares(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Samples in all, per part of the work, and per innermost frame (self time)."""
    total = 0
    parts: collections.Counter[str] = collections.Counter()
    frames: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        total += int(count)
        parts[part_of(leaf)] += int(count)
        frames[leaf] += int(count)
    return total, parts, frames


def stamp_flamegraph(path: Path, title: str, stamp_line: str) -> None:
    """py-spy titles the graph with its own command line (a pid, a temporary path)."""
    svg = path.read_text()
    svg = re.sub(r'(<text id="title"[^>]*>)[^<]*', lambda m: m.group(1) + title, svg, count=1)
    svg = svg.replace("<!--NOTES: -->", f"<!--NOTES: {stamp_line} Regenerate: {COMMAND}-->", 1)
    # The stamp, small, at the bottom left (the search results use the bottom right).
    height = float(re.search(r'<svg[^>]* height="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    line = f'<text x="10" y="{height - 4:.0f}" style="font-size:8px">{escape(stamp_line)}</text>'
    head, _, tail = svg.rpartition("</svg>")  # the outer svg closes last
    svg = head + line + "</svg>" + tail
    path.write_text(svg)


def profile(cpus: load.Cpus) -> None:
    with load.Servers("where-profile") as servers:
        # A PYTHON* variable makes the kit start a plain process instead of a fork of its
        # fork server, so that the stacks start in recipe_api.py, not in the kit.
        api = servers.example(RECIPE_API, env={"PYTHONNOUSERSITE": "1"}, cpus=cpus.server)
        url = api.url + PATH
        load.autocannon(url, 2, cpus=cpus.load)  # warm-up
        with tempfile.TemporaryDirectory(prefix="where-profile-") as tmp:
            raw_path = Path(tmp) / "raw.txt"
            raw_summary = record(api.pid, url, "raw", raw_path, cpus)  # type: ignore[arg-type]
            raw = raw_path.read_text()
        graph = output_path(FLAMEGRAPH)
        graph.parent.mkdir(parents=True, exist_ok=True)
        graph_summary = record(api.pid, url, "flamegraph", graph, cpus)  # type: ignore[arg-type]
    print(f"py-spy: {raw_summary}; {graph_summary}", flush=True)
    stamp_line = stamp(["sanic", "sanic-routing", "orjson", "uvloop", "py-spy"])
    sanic = importlib.metadata.version("sanic")
    stamp_flamegraph(
        graph,
        f"recipe-api (Sanic {sanic}) under autocannon -c {load.CONNECTIONS}: GET {PATH}",
        stamp_line,
    )
    print(f"wrote {graph}", flush=True)
    total, parts, frames = shares(raw)
    lost = re.search(r"Errors: (\d+)", raw_summary)
    lost = lost.group(1) if lost else "some"
    part_rows = [[name, f"{parts[name] / total:.0%}"] for name in [*(p for p, _ in PARTS), OTHER]]
    frame_rows = [
        [f"`{frame}`", part_of(frame), f"{count / total:.1%}"]
        for frame, count in frames.most_common(10)
    ]
    body = "\n\n".join(
        [
            markdown_table(["part of the work", "share of samples"], part_rows),
            "The ten innermost frames that were sampled most often:",
            markdown_table(["frame (function, file:line)", "part", "share"], frame_rows),
            f"py-spy (`--nonblocking`) at 200 samples per second for "
            f"{profile_seconds()} s while autocannon `-c {load.CONNECTIONS}` "
            f"loaded `GET {PATH}` ({total} samples "
            f"with recipe-api on its CPU; idle ones are not counted, {lost} could not be read "
            "as the stack changed under py-spy); recipe-api pinned to "
            f"CPU {cpus.server[0]}, autocannon and py-spy to CPU {cpus.load[0]}. A frame "
            "without a file name is code Sanic compiles at start-up (its TouchUp step "
            "strips the hooks an app does not use).",
        ]
    )
    write_results(PROFILE_RESULTS, body, stamp_line, COMMAND)


# --- 2. frameworks ---------------------------------------------------------------------


def frameworks(cpus: load.Cpus, seconds: int, warmup: int) -> list[load.Target]:
    node = sysdeps.require("node")["node"]
    with load.Servers("where-frameworks") as servers:
        targets = []
        twin = servers.program("node", [node, f"{HERE}/node_server.js"], cpus=cpus.server)
        targets.append(load.Target(NODE, twin.url + PATH, {"server": twin.pid}))
        for name, program, env in VARIANTS:
            if program is None:
                server = servers.example(RECIPE_API, env=env, cpus=cpus.server)
            else:
                # ready once it answers: Granian's worker process exists then, and is pinned
                server = servers.program(
                    Path(program).stem,
                    variant_argv(program),
                    env=env,
                    ready=PATH,
                    cpus=cpus.server,
                )
            targets.append(load.Target(name, server.url + PATH, {"server": server.pid}))
        same_answer(targets)
        load.alternate(
            targets, seconds=seconds, warmup=warmup, rounds=ROUNDS, cpus=cpus.load, quiet_budget=20
        )
    return targets


def same_answer(targets: list[load.Target]) -> None:
    """Every server gives the same JSON (its own pid aside), or the comparison is void."""
    answers = {}
    for target in targets:
        answer = httpx.get(target.url).raise_for_status().json()
        assert isinstance(answer.pop("producer_pid"), int), target.name
        answers[target.name] = answer
    expected = answers[targets[0].name]
    different = [name for name, answer in answers.items() if answer != expected]
    if different:
        raise RuntimeError(f"not the same answer as {targets[0].name}: {', '.join(different)}")


def microseconds_per_request(target: load.Target) -> float | None:
    """CPU time the server spent per answer: its CPU share over its requests per second."""
    cpu = load.median_known([run["server_cpu"] for run in target.runs])
    return None if cpu is None else cpu / target.requests_per_second() * 1e6


def cost_columns(cost: float | None, node_cost: float | None) -> list[str]:
    if cost is None or node_cost is None:
        return ["n/a", "n/a"]
    return [f"{cost:.0f}", f"{node_cost / cost:.2f}"]


def framework_report(targets: list[load.Target], seconds: int, cpus: load.Cpus) -> str:
    node = targets[0].requests_per_second()
    node_cost = microseconds_per_request(targets[0])
    rows = [
        [
            target.name,
            f"{target.requests_per_second():,.0f}",
            f"{target.requests_per_second() / node:.2f}",
            load.milliseconds(target.median("latency", "p99")),
            sum(load.failures(run) for run in target.runs),
            load.percent(load.median_known([run["server_cpu"] for run in target.runs])),
            *cost_columns(microseconds_per_request(target), node_cost),
        ]
        for target in targets
    ]
    parts = [
        markdown_table(
            [
                *("server", "req/s", "ratio to Node", "p99 ms", "errors", "server CPU"),
                *("CPU µs/req", "ratio by CPU"),
            ],
            rows,
        ),
        f"`GET {PATH}`, the same JSON from every server; autocannon `-c {load.CONNECTIONS} "
        f"-d {seconds}`, median of {ROUNDS} alternating rounds; one process per server, "
        f"{cpus.sentence}. Errors counts socket errors, timeouts and non-2xx answers over "
        "all rounds; server CPU is the median share of one core the server's processes used, "
        "and CPU µs/req that share divided by the requests per second: the CPU time one "
        "answer costs. Ratio by CPU is Node's CPU µs/req over the server's: the ratio to "
        "Node each would reach with a whole core to itself, which a busy machine blurs "
        "less than requests per second.",
    ]
    starved = sum(1 for target in targets for run in target.runs if load.crowded_out(run))
    if starved:
        parts.append(
            f"In {starved} of {ROUNDS * len(targets)} runs neither the server nor autocannon "
            f"got {load.STARVED_BELOW:.0%} of its CPU: other work on the machine competed."
        )
    return "\n\n".join(parts)


def chart(targets: list[load.Target], stamp_line: str) -> None:
    """Two panels: requests per second (ratio to Node), CPU µs per request (ratio by CPU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "where-time-goes"  # stable ids: reruns diff cleanly
    targets = targets[::-1]  # barh draws bottom up: Node on top
    names = [target.name for target in targets]
    colors = [
        "#4c956c" if name == NODE else "#c44536" if name.startswith("Sanic") else "#577590"
        for name in names
    ]
    rates = [target.requests_per_second() for target in targets]
    costs = [microseconds_per_request(target) or 0.0 for target in targets]
    node_rate, node_cost = rates[-1], costs[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.8), sharey=True)
    panels = [
        (left, rates, [rate / node_rate for rate in rates], "requests per second"),
        (right, costs, [node_cost / cost if cost else 0.0 for cost in costs], "CPU µs per request"),
    ]
    for ax, values, ratios, label in panels:
        bars = ax.barh(names, values, color=colors)
        for bar, ratio in zip(bars, ratios, strict=True):
            y = bar.get_y() + bar.get_height() / 2
            ax.text(bar.get_width(), y, f" {ratio:.2f}x", va="center", fontsize=8)
        ax.axvline(values[-1], color="#4c956c", linestyle="--", linewidth=1)
        ax.set_xlabel(label)
        ax.set_xlim(0, max(values) * 1.2)
        ax.spines[["top", "right"]].set_visible(False)
    left.set_title("throughput, ratio to Node", fontsize=10)
    right.set_title("CPU per answer, ratio by CPU (lower bar: faster)", fontsize=10)
    fig.suptitle(f"The same JSON answer (GET {PATH}), one process on one core")
    fig.text(0.01, 0.005, stamp_line, fontsize=5, color="#666666", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = output_path(CHART)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    print(f"wrote {path}", flush=True)


# --- 3. Sanic releases -----------------------------------------------------------------


def install_sanic(version: str, root: Path) -> Path:
    """A throwaway virtual environment with sanic==version and recipe-api's other imports."""
    venv = root / f"sanic-{version}"
    subprocess.run([uv(), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
    python = venv / "bin/python"
    subprocess.run(
        [
            uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            f"sanic=={version}",
            *VERSION_PACKAGES,
        ],
        check=True,
    )
    return python


def installed(python: Path, package: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def versions(cpus: load.Cpus, seconds: int, warmup: int) -> str:
    node = sysdeps.require("node")["node"]
    with tempfile.TemporaryDirectory(prefix="where-sanic-") as tmp:
        pythons = {version: install_sanic(version, Path(tmp)) for version in SANIC_VERSIONS}
        with load.Servers("where-versions") as servers:
            targets = []
            twin = servers.program("node", [node, f"{HERE}/node_server.js"], cpus=cpus.server)
            targets.append(load.Target(NODE, twin.url + PATH, {"server": twin.pid}))
            for version, python in pythons.items():
                api = servers.program(
                    f"recipe-api-sanic-{version}",
                    [str(python), f"examples/{RECIPE_API}"],
                    ready="/health",
                    cpus=cpus.server,
                )
                targets.append(
                    load.Target(f"recipe-api, sanic {version}", api.url + PATH, {"server": api.pid})
                )
            load.alternate(
                targets,
                seconds=seconds,
                warmup=warmup,
                rounds=ROUNDS,
                cpus=cpus.load,
                quiet_budget=20,
            )
        routing = {v: installed(p, "sanic-routing") for v, p in pythons.items()}
        orjson = {v: installed(p, "orjson") for v, p in pythons.items()}
    node_rps = targets[0].requests_per_second()
    node_cost = microseconds_per_request(targets[0])
    rows = []
    for target, extra in zip(targets, ["", *SANIC_VERSIONS], strict=True):
        rows.append(
            [
                target.name,
                extra and f"sanic-routing {routing[extra]}, orjson {orjson[extra]}",
                f"{target.requests_per_second():,.0f}",
                f"{target.requests_per_second() / node_rps:.2f}",
                *cost_columns(microseconds_per_request(target), node_cost),
                sum(load.failures(run) for run in target.runs),
            ]
        )
    header = ["server", "installed with it", "req/s", "ratio to Node", "CPU µs/req"]
    parts = [
        markdown_table([*header, "ratio by CPU", "errors"], rows),
        f"The same `examples/{RECIPE_API}`, each Sanic release installed with {uv_version()} "
        f"into a throwaway virtual environment (`sanic==X {' '.join(VERSION_PACKAGES)}`, "
        f"newest of the rest); autocannon `-c {load.CONNECTIONS} -d {seconds}` on "
        f"`GET {PATH}`, median of {ROUNDS} alternating rounds; {cpus.sentence}. "
        "CPU µs/req and ratio by CPU as in the comparison of frameworks.",
    ]
    starved = sum(1 for target in targets for run in target.runs if load.crowded_out(run))
    if starved:
        parts.append(
            f"In {starved} of {ROUNDS * len(targets)} runs neither the server nor autocannon "
            f"got {load.STARVED_BELOW:.0%} of its CPU: other work on the machine competed."
        )
    return "\n\n".join(parts)


# --- all three -------------------------------------------------------------------------


def main() -> None:
    load.autocannon_path()
    cpus = load.pick_cpus()
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    programs = {"node": ["node", "--version"], "autocannon": load.AUTOCANNON_VERSION}

    profile(cpus)

    targets = frameworks(cpus, seconds, warmup)
    packages = ["sanic", "fastapi", "starlette", "uvicorn", "granian", "aiohttp", "uvloop"]
    stamp_line = stamp([*packages, "httptools", "orjson", "pydantic"], programs)
    write_results(FRAMEWORK_RESULTS, framework_report(targets, seconds, cpus), stamp_line, COMMAND)
    chart(targets, stamp_line)

    body = versions(cpus, seconds, warmup)
    write_results(VERSION_RESULTS, body, stamp([], programs), COMMAND)
