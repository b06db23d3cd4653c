"""podman, as root, with a configuration and an image store of the tests' own.

There is no Docker engine on these machines and no outside image registry, so:

- podman reads `containers.conf` and `storage.conf` written here, pointed at with
  CONTAINERS_CONF and CONTAINERS_STORAGE_CONF, never a machine-wide edit. The
  sandbox refuses every setrlimit (`default_ulimits = []`), crun fails on its hybrid
  cgroups (`runtime = "runc"`, `cgroup_manager = "cgroupfs"`), there is no systemd
  (`events_logger = "file"`), and networks are CNI ones in a directory of ours,
  where the dnsname plugin lets containers find each other by name.
- The store lives in a directory kept between runs (its layer cache is what makes a
  second build take seconds), one per machine.
- The base image is made once per machine: debootstrap'd Debian 12 with python3 and
  venv, imported as `localhost/debian-python:bookworm`. The pages show
  `python:3.13-slim`; the tests build the very same files with `--build-arg BASE=`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import sysdeps
from kit.process import LOOPBACK, ROOT, Process, StartupError, free_port, port_open

BASE_IMAGE = "localhost/debian-python:bookworm"
HOME = Path(tempfile.gettempdir()) / "distributed-python-podman"
MIRROR = "http://deb.debian.org/debian"

CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "cni"
network_config_dir = "{home}/cni"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{home}/storage/root"
runroot = "{home}/storage/run"
"""


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (debootstrap fetches from it)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        text = source.read_text() if source.is_file() else ""
        found = re.search(r"(?:^deb|^URIs:)\s+(?:\[[^]]*\]\s+)?(https?://\S+/debian)\b", text, re.M)
        if found:
            return found.group(1)
    return MIRROR


class Podman:
    """Runs podman with the tests' configuration; `run` returns the finished command."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "CONTAINERS_CONF": str(home / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(home / "storage.conf"),
            "TMPDIR": str(home / "tmp"),
        }

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        input: bytes | None = None,
        cwd: Path = ROOT,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            cwd=cwd,
            env={**os.environ, **self.env},
            capture_output=True,
            text=input is None,
            input=input,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise StartupError(
                f"podman {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def inspect(self, kind: str, name: str) -> dict:
        return json.loads(self.run(kind, "inspect", name).stdout)[0]

    def build(
        self, argv: list[str], *, secrets: dict[str, Path] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """A page's `podman build ...` line, run from the repository root on the local base
        image (`--pull=never --build-arg BASE=...`), with the build secrets given."""
        assert argv[:2] == ["podman", "build"], argv
        extra = ["--pull=never", "--build-arg", f"BASE={BASE_IMAGE}"]
        for name, path in (secrets or {}).items():
            extra += ["--secret", f"id={name},src={path}"]
        return self.run("build", *extra, *argv[2:], timeout=timeout)

    def unique(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"


def setup(home: Path = HOME) -> Podman:
    """Configuration files, then the base image if this machine has none yet."""
    sysdeps.require("podman", "runc", "debootstrap", "dnsname")
    for folder in ("cni", "tmp", "storage"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    (home / "containers.conf").write_text(CONTAINERS_CONF.format(home=home))
    (home / "storage.conf").write_text(STORAGE_CONF.format(home=home))
    podman = Podman(home)
    with sysdeps.machine_lock("podman-base"):
        if podman.run("image", "exists", BASE_IMAGE, check=False).returncode != 0:
            make_base_image(podman, home / "rootfs")
    return podman


def unmount_below(rootfs: Path) -> None:
    """debootstrap mounts /proc and /sys inside the root it builds; one that was stopped
    midway leaves them mounted, and `rm -rf` would then reach into the machine's own."""
    mounts = Path("/proc/mounts").read_text().splitlines()
    inside = sorted(
        (line.split()[1] for line in mounts if line.split()[1].startswith(f"{rootfs}/")),
        reverse=True,  # the deepest first
    )
    for mountpoint in inside:
        subprocess.run(["umount", "--recursive", "--lazy", mountpoint], check=False)


def make_base_image(podman: Podman, rootfs: Path) -> None:
    """Debian 12 minbase with python3 and venv (about a minute), imported as BASE_IMAGE."""
    print(f"making {BASE_IMAGE} with debootstrap (once per machine)", flush=True)
    unmount_below(rootfs)
    subprocess.run(["rm", "-rf", str(rootfs)], check=True)
    result = subprocess.run(
        [
            "debootstrap", "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm", str(rootfs), debian_mirror(),
        ],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise StartupError(f"debootstrap failed:\n{result.stdout[-3000:]}{result.stderr}")
    # apt's lists and caches are no part of an image
    subprocess.run(
        ["rm", "-rf", str(rootfs / "var/lib/apt/lists"), str(rootfs / "var/cache/apt")], check=True
    )
    tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
    podman.run("import", "-", BASE_IMAGE, input=tar.stdout, timeout=300)
    subprocess.run(["rm", "-rf", str(rootfs)], check=True)


@pytest.fixture(scope="session")
def podman() -> Podman:
    """podman with the tests' configuration and the local base image."""
    return setup()


@pytest.fixture
def containers(podman: Podman) -> Iterator[list[str]]:
    """Names of containers a test starts: each is removed (with `-f`) at the end."""
    names: list[str] = []
    yield names
    for name in names:
        podman.run("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture
def network(podman: Podman) -> Iterator[str]:
    """A podman network of the test's own (containers on it find each other by name)."""
    name = podman.unique("net")
    podman.run("network", "create", name)
    yield name
    podman.run("network", "rm", "-f", name, check=False)


class Registry:
    """Debian's docker-registry with the page's config; ports and paths from the
    environment (REGISTRY_HTTP_ADDR...), which the registry reads over its file."""

    def __init__(self, workdir: Path, config: str) -> None:
        self.port = free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.workdir = workdir
        env = {
            "REGISTRY_HTTP_ADDR": self.address,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(workdir / "data"),
            "REGISTRY_HTTP_TLS_CERTIFICATE": str(workdir / "certs/server.pem"),
            "REGISTRY_HTTP_TLS_KEY": str(workdir / "certs/server.key"),
            "REGISTRY_AUTH_HTPASSWD_PATH": str(workdir / "htpasswd"),
        }
        program = sysdeps.require("docker-registry")["docker-registry"]
        self.process = Process(
            "docker-registry", [program, "serve", config], workdir / "registry.log", env=env
        )

    def start(self) -> None:
        self.process.start(lambda: port_open(self.port))

    def stop(self) -> None:
        code = self.process.stop()
        assert code in (0, -15), f"exit code {code}:\n{self.process.output()}"  # Go: by SIGTERM
