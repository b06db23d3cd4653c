"""A rolling update, done by hand the way a Deployment does it, with HAProxy as the Service.

It replaces the instances that serve in one HAProxy backend with instances of a
new version, one at a time, with `maxSurge: 1` and `maxUnavailable: 0`: start a
new instance, wait until it answers `GET /health` (the readiness probe), put it
into a free server slot and wait until HAProxy's own health check has it UP; only
then take an old instance out: drain it (no new requests), wait until no request
is in flight there, put it in maintenance, SIGTERM it and wait for it to exit.
Its slot is the free one for the next step. It prints a line per step, with how
many servers are serving, which never falls below the count it started with.

The backend's servers in service are the old instances; each must be a process
of yours listening on its server's port on this machine (found in /proc: Linux
only). The new version's command comes after `--`; each instance gets `HOST=127.0.0.1`
and `PORT` set to the next of `--ports`, one port per old instance.

After the rollout it stays in the foreground, holding the new instances as a
kubelet holds its pods, until Ctrl-C or SIGTERM: then it drains each, stops it
with SIGTERM and exits with code 0 if every one exited with 0.

Run it (from the repository root, with HAProxy started with
snippets/orchestration/rolling_haproxy.cfg and three recipe-apis behind it;
the new version is chapter 6's packaged recipe-api, run from its source):

    PYTHONPATH=examples/deployments/recipe_api_package/src python examples/orchestration/rolling_update.py --socket /tmp/recipes-haproxy.sock --backend recipe_api --ports 4101,4102,4103 -- python -c "from recipe_api.app import main; main()"

Options:

- `--socket`: HAProxy's runtime API socket (`stats socket ... level admin`).
- `--backend`: the backend whose servers are replaced.
- `--ports`: the new instances' ports, comma-separated, one per old instance.
- `--ready-timeout`: seconds a new instance has to become ready (default 30,
  the manifest's startup probe: 15 x 2 s); if it does not, the rollout stops
  and the old instances left keep serving.
- `--grace`: seconds from the start of a drain to SIGKILL (default 25, the
  manifest's `terminationGracePeriodSeconds`).

A bad argument (a missing socket, an unknown backend, a port count that does not
match the instances, no free slot, an old server no process of yours listens
on) stops it before it changes anything, with exit code 2 and one line.
"""  # noqa: E501 (the run line, one line so that a reader copies it whole)

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx

POLL = 0.05  # seconds between looks at a state we wait for


class BadArgument(Exception):
    """An argument that does not fit what runs; the message says why."""


class RolloutStopped(Exception):
    """A step that could not be done; the old instances left keep serving."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM."""


@dataclass(frozen=True)
class Server:
    """One server line of `show stat`: a slot of the backend."""

    name: str
    status: str  # UP, UP 1/2, DOWN, DRAIN, MAINT...
    in_flight: int  # scur: requests on it now
    port: int

    @property
    def serving(self) -> bool:
        return self.status.startswith("UP")  # in rotation, DRAIN and MAINT are not

    @property
    def free(self) -> bool:
        return self.status.startswith("MAINT")


# --8<-- [start:runtime]
class Runtime:
    """HAProxy's runtime API: one command per connection on its Unix socket."""

    def __init__(self, path: str, backend: str) -> None:
        self.path = path
        self.backend = backend

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(self.path)
            sock.sendall(line.encode() + b"\n")
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
        return answer.decode().strip()

    def servers(self) -> list[Server]:
        text = self.command("show stat").removeprefix("# ")
        return [
            Server(row["svname"], row["status"], int(row["scur"]), int(row["addr"].split(":")[1]))
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == self.backend and row["svname"] not in ("FRONTEND", "BACKEND")
        ]

    def server(self, name: str) -> Server:
        return next(s for s in self.servers() if s.name == name)

    def serving(self) -> int:
        return sum(s.serving for s in self.servers())

    def set(self, name: str, setting: str) -> None:
        """`set server BACKEND/NAME SETTING`: state ready|drain|maint, addr A port P."""
        answer = self.command(f"set server {self.backend}/{name} {setting}")
        if answer and "changed" not in answer:  # state changes answer nothing
            raise RolloutStopped(f"HAProxy refused 'set server {name} {setting}': {answer}")


