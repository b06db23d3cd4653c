"""A kubelet-like HTTP prober: probe a service the way Kubernetes probes a container.

Every `--period` seconds it sends `GET URL`, as the kubelet does for an `httpGet`
probe. A probe fails when no whole answer arrives within `--timeout` seconds,
when the connection fails, or when the status is outside 200-399. After
`--failure-threshold` failures in a row it prints what the kubelet would do:
restart the container (`--probe liveness`, the default, or `startup`), or take the
pod out of its Service's endpoints (`--probe readiness`, which goes on probing and
counts `--success-threshold` successes in a row back to ready). A liveness or
startup decision to restart ends the run with exit code 1; a startup probe that
passes ends it with 0; otherwise it probes until Ctrl-C or SIGTERM (exit code 0).

Run it (recipe-api's liveness probe, from the chapter's manifests, with recipe-api
running on port 4000):

    python examples/orchestration/prober.py --period 10 --timeout 2 --failure-threshold 3 http://127.0.0.1:4000/live

Or let it read the probe from a manifest that `kubectl kustomize` rendered, in
place of the URL and the numbers: `--manifest FILE --container NAME --probe
liveness` (or `readiness`, `startup`). The probe's path, port (a number or a
port's name), scheme and headers come from the file, and so do its period,
timeout and thresholds (the Kubernetes defaults where the file has none). The
address is `--host` (default `127.0.0.1`: the pod's IP in a cluster) and the
port the probe's own, or `--port` to reach a copy running elsewhere. Reading a
manifest needs PyYAML, which the book's other examples do without. Install it
with:

    pip install pyyaml==6.0.4

`--speedup N` runs the probe's clock N times faster: period, timeout and initial
delay divided by N, the thresholds unchanged. It answers "what would happen"
in seconds instead of minutes, with the same counts.

A bad argument (`--period 0`, `--failure-threshold 0`, a URL that is not
http(s), a file without that container or probe) stops it at start with exit
code 2 and one line saying what is wrong, never a traceback.

Two differences from the kubelet, both on the safe side: HTTPS certificates are
verified (the kubelet does not verify them), and a redirect is not followed and
counts as a success (the kubelet follows one to the same host first).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

KUBERNETES = "1.37"  # the release the chapter's manifests are validated against
KINDS = ("liveness", "readiness", "startup")
MAX_BODY = 10 * 1024  # the kubelet reads no more of an answer than this


@dataclass(frozen=True)
class Probe:
    """One httpGet probe, with the Kubernetes defaults for what a manifest may omit."""

    kind: str  # liveness, readiness or startup
    url: str
    period: float = 10  # periodSeconds
    timeout: float = 1  # timeoutSeconds
    failure_threshold: int = 3
    success_threshold: int = 1
    initial_delay: float = 0  # initialDelaySeconds
    headers: dict[str, str] = field(default_factory=dict)  # httpHeaders
    speedup: float = 1  # how much faster its clock runs than the numbers above say

    def faster(self, speedup: float) -> Probe:
        """The same probe on a clock `speedup` times faster: the counts stay."""
        return replace(
            self,
            speedup=speedup,
            period=self.period / speedup,
            timeout=self.timeout / speedup,
            initial_delay=self.initial_delay / speedup,
        )


class BadArgument(Exception):
    """An argument or a manifest the prober cannot use; the message says why."""


# --8<-- [start:probe]
def probe_once(client: httpx.Client, probe: Probe) -> tuple[bool, str]:
    """One probe, judged as the kubelet judges it: (success, what happened)."""
    deadline = time.monotonic() + probe.timeout
    try:
        # The kubelet's timeout covers the whole exchange, and it reads at most 10 KiB.
        with client.stream("GET", probe.url, timeout=probe.timeout) as response:
            read = 0
            for chunk in response.iter_raw():
                read += len(chunk)
                if read >= MAX_BODY or time.monotonic() > deadline:
                    break
    except httpx.TimeoutException:
        return False, f"no answer within {probe.timeout:g}s"
    except httpx.TransportError as error:  # refused, reset, unreachable...
        return False, type(error).__name__
    if time.monotonic() > deadline:
        return False, f"no answer within {probe.timeout:g}s"
    # 2xx, and 3xx too: a redirect is not an error.
    return 200 <= response.status_code < 400, f"answered {response.status_code}"


# --8<-- [end:probe]


# --8<-- [start:decisions]
# What the kubelet does when a run of results reaches its threshold.
DECISIONS = {
    ("liveness", False): "the kubelet would restart the container",
    ("startup", False): "the kubelet would restart the container",
    ("startup", True): "started: the kubelet would now run the liveness and readiness probes",
    ("readiness", False): "not ready: out of the Service's endpoints (the pod keeps running)",
    ("readiness", True): "ready: among the Service's endpoints",
}
# Before the first probe: alive, not ready, not known to have started.
INITIAL = {"liveness": True, "readiness": False, "startup": None}


# --8<-- [end:decisions]


# --8<-- [start:loop]
def run(probe: Probe) -> int:
    """Probe every period until a restart (1), a start (0), or Ctrl-C/SIGTERM (0)."""
    state, last, streak = INITIAL[probe.kind], None, 0
    # A new connection per probe, as the kubelet's (no keep-alive).
    limits = httpx.Limits(max_keepalive_connections=0)
    headers = {
        "User-Agent": f"kube-probe/{KUBERNETES}",
        "Accept": "*/*",
        "Connection": "close",
        **probe.headers,
    }
    with httpx.Client(headers=headers, limits=limits, follow_redirects=False) as client:
        time.sleep(probe.initial_delay)  # on purpose: a synchronous CLI, no event loop
        start, number = time.monotonic(), 0
        while True:
            began, number = time.monotonic(), number + 1
            ok, what = probe_once(client, probe)
            streak = streak + 1 if ok == last else 1
            last = ok
            line = f"probe {number}: {'success' if ok else 'failure'} ({what})"
            if ok != state:  # this run of results counts towards a change
                needed = probe.success_threshold if ok else probe.failure_threshold
                print(f"{line}, {streak} of {needed} in a row", flush=True)
                if streak >= needed:
                    state = ok
                    print(f"{probe.kind}: {DECISIONS[probe.kind, ok]}", flush=True)
                    if probe.kind != "readiness":  # a restart or a start ends this probe
                        return 0 if ok else 1
            else:
                print(line, flush=True)
            # Like the kubelet's ticker: the next probe at the first tick of the period
            # after this one began, or at once if that tick passed while it ran.
            ticks = (began - start) // probe.period + 1
            pause = max(0.0, start + ticks * probe.period - time.monotonic())
            time.sleep(pause)  # on purpose: a synchronous CLI, no event loop


# --8<-- [end:loop]


def from_manifest(path: Path, container: str, kind: str, host: str, port: int | None) -> Probe:
    """The `kind` probe of the container named `container` in a rendered manifest."""
    try:
        import yaml  # PyYAML, needed for this mode only
    except ImportError:
        raise BadArgument("--manifest needs PyYAML: pip install pyyaml==6.0.4") from None
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except OSError as error:
        raise BadArgument(f"--manifest: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError:
        raise BadArgument(f"--manifest: {path} is not YAML") from None
    found = [
        c
        for d in documents
        for c in pod_spec(d).get("containers", [])
        if isinstance(c, dict) and c.get("name") == container
    ]
    if len(found) != 1:
        raise BadArgument(f"--container: {len(found)} containers named {container!r} in {path}")
    spec: dict[str, Any] = found[0].get(f"{kind}Probe") or {}
    get = spec.get("httpGet")
    if not isinstance(get, dict):
        raise BadArgument(f"--probe: {container} has no {kind}Probe with httpGet in {path}")
    target = get.get("port")
    named = {p.get("name"): p.get("containerPort") for p in found[0].get("ports", [])}
    number = named.get(target) if isinstance(target, str) else target
    if not isinstance(number, int):
        raise BadArgument(f"--probe: {container} has no port {target!r}")
    scheme = str(get.get("scheme", "HTTP")).lower()
    address = f"{get.get('host') or host}:{port or number}"
    return Probe(
        kind=kind,
        url=f"{scheme}://{address}{get.get('path', '/')}",
        period=spec.get("periodSeconds", 10),
        timeout=spec.get("timeoutSeconds", 1),
        failure_threshold=spec.get("failureThreshold", 3),
        success_threshold=spec.get("successThreshold", 1),
        initial_delay=spec.get("initialDelaySeconds", 0),
        headers={h["name"]: h["value"] for h in get.get("httpHeaders", [])},
    )


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a Pod, or the template's of a Deployment, StatefulSet, Job..."""
    spec = document.get("spec") or {}
    if document.get("kind") == "Pod":
        return spec
    return ((spec.get("template") or {}).get("spec")) or {}


