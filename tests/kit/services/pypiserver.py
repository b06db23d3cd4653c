"""A private Python package index: pypiserver on a free loopback port.

Uploads (`twine upload`) need a user of its htpasswd file; downloads and the
`/simple/` listing are open, as on a company index behind its network. It never
redirects to PyPI for a name it does not hold (`--disable-fallback`): an install
that needs something the index lacks fails instead of reaching the internet.

Besides its own directory (where uploads land) it can serve read-only mirror
directories: `mirror_wheels(...)` fills one with the wheels a package needs,
downloaded from PyPI once per machine, so installs need nothing but this index.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from kit import sysdeps
from kit.process import LOOPBACK, Process, StartupError, free_port, http_ok

with warnings.catch_warnings():  # passlib (what pypiserver checks passwords with) imports
    warnings.simplefilter("ignore", DeprecationWarning)  # `crypt`, gone in Python 3.13
    from passlib.apache import HtpasswdFile

BIN = Path(sys.executable).parent  # pypi-server, twine and pip come with the test group
MIRRORS = Path(tempfile.gettempdir()) / "distributed-python-wheels"


class PackageIndex:
    """pypiserver serving `workdir/packages` (uploads land there) and `mirrors` (read only).

    `.url` is where twine uploads (TWINE_REPOSITORY_URL), `.simple_url` what pip
    installs from (`--index-url`); `.user` and `.password` may upload.
    """

    def __init__(self, workdir: Path, mirrors: Sequence[Path] = ()) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}/"
        self.simple_url = f"{self.url}simple/"
        self.packages = workdir / "packages"
        self.packages.mkdir(parents=True, exist_ok=True)
        self.user = "ci"
        self.password = secrets.token_urlsafe(16)
        htpasswd = HtpasswdFile(str(workdir / "htpasswd"), new=True)
        htpasswd.set_password(self.user, self.password)  # stored as a salted hash
        htpasswd.save()
        argv = [
            BIN / "pypi-server", "run",
            "--host", LOOPBACK,
            "--port", str(self.port),
            "--passwords", workdir / "htpasswd",
            "--authenticate", "update",  # uploads need a user; downloads do not
            "--disable-fallback",  # a name it lacks is a 404, never a redirect to PyPI
            "--verbose",  # a log line per request: which names were asked for, who uploaded
            self.packages, *mirrors,  # uploads go to the first directory
        ]  # fmt: skip
        self.process = Process("pypiserver", argv, workdir / "pypiserver.log", cwd=workdir)

    def start(self) -> None:
        self.process.start(http_ok(f"{self.url}health"))

    def stop(self) -> None:
        self.process.stop()

    def uploaded(self) -> list[str]:
        """The files uploads have stored, by name."""
        return sorted(path.name for path in self.packages.iterdir())

    def twine_env(self, password: str | None = None) -> dict[str, str]:
        """What twine reads to upload here (`password` overrides the right one)."""
        return {
            "TWINE_REPOSITORY_URL": self.url,
            "TWINE_USERNAME": self.user,
            "TWINE_PASSWORD": self.password if password is None else password,
        }


def pip_isolated_env(index_url: str | None = None) -> dict[str, str]:
    """Environment for pip (and the pip `python -m build` runs) without this machine's pip
    configuration: no config files, find-links, extra indexes or cache. With `index_url`,
    that index replaces PyPI as the default; without it, pip's command line must name one."""
    env = {
        "PIP_CONFIG_FILE": "/dev/null",  # pip's documented way to read no config file
        "PIP_FIND_LINKS": "",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_NO_CACHE_DIR": "1",  # what the index serves, not an earlier download
    }
    if index_url:
        env["PIP_INDEX_URL"] = index_url
    return env


def mirror_wheels(requirements: Sequence[str]) -> Path:
    """A directory of wheels for `requirements` (pip requirement strings or `-r FILE`
    pairs) and everything they need, downloaded from PyPI once per machine."""
    digest = hashlib.sha256(sys.version.encode())
    for requirement in requirements:  # a requirements file counts by its content
        path = Path(requirement)
        digest.update(path.read_bytes() if path.is_file() else requirement.encode())
    key = digest.hexdigest()[:16]
    target = MIRRORS / key
    with sysdeps.machine_lock("wheels"):
        if not (target / ".done").exists():
            shutil.rmtree(target, ignore_errors=True)
            result = subprocess.run(
                [BIN / "python", "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
                 "--dest", target, *requirements],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise StartupError(f"downloading {requirements} failed:\n{result.stderr}")
            (target / ".done").touch()
    return target
