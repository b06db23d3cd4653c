"""The "lock with expiry and a fencing token" page's claims, against a real Redis.

lock_fencing.py runs its story once for the module (a plain store, the negative
control, then a fenced store); a second start with `--hold` is killed while it
holds the lock.
"""

from __future__ import annotations

import signal

import pytest
import redis
from kit.examples import assert_output_is_shown, run_program
from kit.process import ROOT, wait_until
from kit.services.redis import RedisServer

SHOWN = ROOT / "snippets" / "primitives" / "lock_fencing.out"
LOCK = "primitives:lock:report"
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold


@pytest.fixture(scope="module")
def db(module_redis_server: RedisServer) -> redis.Redis:
    client = redis.Redis.from_url(module_redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="module")
def story(module_redis_server: RedisServer) -> dict[str, list[str]]:
    """The program's lines, by store: {"plain lock": [...], "fenced lock": [...]}."""
    output = run_program("primitives/lock_fencing.py", env={"REDIS_URL": module_redis_server.url})
    assert_output_is_shown(output, SHOWN)
    lines: dict[str, list[str]] = {}
    for line in output.splitlines():
        store, _, said = line.partition(": ")
        lines.setdefault(store.strip(), []).append(said)
    return lines


def test_a_plain_lock_lets_the_paused_holders_stale_write_land(story) -> None:
    # The negative control: the lock expired under A, and nothing stops A's write.
    plain = story["plain lock"]
    assert "A took the lock (token 1) and paused" in plain
    assert "A's lock expired; B took it (token 2) and wrote" in plain
    assert "A (token 1) woke and wrote: accepted" in plain
    assert plain[-1] == "the store holds 'written by A'"  # B's write is lost


def test_a_fenced_store_refuses_the_paused_holders_write(story) -> None:
    fenced = story["fenced lock"]
    assert "A (token 3) woke and wrote: refused" in fenced
    assert "A's lock expired; B took it (token 4) and wrote" in fenced
    assert fenced[-1] == "the store holds 'written by B'"


def test_a_release_by_a_non_holder_deletes_nothing(story) -> None:
    for lines in story.values():
        assert "A's release deleted nothing" in lines
        assert "B still holds the lock: True" in lines


def test_fencing_tokens_only_grow(story) -> None:
    tokens = [
        int(said.split("token ")[1].split(")")[0])
        for lines in story.values()
        for said in lines
        if "took" in said
    ]
    assert tokens == [1, 2, 3, 4]


def test_the_lock_expires_when_its_holder_dies(run_example, module_redis_server, db) -> None:
    db.delete(LOCK)
    holder = run_example(
        "primitives/lock_fencing.py",
        env={"REDIS_URL": module_redis_server.url},
        args=["--hold"],
        ready=lambda: db.exists(LOCK),
    )
    token = db.get(LOCK)
    assert holder.stop(signal.SIGKILL) == -signal.SIGKILL  # dies: no release, no cleanup
    assert db.get(LOCK) == token  # still held by the dead process, for now...
    assert 0 < db.pttl(LOCK) <= 500  # ...with an expiry
    wait_until(lambda: not db.exists(LOCK), POLL_BOUND, "the dead holder's lock to expire")
    assert db.set(LOCK, "next-holder", nx=True, px=500)  # free for the next one