def checked(probe: Probe) -> Probe:
    """The probe, if Kubernetes would accept it and the prober can run it."""
    parts = urlsplit(probe.url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadArgument(f"URL: {probe.url!r} is not an http:// or https:// URL")
    for name, value in (("--period", probe.period), ("--timeout", probe.timeout)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise BadArgument(f"{name}: must be more than 0 seconds, not {value!r}")
    for name, count in (
        ("--failure-threshold", probe.failure_threshold),
        ("--success-threshold", probe.success_threshold),
    ):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise BadArgument(f"{name}: must be a whole number of at least 1, not {count!r}")
    if probe.kind != "readiness" and probe.success_threshold != 1:
        # The API server refuses any other value for these two.
        raise BadArgument(f"--success-threshold: must be 1 for a {probe.kind} probe")
    return probe


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit code 2, instead of argparse's usage block."""
        print(f"configuration error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse(argv: list[str] | None) -> Probe:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="the URL to probe (not with --manifest)")
    parser.add_argument("--probe", choices=KINDS, default="liveness")
    parser.add_argument("--period", type=float, help="seconds between probes (default 10)")
    parser.add_argument("--timeout", type=float, help="seconds a probe may take (default 1)")
    parser.add_argument("--failure-threshold", type=int, help="failures in a row (default 3)")
    parser.add_argument("--success-threshold", type=int, help="successes in a row (default 1)")
    parser.add_argument("--manifest", type=Path, help="a rendered manifest to read the probe from")
    parser.add_argument("--container", help="the container whose probe to read")
    parser.add_argument("--host", default="127.0.0.1", help="the pod's address (with --manifest)")
    parser.add_argument("--port", type=int, help="another port than the probe's (with --manifest)")
    parser.add_argument("--speedup", type=float, default=1.0, help="run the clock N times faster")
    args = parser.parse_args(argv)
    numbers = {
        "period": args.period,
        "timeout": args.timeout,
        "failure_threshold": args.failure_threshold,
        "success_threshold": args.success_threshold,
    }
    given = {k: v for k, v in numbers.items() if v is not None}
    if not args.speedup >= 1:
        raise BadArgument(f"--speedup: must be at least 1, not {args.speedup:g}")
    if args.manifest is None:
        if args.url is None:
            raise BadArgument("give a URL to probe, or --manifest, --container and --probe")
        if args.container or args.port:
            raise BadArgument("--container and --port go with --manifest, not with a URL")
        probe = Probe(kind=args.probe, url=args.url, **given)
    else:
        if args.url or given:
            wrong = "a URL" if args.url else "--" + next(iter(given)).replace("_", "-")
            raise BadArgument(f"{wrong}: the manifest says it (use --speedup for a faster clock)")
        if not args.container:
            raise BadArgument("--container: which container's probe to read")
        if args.port is not None and not 1 <= args.port <= 65535:
            raise BadArgument(f"--port: must be between 1 and 65535, not {args.port}")
        probe = from_manifest(args.manifest, args.container, args.probe, args.host, args.port)
    return checked(probe).faster(args.speedup)


def stop(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    try:
        probe = parse(argv)
    except BadArgument as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    clock = f" (clock {probe.speedup:g}x faster)" if probe.speedup != 1 else ""
    print(
        f"{probe.kind} probe: GET {probe.url} every {probe.period:g}s{clock}, timeout "
        f"{probe.timeout:g}s, failureThreshold {probe.failure_threshold}, "
        f"successThreshold {probe.success_threshold}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, stop)  # stop like Ctrl-C: exit code 0, no traceback
    try:
        return run(probe)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
