"""docs/deployments/vm.md: recipe-api under systemd on a VM, checked without systemd.

No systemd runs here (PID 1 is not systemd), but Debian's `systemd-analyze` works
offline. So:

- the unit is parsed and what the page says of it is checked: it runs production's
  current release as a user of its own, stops with SIGTERM and waits longer than
  Sanic's graceful shutdown, does not restart on a bad setting, keeps its sandbox;
- `systemd-analyze verify` passes on a copy whose paths point at a real release,
  made by the pipeline with deploy_vm.sh's own release command, and fails loudly on
  the committed file (no release at /srv here) and on broken copies;
- `systemd-analyze security` scores the sandbox as the page says;
- the release is started the way the unit starts it (its environment file, its
  command, its working directory, its stop signal), and the script's health check
  passes against it; the script's rollback command moves `current` back.

ssh, sudo and systemctl lines are the reader's: the script's own text is checked
against the unit (names, paths, port), never executed here.

The chapter's testing page (docs/deployments/testing.md) has its two checkable
statements checked at the end: the coverage gate it names, and the results it includes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from kit import sysdeps
from kit.process import LOOPBACK, ROOT, Process, free_port, http_ok
from kit.snippets import run_script
from sanic.config import DEFAULT_CONFIG

SNIPPETS = ROOT / "snippets/deployments"
UNIT = SNIPPETS / "recipe-api.service"
SCRIPT = SNIPPETS / "deploy_vm.sh"
PAGE = ROOT / "docs/deployments/vm.md"
PACKAGE = "examples/deployments/recipe_api_package"
# After SIGTERM, Sanic gives requests in flight this long before it closes them.
SANIC_SHUTDOWN = float(DEFAULT_CONFIG["GRACEFUL_SHUTDOWN_TIMEOUT"])
MAX_SPARE = 10  # seconds beyond Sanic's timeout: more only delays the stop of a stuck process
BAD_SETTING = 2  # the example contract's exit code for a bad setting
SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}
GIT = {
    "GIT_AUTHOR_NAME": "vm test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "vm test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
}  # fmt: skip


# --- reading the files as systemd and bash read them -------------------------------


def read_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of (key, value), in order; a key may repeat (SystemCallFilter=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, equals, value = line.partition("=")
        assert equals, f"not a setting: {line!r}"
        assert current is not None, f"a setting before any section: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


UNIT_TEXT = UNIT.read_text()
SERVICE = read_unit(UNIT_TEXT)["Service"]


def setting(key: str, settings: list[tuple[str, str]] = SERVICE) -> str:
    values = [value for name, value in settings if name == key]
    assert len(values) == 1, f"{key}= is set {len(values)} times"
    return values[0]


# Plain NAME=value lines: bash's `set -a; . release.env` and systemd's EnvironmentFile=
# read them the same (no quotes, no `export`, no `$`, no comment after a value).
PLAIN = re.compile(r"^[A-Z_][A-Z0-9_]*=[^\s\"'#$`\\;]*$")


def environment_file(path: Path) -> dict[str, str]:
    variables = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip()[0] in "#;":
            continue
        assert PLAIN.match(line), f"{path.name}: {line!r} is not a plain NAME=value line"
        name, _, value = line.partition("=")
        variables[name] = value
    return variables


SCRIPT_TEXT = SCRIPT.read_text()


def script_variable(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", SCRIPT_TEXT, re.M)
    assert match, f"no {name}= in {SCRIPT.name}"
    return match[1]


def script_step(step: str) -> list[str]:
    """The command lines of one step (`setup`, `release`, `rollback`) of the script."""
    body = SCRIPT_TEXT.split(f"\n{step})\n", 1)[1].split("\n    ;;\n", 1)[0]
    lines = [line.strip() for line in body.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def on_the_vm(line: str) -> str:
    """`ssh "$vm" sudo CMD` -> CMD: what runs on the VM."""
    return re.sub(r'^ssh "\$vm" (sudo )?', "", line)


def vm_command(step: str, words: str) -> str:
    """The one line of `step` that holds `words`, as it runs on the VM."""
    (line,) = [on_the_vm(line) for line in script_step(step) if words in line]
    return line


ROOT_ON_VM = script_variable("root")


# --- systemd-analyze ------------------------------------------------------------------


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    binary = sysdeps.require("systemd-analyze")["systemd-analyze"]
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=False)


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    """As the page runs it: a warning about this unit is an error (exit 1)."""
    return analyze("verify", "--recursive-errors=no", str(unit))


def about(unit: Path, output: str) -> list[str]:
    """The lines of systemd-analyze's output about this unit (not about the machine's
    own units, which it reads too)."""
    return [line for line in output.splitlines() if unit.name in line]


def exposure(unit: Path) -> tuple[float, str]:
    result = analyze("security", "--offline=yes", str(unit))
    assert result.returncode == 0, result.stderr
    match = re.search(rf"exposure level for {re.escape(unit.name)}: ([\d.]+) (\w+)", result.stdout)
    assert match, result.stdout
    return float(match[1]), match[2]


# --- a VM's directory, made by the pipeline and the script's release command ----------


@dataclass
class Vm:
    home: Path  # where the script's scp puts the build, pipeline.py and production.env
    root: Path  # stands for /srv/recipe-api
    build: str  # the build's directory name
    port: int

    def unit_copy(self, directory: Path, text: str = UNIT_TEXT) -> Path:
        """The unit with /srv/recipe-api pointing here (the file name stays)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / UNIT.name
        path.write_text(text.replace(ROOT_ON_VM, str(self.root)))
        return path

    def run(self, line: str, returncode: int = 0) -> subprocess.CompletedProcess[str]:
        """A line of the script, run as on the VM, with $root here."""
        script = f"set -euo pipefail\nroot={self.root}\nbuild=deploy/builds/{self.build}\n{line}"
        result = subprocess.run(["bash", "-c", script], cwd=self.home, capture_output=True,
                                text=True, timeout=60, check=False)  # fmt: skip
        assert result.returncode == returncode, f"{line}\n{result.stdout}{result.stderr}"
        return result

    def current(self) -> str:
        return os.readlink(self.root / "production" / "current")