# --8<-- [end:runtime]


def until(check: Callable[[], object], deadline: float) -> bool:
    """Poll `check` until it is true (True) or time.monotonic() passes `deadline` (False)."""
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)  # on purpose: a sync CLI, no event loop
    return True


def wait_for(check: Callable[[], object], seconds: float, what: str) -> None:
    if not until(check, time.monotonic() + seconds):
        raise RolloutStopped(f"no {what} within {seconds:g}s")


def listener_pid(port: int) -> int | None:
    """The process of yours that listens on TCP `port`, from /proc (Linux)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                sockets.add(f"socket:[{fields[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in sockets for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:  # not yours, or gone meanwhile
            continue
    return None


def exited(pid: int, seconds: float) -> bool:
    """Wait up to `seconds` for process `pid` (not necessarily a child) to exit."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], seconds)[0])
    finally:
        os.close(fd)


def answers_health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


class Rollout:
    def __init__(
        self, runtime: Runtime, command: list[str], ports: list[int], args: argparse.Namespace
    ) -> None:
        self.runtime = runtime
        self.command = command
        self.ports = ports
        self.ready_timeout: float = args.ready_timeout
        self.grace: float = args.grace
        self.new: dict[str, subprocess.Popen[bytes]] = {}  # slot -> the instance in it
        self.complete = False

    def say(self, line: str) -> None:
        print(line, flush=True)

    def plan(self) -> tuple[list[tuple[Server, int]], int]:
        """The old instances with their pids, and how many serve now; or BadArgument."""
        try:
            servers = self.runtime.servers()
        except OSError as error:
            raise BadArgument(f"--socket: cannot use {self.runtime.path}: {error}") from None
        if not servers:
            raise BadArgument(f"--backend: HAProxy has no backend {self.runtime.backend!r}")
        old = [s for s in servers if not s.free]
        if not any(s.free for s in servers):
            raise BadArgument("--backend: no free slot (a server in maintenance) for maxSurge 1")
        if len(self.ports) != len(old):
            raise BadArgument(f"--ports: {len(old)} instances to replace, {len(self.ports)} ports")
        plan = []
        for server in old:
            pid = listener_pid(server.port)
            if pid is None:
                raise BadArgument(f"--backend: no process of yours listens on {server.port}")
            plan.append((server, pid))
        for port in self.ports:
            if listener_pid(port) is not None:
                raise BadArgument(f"--ports: {port} is in use")
        return plan, sum(s.serving for s in servers)

    # --8<-- [start:step]
    def replace(self, step: str, old: Server, old_pid: int, port: int) -> None:
        # maxSurge 1: one new instance above the count, and ready before it gets traffic.
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        # A process group of its own: Ctrl-C is for this program, which drains it first.
        instance = subprocess.Popen(self.command, env=env, process_group=0)
        self.say(f"{step} started pid {instance.pid} on port {port}")
        ready = until(
            lambda: instance.poll() is not None or answers_health(port),
            time.monotonic() + self.ready_timeout,
        )
        if not ready or instance.poll() is not None:
            instance.terminate()
            code = instance.wait()
            raise RolloutStopped(f"pid {instance.pid} never ready (exit code {code})")
        self.say(f"{step} pid {instance.pid} ready: /health answered 200")
        slot = next(s.name for s in self.runtime.servers() if s.free)
        self.runtime.set(slot, f"addr 127.0.0.1 port {port}")
        self.runtime.set(slot, "state ready")
        self.new[slot] = instance
        up = lambda: self.runtime.server(slot).status == "UP"  # noqa: E731
        wait_for(up, self.ready_timeout, f"HAProxy check passing on {slot}")
        self.say(f"{step} {slot} UP on port {port}: {self.runtime.serving()} serving")

        # maxUnavailable 0: only now does an old one go, and it goes quietly.
        if self.retire(step, old.name, old_pid):
            self.say(f"{step} pid {old_pid} exited")

    def retire(self, step: str, slot: str, pid: int) -> bool:
        """Take `slot` out of service, then stop `pid`; False if it took SIGKILL."""
        deadline = time.monotonic() + self.grace  # the grace period starts with the drain
        self.runtime.set(slot, "state drain")  # no new requests; those in flight go on
        self.say(f"{step} {slot} draining: {self.runtime.serving()} serving")
        idle = until(lambda: self.runtime.server(slot).in_flight == 0, deadline)
        self.runtime.set(slot, "state maint")  # out of the backend, health checks stopped
        left = "idle" if idle else "still busy at the end of the grace period"
        self.say(f"{step} {slot} {left}, in maintenance; SIGTERM to pid {pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if exited(pid, max(deadline - time.monotonic(), 0)):
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self.say(f"{step} pid {pid} still running after the {self.grace:g}s grace: SIGKILL")
        return False

    # --8<-- [end:step]

    def run(self) -> None:
        plan, desired = self.plan()
        names = ", ".join(f"{s.name} port {s.port} pid {pid}" for s, pid in plan)
        self.say(f"{desired} serving in {self.runtime.backend}: {names}")
        for number, ((old, pid), port) in enumerate(zip(plan, self.ports, strict=True), 1):
            self.replace(f"[{number}/{len(plan)}]", old, pid, port)
        self.say(f"rollout complete: {self.runtime.serving()} serving, all new; Ctrl-C stops them")
        self.complete = True

    def stop_new(self) -> bool:
        """Drain and stop every new instance; True if each exited with code 0."""
        clean = True
        for slot, instance in self.new.items():
            if instance.poll() is None:
                try:
                    self.retire("[stop]", slot, instance.pid)
                except (RolloutStopped, OSError) as error:  # HAProxy gone: stop it anyway
                    self.say(f"[stop] {slot}: {error}; SIGTERM to pid {instance.pid}")
                    instance.terminate()
            try:
                code = instance.wait(self.grace)
            except subprocess.TimeoutExpired:
                instance.kill()
                code = instance.wait()
            self.say(f"[stop] pid {instance.pid} exited with {code}")
            clean = clean and code == 0
        return clean


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def port_list(text: str) -> list[int]:
    ports = [int(part) for part in text.split(",")]
    if not all(1 <= p <= 65535 for p in ports) or len(set(ports)) != len(ports):
        raise ValueError(text)
    return ports


port_list.__name__ = "comma-separated list of distinct ports"  # argparse's error names it
positive.__name__ = "number of seconds above 0"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit code 2, instead of argparse's usage block."""
        print(f"configuration error: {message}", file=sys.stderr)
        raise SystemExit(2)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(description="Replace a backend's instances one at a time.")
    parser.add_argument("--socket", required=True, help="HAProxy's runtime API socket")
    parser.add_argument("--backend", required=True, help="the backend to roll")
    parser.add_argument("--ports", required=True, type=port_list, help="the new instances' ports")
    parser.add_argument("--ready-timeout", type=positive, default=30.0)
    parser.add_argument("--grace", type=positive, default=25.0)
    parser.add_argument("command", nargs="+", help="the new version's command, after --")
    return parser.parse_args(argv)


def interrupt(signum: int, frame: object) -> NoReturn:
    raise Interrupted


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rollout = Rollout(Runtime(args.socket, args.backend), args.command, args.ports, args)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    interrupted = False
    try:
        rollout.run()
    except BadArgument as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except RolloutStopped as error:
        rollout.say(f"rollout stopped: {error}; the old instances left keep serving")
    except Interrupted:
        rollout.say("rollout interrupted")
        interrupted = True
    if rollout.new and not interrupted:
        try:
            while True:
                signal.pause()  # hold the new instances until Ctrl-C or SIGTERM
        except Interrupted:
            pass
    clean = rollout.stop_new()
    return 0 if clean and rollout.complete else 1


if __name__ == "__main__":
    sys.exit(main())
