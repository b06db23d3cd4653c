"""Example programs, started the way their pages say.

`run_example("why_distributed/web_api.py", env={"TARGET": ...})` starts the
program with the run line of its docstring (HOST and PORT set to a free loopback
port), waits until `GET /health` answers 200, and at the end of the test stops it
with SIGTERM and requires exit code 0: the example contract's clean stop.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kit import forkserver, sysdeps
from kit.process import (
    LOOPBACK,
    ROOT,
    STOP_TIMEOUT,
    Process,
    StartupError,
    free_port,
    http_ok,
    http_started,
    port_open,
)
from kit.snippets import example_command, install_line

EXTRAS = Path(tempfile.gettempdir()) / "distributed-python-extras"


def extra_packages(example: str) -> dict[str, str]:
    """The environment that adds what the example's `pip install` line asks for.

    Installed once per machine (under a lock) into a directory of its own, without
    dependencies: those are the test environment's, so the example runs with the same
    sanic as every other. Only that example's processes get it on PYTHONPATH; the
    shared environment stays as readers of the other examples have it.
    """
    requirements = install_line(example)
    if not requirements:
        return {}
    key = hashlib.sha256(" ".join([sys.executable, *requirements]).encode()).hexdigest()[:16]
    target = EXTRAS / key
    with sysdeps.machine_lock("extras"):
        if not (target / ".done").exists():
            uv = shutil.which("uv") or str(ROOT / ".venv-nox" / "bin" / "uv")
            shutil.rmtree(target, ignore_errors=True)
            result = subprocess.run(
                [uv, "pip", "install", "--quiet", "--no-deps", "--compile-bytecode",
                 "--python", sys.executable, "--target", str(target), *requirements],
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise StartupError(f"installing {requirements} failed:\n{result.stderr}")
            (target / ".done").touch()
    return {"PYTHONPATH": str(target)}


def command_for(example: str) -> tuple[dict[str, str], list[str]]:
    """The run line's environment and argv, plus what its `pip install` line adds."""
    line_env, argv = example_command(example)
    return {**extra_packages(example), **line_env}, argv


class RunningExample(Process):
    """An example program on a loopback port."""

    def __init__(self, example: str, port: int, log_dir: Path, **kwargs: object) -> None:
        self.example = example
        self.port = port
        self.host = LOOPBACK
        self.stopped = False
        log_path = log_dir / (example.replace("/", "__") + f".{port}.log")
        super().__init__(example, log_path=log_path, **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.popen is not None
        return self.popen

    def stop(self, sig: int | None = None, timeout: float = STOP_TIMEOUT) -> int:
        """Send SIGTERM (or `sig`), wait for the exit, return the exit code.

        An example that ignores the signal is killed and the test fails.
        """
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        try:
            code = super().stop(sig, timeout)
        except StartupError as error:
            raise AssertionError(str(error)) from None
        assert code is not None
        return code


def start_example(
    example: str,
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    ready: str | Callable[[], object] = "/health",
    port: int | None = None,
) -> RunningExample:
    """Start `examples/<example>` with the run line from its docstring.

    HOST and PORT point at a free loopback port; `env` adds or overrides variables
    (TARGET, REDIS_URL...). `ready` is an HTTP path that must answer 2xx, "started" for
    a /health that may answer an error once start-up is over (a dependency down), "port"
    to wait until the port accepts connections, a callable, or "" not to wait.
    """
    line_env, argv = command_for(example)
    port = port or free_port()
    child_env = {**line_env, "HOST": LOOPBACK, "PORT": str(port), **(env or {})}
    running = RunningExample(example, port, log_dir, argv=[*argv, *(args or [])], env=child_env)
    if ready == "port":
        check: Callable[[], object] | None = lambda: port_open(port)  # noqa: E731
    elif ready == "started":  # /health answers anything but 503 "starting"
        check = http_started(running.url + "/health")
    elif isinstance(ready, str):
        check = http_ok(running.url + ready) if ready else None
    else:
        check = ready
    running.start(check)
    return running


def run_program(
    example: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> str:
    """Run a one-shot example as its docstring's run line says; return its output.

    It must exit with code 0 and write nothing to stderr.
    """
    line_env, argv = command_for(example)
    result = forkserver.run(
        [*argv, *args], env={**os.environ, **line_env, **(env or {})}, cwd=ROOT, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def refused_settings(example: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start `examples/<example>` with settings that must stop it before it binds its port."""
    line_env, argv = command_for(example)
    return forkserver.run(
        argv, env={**os.environ, **line_env, "PORT": str(free_port()), **env}, cwd=ROOT, timeout=30
    )


def assert_refuses_to_start(example: str, env: dict[str, str], message: str) -> str:
    """A bad setting stops the example: exit code 2, `configuration error: ...<message>...`
    on stderr, nothing on stdout and no traceback. Returns stderr."""
    result = refused_settings(example, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "configuration error: " in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def assert_output_is_shown(output: str, shown: Path, normalize: Callable[[str], str] = str) -> None:
    """A real run printed what the page shows (the committed file it includes).

    UPDATE_SNIPPETS=1 rewrites the file from this run instead: then read the page
    again, since its prose explains that output.
    """
    if os.environ.get("UPDATE_SNIPPETS"):
        shown.write_text(output)
    assert normalize(output) == normalize(shown.read_text()), (
        f"the output differs from {shown.relative_to(ROOT)}, which the page shows; if the "
        f"change is intended, rerun with UPDATE_SNIPPETS=1 and check the page's prose. "
        f"Output:\n{output}"
    )


StartExample = Callable[..., RunningExample]


@contextlib.contextmanager
def example_runner(log_dir: Path) -> Iterator[StartExample]:
    started: list[RunningExample] = []

    def start(example: str, **kwargs: object) -> RunningExample:
        running = start_example(example, log_dir, **kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    try:
        yield start
    finally:
        failures = []
        for running in started:
            if running.stopped:
                continue
            try:
                code = running.stop()
            except AssertionError as error:
                failures.append(str(error))
                continue
            if code != 0:
                failures.append(f"{running.example} exited with {code}:\n{running.output()}")
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[StartExample]:
    """Start examples as their pages say; stop each with SIGTERM and check a clean exit.

    `run_example("why_distributed/recipe_api.py", env={...})` returns a RunningExample
    once GET /health answers 200 (or `ready="port"` for a non-HTTP program). At the end
    of the test every example still running gets SIGTERM and must exit 0 in time.
    """
    with example_runner(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def run_shared_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartExample]:
    """Like run_example, for examples that a whole test module only reads from."""
    with example_runner(tmp_path_factory.mktemp("examples")) as start:
        yield start


__all__ = [
    "RunningExample",
    "StartExample",
    "assert_output_is_shown",
    "assert_refuses_to_start",
    "run_example",
    "run_program",
    "run_shared_example",
    "start_example",
]
