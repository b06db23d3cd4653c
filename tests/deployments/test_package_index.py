"""docs/deployments/packages.md: recipe-api as a wheel, through a private package index.

A real pypiserver on loopback (tests/kit/services/pypiserver.py) serves what twine
uploads plus a mirror directory holding the pinned wheels recipe-api needs
(requirements/services.txt) and its build backend, downloaded once per machine. The
page's publish.sh runs section by section, as a reader runs it: build and upload from
a copy of examples/deployments/recipe_api_package, then install in a new environment
whose only source is the private index (this machine's pip configuration, find-links
and extra indexes switched off), and the installed `recipe-api` command serves.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from kit.examples import assert_output_is_shown
from kit.process import LOOPBACK, ROOT, Process, free_port, http_ok
from kit.services.pypiserver import BIN, PackageIndex, mirror_wheels, pip_isolated_env
from kit.snippets import run_script

PACKAGE = ROOT / "examples/deployments/recipe_api_package"
APP = "deployments/recipe_api_package/src/recipe_api/app.py"
INIT = "deployments/recipe_api_package/src/recipe_api/__init__.py"
UNIT_TESTS = "deployments/recipe_api_package/tests/test_app.py"
SCRIPT = ROOT / "snippets/deployments/publish.sh"


def version() -> str:
    """`__version__` as written in the package's __init__.py, the one place it is kept."""
    tree = ast.parse((ROOT / "examples" / INIT).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__":
            return ast.literal_eval(node.value)
    raise AssertionError(f"no __version__ in {INIT}")


def section(name: str, directory: Path) -> Path:
    """The lines of publish.sh between its `--8<-- [start:name]` and `[end:name]` markers,
    as a script of their own: each test runs the part of the page it checks."""
    text = SCRIPT.read_text()
    match = re.search(rf"# --8<-- \[start:{name}\]\n(.*?)# --8<-- \[end:{name}\]", text, re.S)
    assert match, f"publish.sh has no section {name}"
    path = directory / f"publish_{name}.sh"
    path.write_text(match.group(1))
    return path


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """The private index, with the pinned wheels recipe-api and hatchling need beside it."""
    build_requires = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["build-system"]
    mirror = mirror_wheels(
        ["-r", str(ROOT / "requirements/services.txt"), *build_requires["requires"]]
    )
    server = PackageIndex(tmp_path_factory.mktemp("index"), mirrors=[mirror])
    server.start()
    yield server
    server.stop()


@dataclass
class Published:
    package: Path  # the copy it was built in
    output: str


@pytest.fixture(scope="module")
def published(index: PackageIndex, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """publish.sh's build and upload, from a copy of the package (dist/ stays out of the
    repository). The build backend too comes from the private index."""
    work = tmp_path_factory.mktemp("publish")
    package = work / "recipe_api_package"
    shutil.copytree(
        PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "dist")
    )
    env = {**index.twine_env(), **pip_isolated_env(index.simple_url)}
    outputs = []
    for name in ("build", "upload"):
        result = run_script(section(name, work), env, cwd=package, timeout=120)
        outputs.append(result.stdout + result.stderr)
    return Published(package, "\n".join(outputs))


@dataclass
class Installed:
    venv: Path
    output: str


@pytest.fixture(scope="module")
def installed(
    published: Published, index: PackageIndex, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """publish.sh's install section: `cd "$(mktemp -d)"` lands under this test's TMPDIR."""
    work = tmp_path_factory.mktemp("elsewhere")
    env = {**pip_isolated_env(), "INDEX_URL": index.simple_url, "TMPDIR": str(work)}
    result = run_script(section("install", work), env, cwd=work, timeout=120)
    (venv,) = work.glob("*/venv")
    return Installed(venv, result.stdout + result.stderr)


def test_the_wheel_carries_the_version_written_once_and_the_command(
    published: Published, index: PackageIndex
) -> None:
    wheel = f"dp_recipe_api-{version()}-py3-none-any.whl"
    assert index.uploaded() == [wheel]
    with zipfile.ZipFile(index.packages / wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"dp_recipe_api-{version()}.dist-info/METADATA").decode()
        entry_points = archive.read(f"dp_recipe_api-{version()}.dist-info/entry_points.txt")
        assert archive.read("recipe_api/app.py") == (ROOT / "examples" / APP).read_bytes()
    assert {name.split("/")[0] for name in names} == {
        "recipe_api",
        f"dp_recipe_api-{version()}.dist-info",
    }  # the package and its metadata: no tests, no pyproject.toml
    assert f"\nVersion: {version()}\n" in metadata
    assert "recipe-api = recipe_api.app:main" in entry_points.decode()
    # The version is written in one file of the package, and only there.
    holding = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and not any(part.startswith((".", "__pycache__")) for part in path.parts)
        and version().encode() in path.read_bytes()
    ]
    assert holding == ["src/recipe_api/__init__.py"]


def test_the_build_backend_came_from_the_private_index(
    published: Published, index: PackageIndex
) -> None:
    assert re.search(r"hatchling==\d", published.output)  # installed for the build...
    assert 'GET /simple/hatchling/ HTTP/1.1" 200' in index.process.output()  # ...from here
    assert f"User '{index.user}' stored 'dp_recipe_api-{version()}" in index.process.output()


def test_pip_installs_it_with_the_private_index_as_its_only_source(
    installed: Installed, index: PackageIndex
) -> None:
    lines = installed.output.splitlines()
    assert f"Looking in indexes: {index.simple_url}" in lines
    assert not [line for line in lines if "Looking in links" in line]
    downloads = [line.split()[1] for line in lines if line.strip().startswith("Downloading ")]
    assert downloads
    assert all(url.startswith(index.url) for url in downloads), downloads
    assert_output_is_shown(lines[-1] + "\n", ROOT / "snippets/deployments/publish.out")
    assert lines[-1] == f"recipe-api {version()}"


def test_the_installed_command_serves_its_version_on_health(
    installed: Installed, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    service = Process(
        "recipe-api (installed)",
        [installed.venv / "bin/recipe-api"],
        tmp_path / "recipe-api.log",
        env={"HOST": LOOPBACK, "PORT": str(port)},
        cwd=tmp_path,  # not the repository: the code comes from the installed wheel
    )
    service.start(http_ok(f"{url}/health"))
    try:
        assert httpx.get(f"{url}/health").json() == {"status": "ok", "version": version()}
        assert httpx.get(f"{url}/recipes/42").json()["recipe"]["id"] == 42
        assert httpx.get(f"{url}/recipes/0").status_code == 400
    finally:
        assert service.stop() == 0  # SIGTERM: a clean stop


def test_the_index_answers_404_for_a_name_it_lacks_instead_of_sending_pip_to_pypi(
    index: PackageIndex,
) -> None:
    """No fallback: a name missing here is never looked up on the internet."""
    response = httpx.get(f"{index.simple_url}requests/", follow_redirects=False)
    assert response.status_code == 404


def test_an_upload_with_a_wrong_password_is_refused_and_nothing_is_stored(
    published: Published, tmp_path: Path
) -> None:
    empty = PackageIndex(tmp_path)
    empty.start()
    try:
        (wheel,) = (published.package / "dist").glob("*.whl")
        result = subprocess.run(
            [BIN / "python", "-m", "twine", "upload", "--non-interactive", wheel],
            env={**os.environ, **empty.twine_env(password=secrets.token_urlsafe(16))},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode != 0
        assert re.search(r"\b40[13]\b", result.stdout + result.stderr), result.stdout
        assert empty.uploaded() == []
    finally:
        empty.stop()


def test_a_published_version_is_never_replaced(published: Published, index: PackageIndex) -> None:
    """The same file again, with the right password, is refused; the first one stays.

    pypiserver answers twine 400, as PyPI does (other clients get 409 Conflict)."""
    (wheel,) = (published.package / "dist").glob("*.whl")
    stored = (index.packages / wheel.name).read_bytes()
    result = subprocess.run(
        [BIN / "python", "-m", "twine", "upload", "--non-interactive", wheel],
        env={**os.environ, **index.twine_env()},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "400 Bad Request" in result.stdout + result.stderr, result.stdout
    assert f"Cannot upload '{wheel.name}' since it already exists" in index.process.output()
    assert (index.packages / wheel.name).read_bytes() == stored


def test_the_packages_own_unit_tests_pass_from_the_source() -> None:
    """What the release pipeline runs: the package's tests/ with the package's own pytest
    configuration, fast and without a network (here on the source, not a wheel)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", PACKAGE / "pyproject.toml", f"examples/{UNIT_TESTS}"],
        cwd=ROOT,  # (coverage of the subprocess writes its data here, as for every example)
        env={**os.environ, "PYTHONPATH": str(PACKAGE / "src")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
