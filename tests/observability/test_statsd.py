"""StatsD to Graphite: statsd_service.py pushes, the npm StatsD daemon aggregates,
carbon stores, and the tests read the values back through graphite-web's render API."""

from __future__ import annotations

import os

import httpx
import pytest
from kit import forkserver
from kit.examples import assert_output_is_shown, assert_refuses_to_start, command_for
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.services.graphite import GraphiteStack

SERVICE = "observability/statsd_service.py"
PRODUCER = "why_distributed/recipe_api.py"
SNIPPETS = ROOT / "snippets" / "observability"
CHECKER = "observability/graphite_alert.py"


def start_service(run_example, graphite: GraphiteStack, target: str):
    return run_example(
        SERVICE,
        env={
            "TARGET": target,
            "STATSD": f"{LOOPBACK}:{graphite.statsd_port}",
            "HEALTH_INTERVAL": "0.5",
        },
    )


def test_requests_responses_and_outbound_calls_reach_graphite(run_example, graphite) -> None:
    producer = run_example(PRODUCER)
    service = start_service(run_example, graphite, producer.url)
    with httpx.Client() as client:
        for _ in range(5):
            assert client.get(f"{service.url}/").status_code == 200
        for _ in range(3):
            assert client.get(f"{service.url}/no/such/page").status_code == 404
    # Timers: one count per request, per route template and method.
    graphite.wait_for_total("stats.timers.web-api.request.root.GET.count", 5)
    graphite.wait_for_total("stats.timers.web-api.request.unmatched.GET.count", 3)
    # Counters by status; the outbound timer, one per call to recipe-api.
    graphite.wait_for_total("stats.counters.web-api.response.200.count", 5)
    graphite.wait_for_total("stats.counters.web-api.response.404.count", 3)
    graphite.wait_for_total("stats.timers.web-api.outbound.recipe-api.count", 5)
    assert max(graphite.series("stats.timers.web-api.outbound.recipe-api.upper_99")) > 0
    assert graphite.find("stats.timers.web-api.request.*") == ["health", "root", "unmatched"]
    # The process gauges, every half second here.
    wait_until(
        lambda: (
            graphite.find("stats.gauges.web-api.process.*")
            == ["connections", "loop_lag_ms", "open_fds", "rss_bytes"]
        ),
        15,
        "the process gauges",
    )
    assert min(graphite.series("stats.gauges.web-api.process.rss_bytes")) > 10_000_000
    assert min(graphite.series("stats.gauges.web-api.process.open_fds")) > 3
    assert min(graphite.series("stats.gauges.web-api.process.loop_lag_ms")) >= 0


def test_open_connections_are_counted(run_example, graphite) -> None:
    service = start_service(run_example, graphite, "http://127.0.0.1:9")
    clients = [httpx.Client() for _ in range(3)]
    try:
        for client in clients:  # three keep-alive connections, left open
            assert client.get(f"{service.url}/health").status_code == 200
        answer = httpx.get(f"{service.url}/health", headers={"Connection": "close"})
        assert answer.json()["connections"] == 4  # the three, and this one
        wait_until(
            lambda: 3 in graphite.series("stats.gauges.web-api.process.connections", "-10s"),
            15,
            "3 open connections reported",
        )
    finally:
        for client in clients:
            client.close()
    wait_until(
        lambda: (
            httpx.get(f"{service.url}/health", headers={"Connection": "close"}).json()[
                "connections"
            ]
            == 1
        ),
        10,
        "the closed connections uncounted",
    )


def test_a_failing_producer_is_counted_and_answered_502(run_example, graphite) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}"
    service = start_service(run_example, graphite, closed)
    before = graphite.total("stats.counters.web-api.outbound.recipe-api.failed.count")
    for _ in range(4):
        answer = httpx.get(f"{service.url}/")
        assert answer.status_code == 502
        assert answer.json()["error"] == "recipe-api unavailable"
    graphite.wait_for_total("stats.counters.web-api.outbound.recipe-api.failed.count", before + 4)
    graphite.wait_for_total("stats.counters.web-api.response.502.count", 4)


def test_names_from_requests_are_sanitized(run_example, graphite) -> None:
    service = start_service(run_example, graphite, "http://127.0.0.1:9")
    evil = [
        "/a.b.c",
        "/x:1|c",
        "/%0Aweb-api.injected:1%7Cc",
        "/caf%C3%A9",
        "/" + "z" * 300,
    ]
    with httpx.Client() as client:
        for path in evil:
            assert client.get(f"{service.url}{path}").status_code == 404
        for method in ("PURGE", "BREW", "X" * 40):
            assert client.request(method, f"{service.url}/").status_code in (404, 405)
        assert client.get(f"{service.url}/health").status_code == 200
    graphite.wait_for_total("stats.timers.web-api.request.health.GET.count", 1)
    graphite.wait_for_total("stats.timers.web-api.request.unmatched.GET.count", 5)
    names = graphite.find("stats.timers.web-api.request.*")
    assert set(names) <= {"root", "unmatched", "health"}, names
    # Unknown methods are one name, "other", whatever the client sent.
    wait_until(lambda: "other" in graphite.find("stats.timers.web-api.request.*.*"), 10, "other")
    assert set(graphite.find("stats.timers.web-api.request.*.*")) == {"GET", "other"}
    assert not graphite.find("stats.counters.web-api.injected*")
    assert not graphite.find("stats.counters.injected*")


