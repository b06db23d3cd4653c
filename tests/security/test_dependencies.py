"""Malicious packages and upgrading dependencies (docs/security/dependencies.md).

Nothing here reaches beyond the package registries: packages are installed from
local folders of files and a pypiserver on loopback, the malicious package is
built here (its payload only writes a marker file), and the vulnerability
database the audit wrapper succeeds against is a stand-in on loopback. The real
databases are out of reach, and the tests show that this fails loudly.

Scratch venvs are made without pip (fast); their `pip` is a two-line script that
runs the test environment's pip for them (`pip --python VENV/bin/python`).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from kit.process import LOOPBACK, ROOT, free_port
from kit.services.pypiserver import PackageIndex, mirror_wheels
from kit.snippets import run_script
from packaging.utils import canonicalize_name

SNIPPETS = ROOT / "snippets/security"
AUDIT = ROOT / "examples/security/audit.py"
UV = ROOT / ".venv-nox/bin/uv"
BIN = Path(sys.executable).parent


def scratch_venv(path: Path) -> Path:
    """A fresh venv whose `pip` is the test environment's pip, installing into it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", path], check=True)
    pip = path / "bin/pip"
    pip.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pip --python "{path}/bin/python" "$@"\n')
    pip.chmod(0o755)
    return path


def pip_env(venv: Path, **extra: str) -> dict[str, str]:
    """What a reader's shell has: the venv first on PATH. No pip configuration of this
    machine (its own indexes), no cache, no byte-compiling (not what a test checks)."""
    return {
        **os.environ,
        "PATH": f"{venv}/bin{os.pathsep}{UV.parent}{os.pathsep}{os.environ['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_CACHE_DIR": "1",
        "PIP_NO_COMPILE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **extra,
    }


def site_packages(venv: Path) -> set[str]:
    (lib,) = (venv / "lib").glob("python3*/site-packages")
    return {p.name for p in lib.iterdir()}


# --- install-time code in an sdist ---------------------------------------------


def make_sdist(folder: Path) -> Path:
    """The look-alike's sdist, as its author would upload it: setup.py and PKG-INFO."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pydantic_setings-2.99.0.tar.gz"
    files = {
        "setup.py": (SNIPPETS / "deps_sdist_setup.py").read_bytes(),
        "PKG-INFO": b"Metadata-Version: 2.1\nName: pydantic-setings\nVersion: 2.99.0\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"pydantic_setings-2.99.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_an_sdist_runs_its_code_at_install_time_and_wheels_only_refuses_it(
    tmp_path: Path,
) -> None:
    index = tmp_path / "index"
    make_sdist(index)
    setuptools = mirror_wheels(["setuptools"])  # what pip builds the sdist with
    venv = scratch_venv(tmp_path / "venv")
    marker = tmp_path / "marker"
    env = pip_env(
        venv,
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=f"{index} {setuptools}",
        INSTALL_MARKER=str(marker),
    )
    # Wheels only: refused, and the payload never ran.
    refused = run_script(SNIPPETS / "deps_wheels_only.sh", env, cwd=tmp_path, returncode=1)
    assert "No matching distribution found for pydantic-setings" in refused.stderr
    assert not marker.exists()
    # Source allowed: pip runs setup.py, and the payload runs as whoever installs.
    run_script(SNIPPETS / "deps_sdist_install.sh", env, cwd=tmp_path)
    assert marker.read_text() == f"ran at install time as uid {os.getuid()}\n"
    assert "pydantic_setings-2.99.0.dist-info" in site_packages(venv)


# --- installing from the lock with hashes ---------------------------------------


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The services group of uv.lock with hashes, exported by the page's own command."""
    folder = tmp_path_factory.mktemp("lock")
    script = (SNIPPETS / "deps_locked_install.sh").read_text()
    export = next(line for line in script.splitlines() if line.startswith("uv export"))
    env = {**os.environ, "UV_PROJECT": str(ROOT), "UV_OFFLINE": "1", "NO_COLOR": "1"}
    subprocess.run([UV, *export.split()[1:]], cwd=folder, env=env, check=True, timeout=60)
    path = folder / "requirements.lock.txt"
    assert "--hash=sha256:" in path.read_text()
    return path


