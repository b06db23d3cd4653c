"""Start example programs and real services on loopback, and stop them cleanly.

Used by the fixtures in conftest.py. Nothing here is shown to readers: examples
stay single files, and this is the test side of them.
"""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT = 15.0  # generous for a loaded CI machine; a healthy start takes < 1 s
STOP_TIMEOUT = 10.0


class StartupError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise StartupError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def raw_exchange(port: int, payload: bytes) -> bytes:
    """Send raw bytes to a loopback port and read until the server closes or goes quiet."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def connections_to(pid: int, port: int) -> int:
    """How many TCP connections process `pid` holds to `port` (connection reuse checks)."""
    import psutil  # only the tests that check connection reuse need it

    return sum(
        1
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port
    )


def run_line(example: str) -> str:
    """The command line an example's docstring gives the reader, after "Run it..."."""
    path = EXAMPLES / example
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    lines = docstring.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("Run it"):
            for candidate in lines[i + 1 :]:
                if f"python examples/{example}" in candidate:
                    return candidate.strip()
    raise AssertionError(f"{path} has no 'Run it:' line naming python examples/{example}")


def command_from_run_line(line: str) -> tuple[dict[str, str], list[str]]:
    """Split `VAR=value python examples/x.py args` into its environment and argv."""
    words = shlex.split(line)
    env: dict[str, str] = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "python", f"run line must start with python: {line!r}"
    return env, [sys.executable, *words[1:]]


def run_program(
    example: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> str:
    """Run a one-shot example as its docstring's run line says; return its output.

    It must exit with code 0 and write nothing to stderr.
    """
    line_env, argv = command_from_run_line(run_line(example))
    result = subprocess.run(
        [*argv, *args],
        cwd=ROOT,
        env={**os.environ, **line_env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def assert_refuses_to_start(example: str, env: dict[str, str], message: str) -> str:
    """Start `examples/<example>` with a bad setting: it must stop before binding its port,
    with exit code 2, `configuration error: ...<message>...` on stderr and no traceback.
    Returns stderr."""
    result = subprocess.run(
        [sys.executable, f"examples/{example}"],
        cwd=ROOT,
        env={**os.environ, "PORT": "1", **env},  # port 1: it must fail before binding
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "configuration error: " in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def assert_output_is_shown(output: str, shown: Path, normalize: Callable[[str], str] = str) -> None:
    """A real run printed what the page shows (the committed file it includes).

    UPDATE_SNIPPETS=1 rewrites the file from this run instead: then read the
    page again, since its prose explains that output.
    """
    if os.environ.get("UPDATE_SNIPPETS"):
        shown.write_text(output)
    assert normalize(output) == normalize(shown.read_text()), (
        f"the output differs from {shown.relative_to(ROOT)}, which the page shows; if the "
        f"change is intended, rerun with UPDATE_SNIPPETS=1 and check the page's prose. "
        f"Output:\n{output}"
    )


@dataclass
class RunningExample:
    """An example program started the way its page says, as a subprocess."""

    example: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    host: str = LOOPBACK
    stopped: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send SIGTERM, wait for the exit, and return the exit code.

        A process that ignores SIGTERM is killed and the test fails: the
        contract is a clean stop.
        """
        if self.stopped:
            return self.process.returncode
        self.stopped = True
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"{self.example} ignored {signal.Signals(sig).name} for {STOP_TIMEOUT}s "
                    f"and was killed. Output:\n{self.output()}"
                ) from None
        return self.process.returncode


def start_example(
    example: str,
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    ready: str = "/health",
) -> RunningExample:
    """Start `examples/<example>` with the run line from its docstring.

    HOST and PORT point at a free loopback port; `env` adds or overrides
    variables (TARGET, REDIS_URL...). `ready` is an HTTP path that must
    answer 200, "port" to wait for the port to accept, or "" not to wait.
    """
    line_env, argv = command_from_run_line(run_line(example))
    port = free_port()
    child_env = {
        **os.environ,
        **line_env,
        "HOST": LOOPBACK,
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = log_dir / (example.replace("/", "__") + f".{port}.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*argv, *(args or [])],
            cwd=ROOT,
            env=child_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    running = RunningExample(example, process, port, log_path)

    def is_ready() -> bool:
        if process.poll() is not None:
            raise StartupError(
                f"{example} exited with {process.returncode} before it was ready:\n"
                f"{running.output()}"
            )
        if ready == "port":
            return port_open(port)
        try:
            return httpx.get(running.url + ready, timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    if ready:
        try:
            wait_until(is_ready, STARTUP_TIMEOUT, f"{example} on port {port}")
        except StartupError:
            process.kill()
            process.wait()
            raise
    return running


# --- real services -------------------------------------------------------


@dataclass
class Service:
    """A server process started from argv on a loopback port; stop() and start() again."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    user: str | None = None  # run as this user (PostgreSQL refuses root)
    stop_signal: int = signal.SIGTERM

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, ready: Callable[[], bool]) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.workdir,
                user=self.user,
                group=self.user,
                extra_groups=[] if self.user else None,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not for it
            )

        def check() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise StartupError(
                    f"{self.name} exited with {self.process.returncode}:\n"
                    f"{self.log_path.read_text(errors='replace')}"
                )
            return ready()

        wait_until(check, STARTUP_TIMEOUT, f"{self.name} on port {self.port}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RedisServer:
    """redis-server on a free loopback port, nothing persisted, in its own directory."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        argv = [
            binary,
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.service = Service("redis", argv, self.port, workdir)
        self.url = f"redis://{LOOPBACK}:{self.port}/0"

    def _pong(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.service.start(self._pong)

    def stop(self) -> None:
        self.service.stop()


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port.

    initdb refuses to run as root, so as root every server program runs as the
    `postgres` user (what `runuser -u postgres --` does, without the extra
    process in between), with a data directory that user owns.
    """

    def __init__(self, programs: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.socketdir = workdir / "socket"
        self.programs = programs
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url = f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    def init(self) -> None:
        self.socketdir.mkdir(parents=True)
        self.datadir.mkdir()
        if self.user:
            shutil.chown(self.workdir, "postgres")
            shutil.chown(self.datadir, "postgres")
            shutil.chown(self.socketdir, "postgres")
            self.workdir.chmod(0o755)
        result = subprocess.run(
            [
                self.programs["initdb"],
                "--pgdata", str(self.datadir),
                "--username", "postgres",
                "--auth", "trust",
                "--no-sync",
                "--encoding", "UTF8",
            ],
            check=False,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
        )  # fmt: skip
        if result.returncode != 0:
            raise StartupError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        argv = [
            self.programs["postgres"],
            "-D", str(self.datadir),
            "-c", f"listen_addresses={LOOPBACK}",
            "-p", str(self.port),
            "-k", str(self.socketdir),
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
        ]  # fmt: skip
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for clients to leave.
        self.service = Service(
            "postgres", argv, self.port, self.workdir, user=self.user, stop_signal=signal.SIGINT
        )
        self.service.start(self._accepts)

    def _accepts(self) -> bool:
        # A connection attempt during start-up gets "the database system is
        # starting up"; pg_isready says when it really accepts.
        return (
            subprocess.run(
                [self.programs["pg_isready"], "-h", LOOPBACK, "-p", str(self.port), "-q"],
                check=False,
            ).returncode
            == 0
        )

    def stop(self) -> None:
        self.service.stop()