def test_statsd_down_costs_requests_nothing(run_example) -> None:
    producer = run_example(PRODUCER)
    service = run_example(
        SERVICE,
        env={
            "TARGET": producer.url,
            "STATSD": f"{LOOPBACK}:{free_port()}",  # nobody listens
            "HEALTH_INTERVAL": "0.2",
        },
    )
    with httpx.Client() as client:
        for _ in range(50):
            assert client.get(f"{service.url}/").status_code == 200
    assert service.stop() == 0
    assert "Traceback" not in service.output()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STATSD": "8125"}, "STATSD: Value error, expected host:port"),
        ({"STATSD": "no-such-host.invalid:8125"}, "STATSD: Value error, cannot resolve"),
        ({"HEALTH_INTERVAL": "0"}, "HEALTH_INTERVAL: Input should be greater than or equal to 0.1"),
    ],
)
def test_bad_settings_stop_it_at_start_up(env: dict[str, str], message: str) -> None:
    assert_refuses_to_start(SERVICE, env, message)


def test_the_names_shown_on_the_page(run_example, graphite) -> None:
    producer = run_example(PRODUCER)
    service = start_service(run_example, graphite, producer.url)
    with httpx.Client() as client:
        for _ in range(3):
            client.get(f"{service.url}/")
    graphite.wait_for_total("stats.timers.web-api.outbound.recipe-api.count", 3)
    graphite.wait_for_total("stats.counters.web-api.response.200.count", 3)
    wait_until(lambda: graphite.find("stats.gauges.web-api.process.*"), 10, "the gauges")
    names = httpx.get(f"{graphite.url}/metrics/index.json").json()
    shown = [
        name
        for name in names
        if name.startswith(
            (
                "stats.timers.web-api.request.root.GET.",
                "stats.timers.web-api.outbound.recipe-api.",
                "stats.counters.web-api.response.200.",
                "stats.gauges.web-api.process.",
            )
        )
    ]
    assert_output_is_shown("\n".join(sorted(shown)) + "\n", SNIPPETS / "statsd_names.out")


# --- alerting on Graphite data: graphite_alert.py against the real graphite-web ---------


def graphite_alert(env: dict[str, str]) -> tuple[int, str]:
    """Run the checker with its docstring's run line: (exit code, stdout)."""
    line_env, argv = command_for(CHECKER)
    result = forkserver.run(argv, env={**os.environ, **line_env, **env}, cwd=ROOT, timeout=30)
    assert result.stderr == ""
    assert "Traceback" not in result.stdout
    return result.returncode, result.stdout


def test_the_graphite_check_fires_on_the_5xx_ratio(run_example, graphite) -> None:
    producer = run_example(PRODUCER)
    up = start_service(run_example, graphite, producer.url)
    down = start_service(run_example, graphite, f"http://{LOOPBACK}:{free_port()}")
    with httpx.Client() as client:
        for _ in range(30):
            assert client.get(f"{up.url}/").status_code == 200
        for _ in range(10):
            assert client.get(f"{down.url}/").status_code == 502
    graphite.wait_for_total("stats.counters.web-api.response.502.count", 10)
    graphite.wait_for_total("stats.counters.web-api.response.200.count", 30)
    at = {"GRAPHITE_URL": graphite.url, "WINDOW": "5min"}
    # Other tests of this module add 200s and 502s: bracket the ratio, whatever they did.
    ratio = graphite.total("stats.counters.web-api.response.5*.count") / graphite.total(
        "stats.counters.web-api.response.*.count"
    )
    assert 0 < ratio < 1
    code, out = graphite_alert({**at, "ABOVE": "0"})  # the default query: the 5xx ratio
    assert code == 1, out
    assert out.startswith("FIRING web-api 5xx ratio = ")
    shown = float(out.split(" = ")[1].split()[0])
    assert shown == pytest.approx(ratio, rel=0.05)  # the checker's one bucket: the whole window
    code, out = graphite_alert({**at, "ABOVE": "0.99"})  # the negative control
    assert (code, out.split(" = ")[0]) == (0, "OK web-api 5xx ratio"), out
    # Any target expression, one line per series; a wildcard gives several.
    query = "stats.counters.web-api.response.{200,502}.count"
    code, out = graphite_alert(
        {**at, "QUERY": f'summarize({query},"5min","sum",true)', "ABOVE": "5"}
    )
    assert code == 1
    assert [line.split()[0] for line in out.splitlines()] == ["FIRING", "FIRING"]


def test_the_graphite_check_says_unknown_when_it_cannot_check(graphite) -> None:
    code, out = graphite_alert({"GRAPHITE_URL": graphite.url, "QUERY": "stats.no.such.metric"})
    assert (code, out) == (3, "UNKNOWN no data in the last 5min: stats.no.such.metric\n")
    closed = f"http://{LOOPBACK}:{free_port()}"
    code, out = graphite_alert({"GRAPHITE_URL": closed})
    assert code == 3
    assert out.startswith("UNKNOWN cannot read Graphite: ConnectError")


def test_the_graphite_check_refuses_bad_settings() -> None:
    bad = {"WINDOW": "5", "ABOVE": "nan", "CHECK_TIMEOUT": "0", "GRAPHITE_URL": "graphite:8080"}
    stderr = assert_refuses_to_start(CHECKER, bad, "WINDOW: String should match pattern")
    assert "ABOVE: Input should be a finite number" in stderr
    assert "CHECK_TIMEOUT: Input should be greater than 0" in stderr
    assert "GRAPHITE_URL: URL scheme should be 'http' or 'https'" in stderr
    assert_refuses_to_start(CHECKER, {"ABOVE": "lots"}, "ABOVE: Input should be a valid number")
