"""System programs that tests and benchmarks start, and how they get installed.

A missing program is never a silent skip. Run as root on Debian, the first
fixture that needs it installs it with apt; anywhere else it fails once with
the exact command to run.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

# program -> Debian package that provides it
DEBIAN_PACKAGES = {
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "initdb": "postgresql",
    "pg_ctl": "postgresql",
    "postgres": "postgresql",
    "pg_isready": "postgresql",
    "node": "nodejs",
    "npm": "npm",
    "taskset": "util-linux",
    "haproxy": "haproxy",
    "memcached": "memcached",
    "rsyslogd": "rsyslog",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "carbon-cache": "graphite-carbon",
    "graphite-manage": "graphite-web",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
    "prometheus-blackbox-exporter": "prometheus-blackbox-exporter",
    "docker-compose": "docker-compose",
    "curl": "curl",
    "openssl": "openssl",
    "podman": "podman",
    "runc": "runc",
    "debootstrap": "debootstrap",
    "dnsname": "golang-github-containernetworking-plugin-dnsname",
    "docker-registry": "docker-registry",
    "htpasswd": "apache2-utils",
    "systemd-analyze": "systemd",
    "chromium": "chromium",  # headless, for the browser test of the built site (tests/site/)
}

# Debian keeps the PostgreSQL server programs off PATH.
EXTRA_DIRS = ["/usr/lib/postgresql/*/bin", "/usr/lib/cni"]  # CNI plugins are off PATH too

_lock = threading.Lock()
_apt_updated = False


class MissingProgram(RuntimeError):
    pass


def find(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for pattern in EXTRA_DIRS:
        for directory in sorted(glob.glob(pattern), reverse=True):  # newest version first
            candidate = os.path.join(directory, program)
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def install_command(packages: list[str]) -> str:
    return "sudo apt-get install -y " + " ".join(packages)


def can_apt_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(packages: list[str]) -> None:
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run = {"env": env, "stdin": subprocess.DEVNULL, "capture_output": True, "text": True}
    if "postgresql" in packages:
        # Tests start their own throwaway clusters; without this, installing the
        # package also creates and starts a system-wide one on port 5432.
        conf = "/etc/postgresql-common/createcluster.conf"
        if not os.path.exists(conf):
            os.makedirs(os.path.dirname(conf), exist_ok=True)
            with open(conf, "w") as file:
                file.write("create_main_cluster = false\n")
    # Wait for another apt run (another test process, unattended upgrades) instead of failing.
    wait = ["-o", "DPkg::Lock::Timeout=300"]
    if not _apt_updated:
        subprocess.run(["apt-get", *wait, "update", "-qq"], check=True, **run)
        _apt_updated = True
    # --force-confold keeps a config file we wrote (createcluster.conf) without asking.
    install = "apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef"
    install += " -o Dpkg::Options::=--force-confold"
    result = subprocess.run([*install.split(), *wait, *packages], **run)
    if result.returncode != 0:
        raise MissingProgram(
            f"apt-get install {' '.join(packages)} failed:\n{result.stdout}\n{result.stderr}"
        )


def require_localhost() -> None:
    """TLS tests reach servers by name: "localhost" must resolve to loopback.

    A minimal Debian root file system can lack /etc/hosts; netbase provides it.
    """

    def resolves() -> bool:
        try:
            return socket.gethostbyname("localhost") == "127.0.0.1"
        except OSError:
            return False

    with _lock, machine_lock("sysdeps"):
        if resolves():
            return
        if can_apt_install():
            print("localhost does not resolve: installing netbase for /etc/hosts", flush=True)
            apt_install(["netbase"])
        if not resolves():
            raise MissingProgram(
                "the name localhost does not resolve to 127.0.0.1: add the line "
                "'127.0.0.1 localhost' to /etc/hosts (Debian: sudo apt-get install netbase)"
            )


def require(*programs: str) -> dict[str, str]:
    """Return the path of each program, installing missing ones when possible."""
    # Parallel test workers share the machine: one checks and installs at a time, so
    # none sees a program unpacked by another's apt run before it is configured.
    with _lock, machine_lock("sysdeps"):
        missing = [p for p in programs if find(p) is None]
        if missing:
            packages = sorted({DEBIAN_PACKAGES.get(p, p) for p in missing})
            if not can_apt_install():
                raise MissingProgram(
                    f"{', '.join(missing)} not found. Install with: {install_command(packages)}"
                )
            print(f"installing {' '.join(packages)} with apt-get", flush=True)
            apt_install(packages)
            still_missing = [p for p in missing if find(p) is None]
            if still_missing:
                raise MissingProgram(f"{', '.join(still_missing)} still missing after apt-get")
        return {p: find(p) for p in programs}  # type: ignore[misc]


def require_everything() -> None:
    """Every program the suite starts, installed in one apt run when missing.

    Called once at the start of a test run (before workers start), so a fresh machine
    pays for one `apt-get install` and no test's time includes an install.
    """
    require(*DEBIAN_PACKAGES)
    require_localhost()
    require_npm_tools()


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold a lock shared by every test process on this machine (pytest-xdist workers
    included) while doing something two of them must not do at once."""
    path = Path(tempfile.gettempdir()) / f"distributed-python-{name}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


ROOT = Path(__file__).resolve().parents[2]
NPM_TOOLS = {
    "autocannon": ROOT / "node_modules" / ".bin" / "autocannon",
    "statsd": ROOT / "node_modules" / "statsd" / "stats.js",
    # Draws the site's diagrams to SVG ahead of the build (tools/diagrams.py).
    "mermaid": ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js",
    # A Node.js gRPC client and server built from our recipe.proto (protocols/grpc).
    "@grpc/grpc-js": ROOT / "node_modules" / "@grpc" / "grpc-js" / "package.json",
    "@grpc/proto-loader": ROOT / "node_modules" / "@grpc" / "proto-loader" / "package.json",
}
NPM_CI = ["npm", "ci", "--omit=optional", "--no-audit", "--no-fund"]


def require_npm_tools() -> dict[str, Path]:
    """autocannon, statsd and mermaid, as package-lock.json pins them (`npm ci` at the root).

    The one npm installer: once per machine, under a machine-wide lock, so parallel
    test workers never run two `npm ci` into the same node_modules.
    """
    require("node", "npm")
    with machine_lock("npm-ci"):
        if not all(path.exists() for path in NPM_TOOLS.values()):
            print(f"installing npm tools: {' '.join(NPM_CI)}", flush=True)
            result = subprocess.run(NPM_CI, cwd=ROOT, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise MissingProgram(f"{' '.join(NPM_CI)} failed:\n{result.stdout}{result.stderr}")
    return NPM_TOOLS