@pytest.fixture(scope="module")
def wheelhouse(lock: Path) -> Path:
    """The files the lock names, fetched from the package index once per machine (the
    way a company mirror serves them); installs below read only this folder."""
    return mirror_wheels(["-r", str(lock)])


@pytest.fixture(scope="module")
def excerpt(lock: Path) -> Path:
    """The lock's first five packages, with their hashes: PyPI's JSON API answers each
    query of pip-audit's default database in about 0.1 s, 25 of them add up."""
    entries: list[list[str]] = []
    for line in lock.read_text().splitlines():
        if line[:1].isalnum():
            entries.append([])
        if entries and not line.lstrip().startswith("#"):
            entries[-1].append(line)
    path = lock.with_name("excerpt.lock.txt")
    path.write_text("".join(f"{line}\n" for entry in entries[:5] for line in entry))
    return path


def pinned(lock: Path) -> set[str]:
    return {
        canonicalize_name(line.split("==")[0])
        for line in lock.read_text().splitlines()
        if line[:1].isalnum() and "==" in line
    }


def test_the_lock_installs_with_every_hash_checked(tmp_path: Path, lock, wheelhouse) -> None:
    shutil.copy(lock, tmp_path)
    venv = scratch_venv(tmp_path / "venv")
    env = pip_env(venv, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse), UV_OFFLINE="1")
    env["UV_PROJECT"] = str(ROOT)  # the script's `uv export` reads this repository's lock
    run_script(SNIPPETS / "deps_locked_install.sh", env, cwd=tmp_path, timeout=120)
    listing = subprocess.run(
        [venv / "bin/pip", "list", "--format", "json"], env=env, capture_output=True, check=True
    )
    installed = {canonicalize_name(p["name"]) for p in json.loads(listing.stdout)}
    assert installed == pinned(lock)  # exactly the lock, nothing more
    assert len(installed) >= 20


def test_a_file_that_does_not_match_its_hash_is_refused(tmp_path: Path, lock, wheelhouse) -> None:
    """The index (or a mirror, or a proxy) serves a different idna wheel than the one
    locked: same name, same version, other bytes."""
    tampered = tmp_path / "wheelhouse"
    tampered.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        (tampered / wheel.name).symlink_to(wheel)
    (idna,) = tampered.glob("idna-*.whl")
    data = idna.read_bytes()
    idna.unlink()
    idna.write_bytes(data + b"\0")  # one byte more: a valid zip still, another hash
    venv = scratch_venv(tmp_path / "venv")
    env = pip_env(venv, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tampered))
    command = ["pip", "install", "--require-hashes", "--only-binary", ":all:", "-r", str(lock)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE" in result.stderr
    version = idna.name.split("-")[1]
    # The error names the package, the file, the hashes expected and the one it got.
    assert f"idna=={version} from file://{idna}" in result.stderr
    assert not {p for p in site_packages(venv) if p.endswith(".dist-info")}  # nothing installed


def test_without_hashes_the_tampered_file_installs(tmp_path: Path, lock, wheelhouse) -> None:
    """The control: the same tampered idna with plain pins (`==`, no hashes) goes in."""
    tampered = tmp_path / "wheelhouse"
    tampered.mkdir()
    (idna,) = wheelhouse.glob("idna-*.whl")
    (tampered / idna.name).write_bytes(idna.read_bytes() + b"\0")
    pin = next(line.split()[0] for line in lock.read_text().splitlines() if line.startswith("idna"))
    venv = scratch_venv(tmp_path / "venv")
    env = pip_env(venv, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tampered))
    subprocess.run(["pip", "install", "--no-deps", pin], env=env, capture_output=True, check=True)
    assert f"{idna.name.split('-')[0]}-{pin.split('==')[1]}.dist-info" in site_packages(venv)


# --- upgrades: Dependabot and outdated packages ----------------------------------


