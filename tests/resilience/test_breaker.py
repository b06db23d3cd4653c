"""breaker_web_api.py: the circuit breaker opens, fails fast, probes and closes, for real.

The upstream is the kit's fake upstream, which counts the requests that reach
it: "no request reaches the upstream" is a count that stays put.
"""

from __future__ import annotations

import re
import threading

import httpx
from kit.examples import RunningExample, assert_output_is_shown
from kit.fake_upstream import FakeUpstream
from kit.process import ROOT, wait_until

SERVICE = "resilience/breaker_web_api.py"
SHOWN = ROOT / "snippets" / "resilience" / "breaker_states.out"
PAGE = ROOT / "docs" / "resilience" / "breakers.md"
THRESHOLD = 3
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold
# Short by setting, so that the test waits ~1 s; the default is 30 s.
QUICK = {"BREAKER_THRESHOLD": str(THRESHOLD), "BREAKER_RECOVERY": "1", "TARGET_TIMEOUT": "1"}


def start(run_example, fake: FakeUpstream, **env: str) -> RunningExample:
    return run_example(SERVICE, env={"TARGET": fake.url, **QUICK, **env})


def state(client: httpx.Client) -> str:
    answer = client.get("/health")
    assert answer.status_code == 200
    return answer.json()["breaker"]


def until_probed(client: httpx.Client) -> httpx.Response:
    """Ask until an answer is not the open breaker's: the probe's answer."""
    answers: list[httpx.Response] = []

    def probed() -> bool:
        answers.append(client.get("/"))
        last = answers[-1]
        return last.status_code == 200 or last.json()["reason"] != "circuit open"

    wait_until(probed, POLL_BOUND, "the recovery timeout to pass")
    return answers[-1]


def state_lines(output: str) -> str:
    return "".join(f"{line}\n" for line in re.findall(r"breaker recipe-api: .*", output))


def test_opens_fails_fast_probes_and_closes(run_example, fake_upstream) -> None:
    fake = fake_upstream().behave(500, {"error": "down"})
    web = start(run_example, fake)
    with httpx.Client(base_url=web.url, timeout=10) as client:
        assert state(client) == "closed"
        for _ in range(THRESHOLD):
            failed = client.get("/")
            assert failed.status_code == 502
            assert failed.json() == {"error": "recipe-api unavailable", "reason": "answered 500"}
        assert state(client) == "opened"
        assert len(fake.requests) == THRESHOLD

        for _ in range(20):  # open: answered at once, and nobody calls recipe-api
            fast = client.get("/")
            assert fast.status_code == 503
            assert fast.json()["reason"] == "circuit open"
            assert fast.headers["retry-after"] == "1"
        assert len(fake.requests) == THRESHOLD

        # Recovery timeout passed, recipe-api still failing: one probe, open again.
        probe = until_probed(client)
        assert probe.status_code == 502
        assert len(fake.requests) == THRESHOLD + 1
        assert state(client) == "opened"
        assert client.get("/").json()["reason"] == "circuit open"

        fake.behave(200, {"id": 42})  # recipe-api is back
        probe = until_probed(client)
        assert probe.status_code == 200
        assert probe.json() == {"producer_data": {"id": 42}}
        assert state(client) == "closed"
        assert len(fake.requests) == THRESHOLD + 2
        assert [client.get("/").status_code for _ in range(5)] == [200] * 5
        assert len(fake.requests) == THRESHOLD + 7  # closed: every call goes through
    assert web.stop() == 0
    assert_output_is_shown(state_lines(web.output()), SHOWN)


def test_half_open_lets_one_probe_through(run_example, fake_upstream) -> None:
    fake = fake_upstream().behave(500)
    web = start(run_example, fake, TARGET_TIMEOUT="10")  # the test ends the probe itself
    with httpx.Client(base_url=web.url, timeout=10) as client:
        for _ in range(THRESHOLD):
            client.get("/")
        assert state(client) == "opened"
        fake.behave(200, never=True)  # the probe will hang at recipe-api
        probe: list[httpx.Response] = []
        prober = threading.Thread(target=lambda: probe.append(until_probed(client)))
        prober.start()
        wait_until(lambda: len(fake.requests) == THRESHOLD + 1, POLL_BOUND, "the probe sent")
        with httpx.Client(base_url=web.url, timeout=10) as others:
            while_probing = [others.get("/") for _ in range(5)]
        fake.released.set()  # the held request ends: a connection closed without an answer
        prober.join(POLL_BOUND)
    for answer in while_probing:
        assert answer.status_code == 503
        assert answer.json()["reason"] == "circuit half-open, probe in flight"
    assert len(fake.requests) == THRESHOLD + 1  # the probe alone reached recipe-api
    assert probe[0].status_code == 502  # the probe failed: open again
    assert probe[0].json()["reason"] == "RemoteProtocolError"


def test_control_a_client_error_never_opens_it(run_example, fake_upstream) -> None:
    """404s are recipe-api working: ten of them, ten calls, still closed."""
    fake = fake_upstream().behave(404, {"error": "no such recipe"})
    web = start(run_example, fake)
    with httpx.Client(base_url=web.url, timeout=10) as client:
        answers = [client.get("/") for _ in range(10)]
        assert {a.status_code for a in answers} == {502}
        assert answers[0].json()["reason"] == "answered 404"
        assert state(client) == "closed"
    assert len(fake.requests) == 10


def test_the_page_shows_the_state_log() -> None:
    page = PAGE.read_text()
    assert '--8<-- "snippets/resilience/breaker_states.out"' in page
    for section in ["settings", "breaker", "call", "routes"]:
        assert f'--8<-- "examples/{SERVICE}:{section}"' in page