def build_once(repo: Path) -> Path:
    """A scratch git repository with the packaged recipe-api, built by the pipeline."""
    ignore = shutil.ignore_patterns("__pycache__", "dist", ".ruff_cache")
    shutil.copytree(ROOT / PACKAGE, repo / PACKAGE, ignore=ignore)
    (repo / "examples/deployments/pipeline.py").symlink_to(
        ROOT / "examples/deployments/pipeline.py"
    )
    env = {**os.environ, **GIT, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for argv in (["git", "init", "--quiet"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"],
                 ["python", "examples/deployments/pipeline.py", "build", "HEAD"]):  # fmt: skip
        result = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True,
                                timeout=60, check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    (build,) = (repo / "deploy/builds").iterdir()
    return build


def make_vm(tmp: Path, build: Path, port: int) -> Vm:
    """What the script's scp lines leave in the VM user's home, and the venv of setup."""
    home, root = tmp / "home", tmp / "srv"
    home.mkdir()
    shutil.copytree(build, home / build.name)
    (home / "pipeline.py").symlink_to(ROOT / "examples/deployments/pipeline.py")
    config = (SNIPPETS / "production.env").read_text()
    assert "PORT=4000\n" in config
    (home / "production.env").write_text(config.replace("PORT=4000\n", f"PORT={port}\n"))
    # setup's venv: here the tests' own environment, which has the service's dependencies
    python = root / "venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return Vm(home, root, build.name, port)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_once(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory, build: Path) -> Vm:
    """One release, made by the script's release command."""
    vm = make_vm(tmp_path_factory.mktemp("vm"), build, free_port())
    release = vm_command("release", "pipeline.py release")
    vm.run(release)
    return vm


# --- what the unit says -----------------------------------------------------------------


def test_the_unit_runs_productions_current_release_as_its_own_user() -> None:
    current = f"{ROOT_ON_VM}/production/current"
    scripts = tomllib.loads((ROOT / PACKAGE / "pyproject.toml").read_text())["project"]["scripts"]
    assert setting("ExecStart") == f"{current}/bin/{next(iter(scripts))}"
    assert setting("EnvironmentFile") == f"{current}/release.env"
    assert setting("WorkingDirectory") == current
    assert setting("User") == setting("Group") == "recipe-api"
    assert setting("User") not in {"root", "0"}
    assert setting("Type") == "exec"
    assert read_unit(UNIT_TEXT)["Install"] == [("WantedBy", "multi-user.target")]


def test_sigterm_and_a_stop_timeout_longer_than_sanics_graceful_shutdown() -> None:
    assert setting("KillSignal") == "SIGTERM"
    assert SANIC_SHUTDOWN < float(setting("TimeoutStopSec")) <= SANIC_SHUTDOWN + MAX_SPARE
    said = f"Sanic's graceful shutdown timeout is {SANIC_SHUTDOWN:g} s by default"
    assert said in UNIT_TEXT


def test_restarts_on_failure_but_not_on_a_bad_setting() -> None:
    assert setting("Restart") == "on-failure"
    assert setting("RestartPreventExitStatus") == str(BAD_SETTING)


def test_the_sandbox_settings() -> None:
    for key, value in SANDBOX.items():
        assert setting(key) == value, key
    filters = [value for key, value in SERVICE if key == "SystemCallFilter"]
    assert filters == ["@system-service", "~@privileged @resources"]


def test_comments_only_on_lines_of_their_own() -> None:
    """systemd takes `KillSignal=SIGTERM  # why` as the value "SIGTERM  # why"."""
    assert [v for _, v in SERVICE if "#" in v] == []


# --- systemd-analyze --------------------------------------------------------------------


def test_systemd_analyze_verify_passes_on_a_real_release(vm: Vm, tmp_path: Path) -> None:
    unit = vm.unit_copy(tmp_path)
    assert Path(setting("ExecStart", read_unit(unit.read_text())["Service"])).is_file()
    result = verify(unit)
    assert result.returncode == 0, result.stderr
    assert about(unit, result.stdout + result.stderr) == []


def test_verify_fails_loudly_on_the_committed_unit_without_a_release() -> None:
    """Here /srv/recipe-api does not exist: the check fails, it does not pass by default."""
    result = verify(UNIT)
    assert result.returncode != 0
    assert f"Command {setting('ExecStart')} is not executable" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("KillSignal=SIGTERM", "KillSignall=SIGTERM", "Unknown key 'KillSignall'"),
        ("ProtectSystem=strict", "ProtectSystem=strictly", "Failed to parse protect system"),
        ("TimeoutStopSec=20", "TimeoutStopSec=20  # seconds", "Failed to parse time value"),
    ],
    ids=["misspelt-key", "bad-value", "comment-after-a-value"],
)
def test_verify_refuses_a_broken_copy(
    vm: Vm, tmp_path: Path, old: str, new: str, said: str
) -> None:
    assert f"\n{old}\n" in UNIT_TEXT
    unit = vm.unit_copy(tmp_path, UNIT_TEXT.replace(f"\n{old}\n", f"\n{new}\n"))
    result = verify(unit)
    assert result.returncode == 1
    (line,) = about(unit, result.stderr)
    assert said in line
    # without --recursive-errors, the same warning is printed and the exit code is 0
    assert analyze("verify", str(unit)).returncode == 0