def test_the_dependabot_config_keeps_its_schema(tmp_path: Path) -> None:
    config = SNIPPETS / "deps_dependabot.yml"
    command = [BIN / "check-jsonschema", "--builtin-schema", "vendor.dependabot"]
    good = subprocess.run([*command, config], capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    typo = tmp_path / "dependabot.yml"  # the control: a misspelt key fails it
    typo.write_text(config.read_text().replace("schedule:", "shedule:", 1))
    bad = subprocess.run([*command, typo], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "'shedule' was unexpected" in bad.stdout


def test_the_dependabot_config_covers_this_repositorys_manifests() -> None:
    updates = yaml.safe_load((SNIPPETS / "deps_dependabot.yml").read_text())["updates"]
    ecosystems = {u["package-ecosystem"]: ROOT / u["directory"].lstrip("/") for u in updates}
    assert set(ecosystems) == {"uv", "npm", "github-actions"}
    assert (ecosystems["uv"] / "uv.lock").is_file()
    assert (ecosystems["npm"] / "package-lock.json").is_file()
    assert list((ecosystems["github-actions"] / ".github/workflows").glob("*.yml"))


def make_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel: one module and its dist-info."""
    module = name.replace("-", "_")
    path = folder / f"{module}-{version}-py3-none-any.whl"
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}.py": f'__version__ = "{version}"\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for file, text in files.items():
            archive.writestr(file, text)
    return path


def test_pip_lists_what_the_local_index_has_newer(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    make_wheel(old, "recipe-units", "1.0.0")
    make_wheel(new, "recipe-units", "1.1.0")
    venv = scratch_venv(tmp_path / "venv")
    install = ["pip", "install", "--no-index", "--find-links", old, "recipe-units"]
    subprocess.run(install, env=pip_env(venv), capture_output=True, check=True)

    index = PackageIndex(tmp_path / "index", mirrors=[old])
    index.start()
    try:
        env = pip_env(venv, PIP_INDEX_URL=index.simple_url)
        # The control: nothing newer on the index, nothing listed.
        same = run_script(SNIPPETS / "deps_outdated.sh", env, cwd=tmp_path)
        assert "recipe-units" not in same.stdout
        shutil.copy(next(new.iterdir()), index.packages)  # 1.1.0 is released
        newer = run_script(SNIPPETS / "deps_outdated.sh", env, cwd=tmp_path)
    finally:
        index.stop()
    rows = [line.split() for line in newer.stdout.splitlines()]
    assert ["recipe-units", "1.0.0", "1.1.0", "wheel"] in rows


# --- audits ------------------------------------------------------------------------


# --- audits ------------------------------------------------------------------------
# Each audit below is a pip-audit run of a second or two, mostly interpreter start-up
# and waiting on the network: the module starts them all at once (`audits`), and each
# test reads the outcome of its own run.

FINDING = {
    "id": "PYSEC-0000-TEST",
    "summary": "a stand-in finding",
    "affected": [
        {
            "package": {"name": "idna", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}],
        }
    ],
}


def stand_in_osv(vulnerable: dict[str, dict]) -> ThreadingHTTPServer:
    """The OSV query API's shape on loopback: `vulnerable` maps a package to a finding."""

    class StandInOsv(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name = query["package"]["name"]
            found = {"vulns": [vulnerable[name]]} if name in vulnerable else {}
            body = json.dumps(found).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((LOOPBACK, 0), StandInOsv)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def osv_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/v1/query"


@pytest.fixture(scope="module")
def audits(
    lock: Path, excerpt: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, subprocess.CompletedProcess[str]]]:
    clean, vulnerable = stand_in_osv({}), stand_in_osv({"idna": FINDING})
    silent = socket.create_server((LOOPBACK, 0))  # accepts connections, never answers
    folder = tmp_path_factory.mktemp("audit")
    shutil.copy(excerpt, folder / "requirements.lock.txt")
    (folder / "empty.txt").touch()
    wrapper = [sys.executable, str(AUDIT)]
    runs = {  # name: (command, environment, working directory)
        "pip-audit": ([BIN / "pip-audit", "--require-hashes", "--disable-pip", "-r", excerpt],
                      {}, ROOT),
        "pip-audit --strict": (["bash", SNIPPETS / "deps_pip_audit.sh"],
                               {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}, folder),
        "unreachable": ([*wrapper, lock], {"OSV_URL": osv_url(free_port())}, ROOT),
        "skipped": ([*wrapper, excerpt], {"AUDIT_SERVICE": "pypi"}, ROOT),
        "never answers": ([*wrapper, lock],
                          {"OSV_URL": osv_url(silent.getsockname()[1]), "AUDIT_TIMEOUT": "1"},
                          ROOT),
        "clean": ([*wrapper, lock], {"OSV_URL": osv_url(clean.server_port)}, ROOT),
        "vulnerable": ([*wrapper, lock], {"OSV_URL": osv_url(vulnerable.server_port)}, ROOT),
        "bad setting": ([*wrapper, lock], {"AUDIT_SERVICE": "nvd"}, ROOT),
        "empty file": ([*wrapper, folder / "empty.txt"], {}, ROOT),
        "no file": ([*wrapper, folder / "nowhere.txt"], {}, ROOT),
    }  # fmt: skip
    started: dict[str, subprocess.Popen[str]] = {}
    results = {}
    try:
        for name, (command, env, cwd) in runs.items():
            started[name] = subprocess.Popen(
                command,
                env={**os.environ, **env},
                cwd=cwd,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        for name, process in started.items():
            stdout, stderr = process.communicate(timeout=60)
            results[name] = subprocess.CompletedProcess(
                process.args, process.returncode, stdout, stderr
            )
        yield results
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        for server in (clean, vulnerable):
            server.shutdown()
            server.server_close()
        silent.close()


def test_pip_audit_passes_having_checked_nothing(audits, excerpt: Path) -> None:
    """What pip-audit does here: PyPI's JSON API (its default database) is not reachable
    from these machines, every package is skipped, and it still says all is well."""
    result = audits["pip-audit"]
    assert result.returncode == 0
    assert "No known vulnerabilities found" in result.stderr
    skipped = [line for line in result.stdout.splitlines() if "could not be audited" in line]
    assert len(skipped) == len(pinned(excerpt)) == 5


def test_pip_audit_strict_fails_having_checked_nothing(audits) -> None:
    result = audits["pip-audit --strict"]
    assert result.returncode == 1
    assert "could not be audited" in result.stderr


def test_the_wrapper_fails_when_the_database_is_unreachable(audits) -> None:
    result = audits["unreachable"]  # nothing listens on that loopback port
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith("audit failed: could not audit, pip-audit exited 1: ")
    assert "Connection refused" in line


def test_the_wrapper_fails_when_packages_were_skipped(audits) -> None:
    result = audits["skipped"]  # the database pip-audit alone says "ok" with
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("audit failed: 5 of 5 packages could not be audited")


def test_the_wrapper_fails_when_the_database_never_answers(audits) -> None:
    result = audits["never answers"]
    assert result.returncode == 1
    assert result.stderr == "audit failed: no answer within 1 s\n"


def test_the_wrapper_passes_a_complete_clean_audit(audits, lock: Path) -> None:
    """The control: the same wrapper, a database that answers for every package."""
    result = audits["clean"]
    assert result.returncode == 0, result.stderr
    count = len(pinned(lock))
    assert result.stdout == f"audit passed: {count} packages checked, no known vulnerabilities\n"


def test_the_wrapper_fails_on_a_known_vulnerability(audits, lock: Path) -> None:
    result = audits["vulnerable"]
    assert result.returncode == 1
    version = next(p.split("==")[1] for p in lock.read_text().split() if p.startswith("idna=="))
    assert result.stderr.splitlines() == [
        f"vulnerable: idna {version} PYSEC-0000-TEST (fixed in 99.0)",
        "audit failed: 1 known vulnerabilities",
    ]


def test_a_bad_setting_exits_2_with_one_line(audits) -> None:
    result = audits["bad setting"]
    assert result.returncode == 2
    assert result.stderr == "configuration error: AUDIT_SERVICE: Input should be 'osv' or 'pypi'\n"


def test_an_empty_file_or_no_file_is_no_audit(audits) -> None:
    empty = audits["empty file"]  # pip-audit is happy with nothing to check; the wrapper is not
    assert empty.returncode == 1
    assert empty.stderr == "audit failed: no packages in the file, nothing was audited\n"
    missing = audits["no file"]
    assert missing.returncode == 2
    assert missing.stderr.startswith("usage: audit.py REQUIREMENTS_FILE")
