"""The "Seeking atomicity" page's claims, against a real Redis.

The counter programs run as the page runs them (subprocesses, the same load:
20 clients x 10 increments starting together); the lobby service is started
once for the module and driven over HTTP by concurrent clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess

import httpx
import pytest
import redis
from kit.examples import (
    assert_output_is_shown,
    assert_refuses_to_start,
    command_for,
    run_program,
)
from kit.process import LOOPBACK, ROOT
from kit.services.redis import RedisServer

SNIPPETS = ROOT / "snippets" / "primitives"
LOBBY = "primitives:{lobby}:waiting"
GAMES = "primitives:{lobby}:game:*"
SCRIPT_SHA = hashlib.sha1(
    (ROOT / "examples" / "primitives" / "lobby.lua").read_bytes(), usedforsecurity=False
).hexdigest()
RESULT = re.compile(r"^(\w+): expected (\d+), counter (\d+), lost (-?\d+)", re.M)


def counts(output: str) -> tuple[int, int, int]:
    match = RESULT.search(output)
    assert match, output
    expected, counter, lost = (int(g) for g in match.groups()[1:])
    assert expected - counter == lost
    return expected, counter, lost


@pytest.fixture(scope="module")
def env(module_redis_server: RedisServer) -> dict[str, str]:
    return {"REDIS_URL": module_redis_server.url}


@pytest.fixture(scope="module")
def db(module_redis_server: RedisServer) -> redis.Redis:
    client = redis.Redis.from_url(module_redis_server.url, decode_responses=True)
    yield client
    client.close()


# --- the race and its three fixes -------------------------------------------------


def test_get_then_set_loses_updates_every_run(env) -> None:
    # Negative control for the fixes below: the same load, no atomicity.
    expected, counter, lost = counts(run_program("primitives/atomic_race.py", env=env))
    assert expected == 200
    assert 0 < counter < expected
    assert lost > 0


def test_a_bad_redis_url_stops_the_program_at_start() -> None:
    assert_refuses_to_start("primitives/atomic_race.py", {"REDIS_URL": "http://x"}, "REDIS_URL")


def test_multi_exec_loses_nothing(env, db) -> None:
    output = run_program("primitives/atomic_multi.py", env=env)
    assert counts(output) == (200, 200, 0)
    tallies = db.hgetall("primitives:atomic:multi:by_client")
    assert len(tallies) == 20
    assert set(tallies.values()) == {"10"}  # every client's 10 increments, each counted
    assert_output_is_shown(output, SNIPPETS / "atomic_multi.out")


def test_watch_with_bounded_retry_loses_nothing(env) -> None:
    output = run_program("primitives/atomic_watch.py", env=env)
    assert counts(output) == (200, 200, 0)
    assert_output_is_shown(output, SNIPPETS / "atomic_watch.out")


def test_watch_gives_up_with_a_clear_error_when_the_bound_is_reached(env) -> None:
    # One attempt each, 20 clients starting together: all read the same value,
    # the first EXEC wins and the others' WATCH fails at once.
    env_line, argv = command_for("primitives/atomic_watch.py")
    result = subprocess.run(
        [*argv, "--attempts", "1"],
        cwd=ROOT,
        env={**os.environ, **env_line, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "watch: gave up: primitives:atomic:watch changed under us on each of 1 attempts\n"
    )
    assert_output_is_shown(result.stderr, SNIPPETS / "atomic_watch_gave_up.out")


# --- the lobby: a Lua script --------------------------------------------------------


@pytest.fixture(scope="module")
def lobby(run_shared_example, env):
    return run_shared_example("primitives/lobby.py", env=env)


@pytest.fixture
def empty(db) -> None:
    db.delete(LOBBY, *db.keys(GAMES))


async def join_all(url: str, names: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await asyncio.gather(
            *(client.post("/lobby/join", json={"name": name}) for name in names)
        )


def test_forty_concurrent_joins_make_exactly_ten_games(lobby, db, empty) -> None:
    names = [f"player-{n}" for n in range(40)]
    answers = asyncio.run(join_all(lobby.url, names))
    made = [a.json()["game"] for a in answers if a.status_code == 201]
    assert sorted(a.status_code for a in answers) == [200] * 30 + [201] * 10
    assert all(a.json() == {"status": "waiting"} for a in answers if a.status_code == 200)
    assert len(set(made)) == 10
    games = [db.smembers(f"primitives:{{lobby}}:game:{game}") for game in made]
    assert all(len(players) == 4 for players in games)
    everyone = [name for players in games for name in players]
    assert sorted(everyone) == sorted(names)  # nobody lost, nobody twice
    assert not db.exists(LOBBY)  # the tenth game emptied it
    assert len(db.keys(GAMES)) == 10
    assert all(0 < db.ttl(f"primitives:{{lobby}}:game:{game}") <= 3600 for game in made)


def test_joining_twice_is_joining_once(lobby, db, empty) -> None:
    answers = asyncio.run(join_all(lobby.url, ["ann", "ann", "bob", "bob", "cid"]))
    assert {a.status_code for a in answers} == {200}
    assert db.smembers(LOBBY) == {"ann", "bob", "cid"}


def test_a_call_after_script_flush_still_works(lobby, db, empty) -> None:
    assert asyncio.run(join_all(lobby.url, ["before"]))[0].status_code == 200
    assert db.script_exists(SCRIPT_SHA) == [True]  # loaded once, called by its SHA
    db.script_flush()
    assert db.script_exists(SCRIPT_SHA) == [False]
    assert asyncio.run(join_all(lobby.url, ["after"]))[0].status_code == 200  # NOSCRIPT handled
    assert db.script_exists(SCRIPT_SHA) == [True]
    assert db.smembers(LOBBY) == {"before", "after"}


def test_a_name_full_of_lua_and_quotes_is_stored_verbatim(lobby, db, empty) -> None:
    hostile = "x' ]] redis.call('FLUSHALL') --\"'"
    db.set("primitives:canary", "alive")
    answers = asyncio.run(join_all(lobby.url, [hostile, "b", "c", "d"]))
    made = [a.json()["game"] for a in answers if a.status_code == 201]
    assert len(made) == 1
    assert hostile in db.smembers(f"primitives:{{lobby}}:game:{made[0]}")
    assert db.get("primitives:canary") == "alive"  # data, never code


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 41},
        {"name": "new\nline"},
        {"name": 42},
        {},
        ["player"],
    ],
    ids=["empty", "too-long", "control-character", "not-a-string", "no-name", "not-an-object"],
)
def test_a_bad_name_is_400_with_a_json_error(lobby, db, empty, body) -> None:
    answer = httpx.post(f"{lobby.url}/lobby/join", json=body, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid player"
    assert not db.exists(LOBBY)


def test_hung_redis_is_503_not_a_hang(run_example, hung_server) -> None:
    service = run_example(
        "primitives/lobby.py",
        env={"REDIS_URL": f"redis://{LOOPBACK}:{hung_server}/0", "REDIS_TIMEOUT": "0.5"},
    )
    answer = httpx.post(f"{service.url}/lobby/join", json={"name": "ann"}, timeout=10)
    assert answer.status_code == 503
    assert answer.json() == {"error": "redis unavailable", "kind": "TimeoutError"}


def test_redis_down_is_503_and_joins_work_again_after(
    lobby, module_redis_server: RedisServer
) -> None:
    # Last in the module: it stops the shared Redis (which comes back empty).
    module_redis_server.stop()
    try:
        answer = httpx.post(f"{lobby.url}/lobby/join", json={"name": "ann"}, timeout=10)
        assert answer.status_code == 503
        assert answer.json() == {"error": "redis unavailable", "kind": "ConnectionError"}
    finally:
        module_redis_server.start()
    answer = httpx.post(f"{lobby.url}/lobby/join", json={"name": "ann"}, timeout=10)
    assert answer.status_code == 200  # a new connection, and the script loaded again