def test_security_scores_the_sandbox_as_the_page_says(vm: Vm, tmp_path: Path) -> None:
    level, verdict = exposure(vm.unit_copy(tmp_path / "sandboxed"))
    start, end = UNIT_TEXT.index("# The sandbox"), UNIT_TEXT.index("UMask=0077\n") + 11
    bare, bare_verdict = exposure(
        vm.unit_copy(tmp_path / "bare", UNIT_TEXT[:start] + UNIT_TEXT[end:])
    )
    assert level <= 2 < 9 <= bare
    version = analyze("--version").stdout.split()[1]
    page = " ".join(PAGE.read_text().split())
    assert f"systemd {version}" in page
    assert f"**{level:g} {verdict}**" in page
    assert f"**{bare:g} {bare_verdict}**" in page
    # --threshold=20 (2.0 on the page's scale) passes the unit and fails the bare copy
    for unit, returncode in ((tmp_path / "sandboxed", 0), (tmp_path / "bare", 1)):
        result = analyze("security", "--offline=yes", "--threshold=20", str(unit / UNIT.name))
        assert result.returncode == returncode, result.stdout[-300:]


# --- the release as the unit starts it ---------------------------------------------------


def test_release_env_is_read_the_same_by_bash_and_systemd() -> None:
    for name in ("production.env", "staging.env"):
        assert {"HOST", "PORT"} <= environment_file(SNIPPETS / name).keys()


