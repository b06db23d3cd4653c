"""The kit itself: its services really start and stop, its parser reads lines as a shell does."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from kit.process import Process, free_port, port_open, wait_until
from kit.services.postgresql import PostgresServer
from kit.services.redis import RedisServer
from kit.snippets import example_command, split


def test_redis_fixture_serves_and_restarts(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"

    redis_server.stop()
    assert not port_open(redis_server.port)
    with pytest.raises(redis.ConnectionError):
        client.ping()

    redis_server.start()
    assert client.ping()
    assert client.get("greeting") is None  # nothing persisted between runs
    client.close()


def test_postgres_fixture_serves_sql(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url, connect_timeout=5) as conn:
        row = conn.execute("select current_setting('listen_addresses'), 6 * 7").fetchone()
    assert row == ("127.0.0.1", 42)


def test_a_line_splits_into_environment_and_argv() -> None:
    env, argv = split("TARGET=http://127.0.0.1:4000 python examples/why_distributed/web_api.py")
    assert env == {"TARGET": "http://127.0.0.1:4000"}
    assert argv == ["python", "examples/why_distributed/web_api.py"]


def test_a_flag_with_equals_is_an_argument_not_a_variable() -> None:
    env, argv = split("A=1 prometheus --config.file=x.yml --cluster.listen-address= B=2")
    assert env == {"A": "1"}
    assert argv == ["prometheus", "--config.file=x.yml", "--cluster.listen-address=", "B=2"]


def test_quoting_is_read_as_a_shell_reads_it() -> None:
    env, argv = split("""MSG='a b' DIR="/srv/x y" echo "one two" 'three'""")
    assert env == {"MSG": "a b", "DIR": "/srv/x y"}
    assert argv == ["echo", "one two", "three"]


def test_a_line_of_only_variables_is_refused() -> None:
    with pytest.raises(ValueError, match="no command"):
        split("A=1 B=2")


def test_an_example_runs_with_this_interpreter() -> None:
    env, argv = example_command("why_distributed/web_api.py")
    assert env == {"TARGET": "http://127.0.0.1:4000"}
    assert argv == [sys.executable, "examples/why_distributed/web_api.py"]


def test_free_ports_avoid_the_ephemeral_range() -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert all(not low <= free_port() <= high for _ in range(50))


def test_a_process_that_ignores_its_stop_signal_is_killed_with_its_children(tmp_path) -> None:
    script = "import signal, subprocess, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    script += "subprocess.Popen(['sleep', '60']); print('up', flush=True); time.sleep(60)"
    process = Process("stubborn", [sys.executable, "-c", script], tmp_path / "log")
    process.start(lambda: "up" in process.output())
    with pytest.raises(RuntimeError, match="ignored SIGTERM"):
        process.stop(signal.SIGTERM, timeout=0.5)
    assert not process.alive()
    # The sleep child was in the same process group: gone too.
    wait_until(lambda: "sleep 60" not in _processes(), 5, "the child to be gone")


def _processes() -> str:
    import psutil

    lines = []
    for proc in psutil.process_iter():
        try:
            lines.append(" ".join(proc.cmdline()))
        except psutil.Error:  # gone, or a zombie, meanwhile
            continue
    return "\n".join(lines)


def test_the_fake_upstream_answers_as_told(fake_upstream) -> None:
    fake = fake_upstream().behave(503, {"error": "down"})
    answer = httpx.post(f"{fake.url}/x", content=b"hello")
    assert (answer.status_code, answer.json()) == (503, {"error": "down"})
    assert (fake.requests[-1].method, fake.requests[-1].path) == ("POST", "/x")
    assert fake.requests[-1].body == b"hello"
    fake.behave(body="<html>not json</html>")
    assert httpx.get(fake.url).text == "<html>not json</html>"


def test_the_fake_upstream_can_hang_or_hang_up(fake_upstream) -> None:
    fake = fake_upstream().behave(never=True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(fake.url, timeout=0.3)
    fake.behave(close=True)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(fake.url, timeout=5)


FORKED = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the parent ignored
print("argv", sys.argv[1:], "cwd", os.getcwd(), "env", os.environ.get("KIT_PROBE"), flush=True)
print("main", __name__, os.path.basename(__file__), "sanic" in sys.modules, flush=True)
how = sys.argv[1]
if how == "exit":
    raise SystemExit(int(sys.argv[2]))
if how == "message":
    sys.exit("bad thing")
if how == "raise":
    raise ValueError("boom")
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize(
    ("args", "signal_", "code", "said"),
    [
        (["exit", "0"], None, 0, ""),
        (["exit", "3"], None, 3, ""),
        (["message"], None, 1, "bad thing"),
        (["raise"], None, 1, "ValueError: boom"),
        (["wait"], signal.SIGTERM, -signal.SIGTERM, ""),
        (["wait"], signal.SIGINT, -signal.SIGINT, "KeyboardInterrupt"),
    ],
)
def test_a_forked_example_behaves_as_a_started_one(
    tmp_path: Path, args: list[str], signal_: int | None, code: int, said: str
) -> None:
    """kit.forkserver: what a test sees of a forked program is what it would see of
    `python script.py`: argv, cwd, environment, __main__, output, exit status."""
    from kit import forkserver

    script = tmp_path / "forked.py"
    script.write_text(FORKED)
    argv = [sys.executable, str(script), *args]
    assert forkserver.eligible(argv, {"KIT_PROBE": "x"}, None) == forkserver.enabled()
    process = Process("forked", argv, tmp_path / "forked.log", env={"KIT_PROBE": "x"}, cwd=tmp_path)
    process.start()
    if signal_ is not None:
        wait_until(lambda: "ready" in process.output(), 20, "the program to be ready")
        process.popen.send_signal(signal_)  # type: ignore[union-attr]
    assert process.popen is not None
    assert process.popen.wait(20) == code
    output = process.output()
    assert f"argv {args!r} cwd {tmp_path} env x" in output
    assert "main __main__ forked.py" in output
    assert said in output
