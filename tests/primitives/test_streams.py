"""The "Pub/sub against streams" page: pub/sub loses what nobody heard; a stream with
a consumer group delivers every job at least once, even when a worker is killed
mid-job. Real Redis, real worker processes, SIGKILL and SIGTERM."""

from __future__ import annotations

import signal
import uuid

import pytest
import redis
from kit.examples import assert_output_is_shown, assert_refuses_to_start, run_program
from kit.process import ROOT, wait_until

CONSUMER = "primitives/stream_consumer.py"
PRODUCER = "primitives/stream_producer.py"
JOBS = 20  # the producer's run line on the page: `stream_producer.py 20`
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold


@pytest.fixture(scope="module")
def store(module_redis_server):
    client = redis.Redis.from_url(module_redis_server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def stream() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def key(stream: str, suffix: str = "") -> str:
    return f"primitives:streams:{stream}" + (f":{suffix}" if suffix else "")


def produce(url: str, stream: str) -> None:
    output = run_program(PRODUCER, env={"REDIS_URL": url, "STREAM": stream})
    assert output == f"added {JOBS} jobs to {key(stream)}\n"


def start_consumer(run_example, store, url: str, stream: str, name: str, **env: str):
    def registered() -> bool:
        try:
            consumers = store.xinfo_consumers(key(stream), "workers")
        except redis.ResponseError:  # no stream or no group yet
            return False
        return name in {c["name"] for c in consumers}

    env = {"REDIS_URL": url, "STREAM": stream, "CONSUMER": name, **env}
    return run_example(CONSUMER, env=env, ready=registered)


def jobs_by_id(store, stream: str) -> dict[str, str]:
    return {message_id: fields["job"] for message_id, fields in store.xrange(key(stream))}


def test_pubsub_forgets_what_nobody_heard_a_stream_keeps_it(module_redis_server) -> None:
    output = run_program(
        "primitives/pubsub_vs_stream.py", env={"REDIS_URL": module_redis_server.url}
    )
    lines = output.splitlines()
    assert lines[0].endswith("received by [0, 0, 0]")  # PUBLISH reached no one
    assert lines[2] == "the subscriber got: order-4, order-5, order-6"  # 1-3 are gone
    assert lines[3] == "the stream holds: " + ", ".join(f"order-{n}" for n in range(1, 7))
    assert_output_is_shown(output, ROOT / "snippets" / "primitives" / "stream_pubsub.out")


def test_a_killed_consumers_job_is_reclaimed_and_processed_again(
    run_example, module_redis_server, store, stream
) -> None:
    url = module_redis_server.url
    workers = {
        name: start_consumer(
            run_example, store, url, stream, name, PAUSE_ON="job-3", CLAIM_IDLE="0.5"
        )
        for name in ("a", "b")
    }
    produce(url, stream)
    ids = {job: message_id for message_id, job in jobs_by_id(store, stream).items()}
    assert len(ids) == JOBS

    # Whichever worker read job-3 did its effect and now holds it, unacknowledged.
    wait_until(lambda: store.hexists(key(stream, "done"), "job-3"), POLL_BOUND, "job-3 in hand")
    holder = store.hget(key(stream, "done"), "job-3")
    (entry,) = store.xpending_range(key(stream), "workers", ids["job-3"], ids["job-3"], 1)
    assert entry["consumer"] == holder
    survivor = next(name for name in workers if name != holder)

    assert workers[holder].stop(signal.SIGKILL) == -signal.SIGKILL  # no chance to ack

    def all_acknowledged() -> bool:
        acks = store.hgetall(key(stream, "acks"))
        return len(acks) == JOBS and store.xpending(key(stream), "workers")["pending"] == 0

    wait_until(all_acknowledged, POLL_BOUND, "every job acknowledged")

    processings = {m: int(n) for m, n in store.hgetall(key(stream, "processings")).items()}
    acks = {m: int(n) for m, n in store.hgetall(key(stream, "acks")).items()}
    assert set(processings) == set(acks) == set(ids.values())
    assert all(count >= 1 for count in processings.values())  # at least once
    assert all(count == 1 for count in acks.values())  # one XACK took each out of the PEL
    assert processings[ids["job-3"]] == 2  # the killed worker's job, processed again
    assert f"reprocessed job-3 ({ids['job-3']})" in workers[survivor].output()
    # The effect is idempotent (HSETNX): the redelivery left the first result alone.
    done = store.hgetall(key(stream, "done"))
    assert set(done) == set(ids)
    assert done["job-3"] == holder


def test_sigterm_finishes_the_job_in_hand_and_exits_0(
    run_example, module_redis_server, store, stream
) -> None:
    url = module_redis_server.url
    worker = start_consumer(run_example, store, url, stream, "c", PAUSE_ON="job-1")
    produce(url, stream)
    wait_until(lambda: store.hexists(key(stream, "done"), "job-1"), POLL_BOUND, "job-1 in hand")
    assert store.xpending(key(stream), "workers")["pending"] == 1  # read, not yet acknowledged

    assert worker.stop(signal.SIGTERM) == 0
    assert store.xpending(key(stream), "workers")["pending"] == 0  # finished: acknowledged
    assert list(store.hgetall(key(stream, "acks")).values()) == ["1"]
    assert store.hlen(key(stream, "processings")) == 1  # and took no other job
    assert worker.output().rstrip().endswith("c: stopped")


@pytest.mark.parametrize(
    ("variable", "value"), [("CLAIM_IDLE", "-1"), ("STREAM", "no spaces"), ("CONSUMER", "")]
)
def test_a_bad_setting_stops_the_consumer_at_start(variable: str, value: str) -> None:
    assert_refuses_to_start(CONSUMER, {variable: value}, f"{variable}: ")