def test_the_release_runs_as_the_unit_starts_it(vm: Vm, tmp_path: Path) -> None:
    unit = read_unit(vm.unit_copy(tmp_path).read_text())["Service"]
    env = environment_file(Path(setting("EnvironmentFile", unit)))
    assert env["PORT"] == str(vm.port)
    process = Process("recipe-api (as the unit starts it)", [setting("ExecStart", unit)],
                      tmp_path / "recipe-api.log", env=env,
                      cwd=Path(setting("WorkingDirectory", unit)))  # fmt: skip
    process.start(http_ok(f"http://{LOOPBACK}:{vm.port}/health"))
    try:
        # the script's check, against this port
        check = vm_command("release", "curl")
        assert check.endswith("http://127.0.0.1:4000/health")
        sysdeps.require("curl")
        output = vm.run(check.replace(":4000/", f":{vm.port}/")).stdout
        assert json.loads(output) == {"status": "ok", "version": "0.1.0"}
    finally:
        stop = getattr(signal, setting("KillSignal", unit))
        assert process.stop(stop, timeout=float(setting("TimeoutStopSec", unit))) == 0


def test_the_scripts_rollback_makes_the_previous_release_current(
    build: Path, tmp_path: Path
) -> None:
    vm = make_vm(tmp_path, build, free_port())
    release = vm_command("release", "pipeline.py release")
    rollback = vm_command("rollback", "pipeline.py")
    vm.run(release)
    vm.run(release)
    assert vm.current() == "releases/v2"
    vm.run(rollback)
    assert vm.current() == "releases/v1"


def test_the_vm_refuses_a_wheel_that_is_not_the_build(build: Path, tmp_path: Path) -> None:
    vm = make_vm(tmp_path, build, free_port())
    record = json.loads((vm.home / vm.build / "build.json").read_text())
    wheel = vm.home / vm.build / record["wheel"]
    wheel.write_bytes(wheel.read_bytes() + b"changed on the way")
    result = vm.run(vm_command("release", "pipeline.py release"), returncode=1)
    assert "does not match the digest it was built with" in result.stderr
    assert not (vm.root / "production/current").exists()


# --- the script's text against the unit ----------------------------------------------------


def test_the_script_names_what_the_unit_names() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    setup = script_step("setup")
    user = next(shlex.split(line)[-1] for line in setup if "useradd" in line)
    assert user == setting("User")
    assert f'ssh "$vm" sudo cp {UNIT.name} /etc/systemd/system/{UNIT.name}' in setup
    unit_name = UNIT.name.removesuffix(".service")
    for step in ("setup", "release", "rollback"):
        for line in script_step(step):
            if "systemctl" in line and "daemon-reload" not in line:
                assert line.endswith(f" {unit_name}"), line
    for step in ("release", "rollback"):  # $root: the root the unit's paths start with
        assert any("pipeline.py" in line and line.endswith("--to $root/production")
                   for line in script_step(step)), step  # fmt: skip
    production = environment_file(SNIPPETS / "production.env")
    url = f"http://{production['HOST']}:{production['PORT']}/health"
    assert all(line.endswith(url) for step in ("release", "rollback")
               for line in script_step(step) if "curl" in line)  # fmt: skip


def test_the_script_sends_nothing_without_a_vm() -> None:
    result = run_script(SCRIPT, env={"VM": ""}, returncode=1)
    assert "set VM to user@host" in result.stderr
    assert result.stdout == ""


def test_the_procfile_runs_the_packages_command() -> None:
    """The PaaS section's Procfile starts the command the wheel installs."""
    scripts = tomllib.loads((ROOT / PACKAGE / "pyproject.toml").read_text())["project"]["scripts"]
    procfile = re.search(r'```text title="Procfile"\n(.*?)```', PAGE.read_text(), re.S)
    assert procfile, "no Procfile block on the page"
    assert procfile[1] == f"web: {next(iter(scripts))}\n"


# --- docs/deployments/testing.md --------------------------------------------------------

TESTING_PAGE = ROOT / "docs/deployments/testing.md"
LAYERS = SNIPPETS / "test_layers.md"


def test_the_testing_page_states_the_coverage_gate_of_pyproject() -> None:
    gate = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]["report"]
    page = TESTING_PAGE.read_text()
    assert f"`fail_under = {gate['fail_under']}`" in page
    assert f"less than {gate['fail_under']} %" in page


def test_the_testing_page_includes_the_measured_layers() -> None:
    assert f'--8<-- "{LAYERS.relative_to(ROOT)}"' in TESTING_PAGE.read_text()
    results = LAYERS.read_text()
    rows = [line for line in results.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0].removeprefix("| ").split(":")[0] for row in rows] == [
        "unit", "integration", "contract", "the pipeline's build"
    ]  # fmt: skip
    assert "Per test, an integration test costs" in results
    assert re.search(r"Measured \d{4}-\d\d-\d\d .* cores, .*Python 3\.\S+ pytest \d", results)
    assert "Regenerate with `./nox -s bench -- test_layers`" in results
