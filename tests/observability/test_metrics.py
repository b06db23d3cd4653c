"""Metrics with Prometheus: what the page claims about metrics_service.py, with a real Prometheus.

Prometheus is started with the commands of snippets/observability/metrics_prometheus.sh
(the committed prometheus.yml, its placeholders filled in by sed, checked by promtool),
scrapes the service every second, and the tests read the values back from its HTTP API.
"""

from __future__ import annotations

import re
import subprocess
import uuid

import httpx
from kit.examples import assert_output_is_shown
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.snippets import commands, split
from prometheus_client.parser import text_string_to_metric_families

SERVICE = "observability/metrics_service.py"
SNIPPETS = ROOT / "snippets" / "observability"
RECIPE_ROUTE = "/recipes/<recipe_id:int>"
ROUTES = {RECIPE_ROUTE, "/recipes", "/health", "/metrics", "unmatched"}
CUISINES = {"chinese", "french", "indian", "italian", "japanese", "mexican", "thai", "other"}


def scrape(url: str) -> dict:
    """GET /metrics, parsed as the Prometheus text format: {name: family}."""
    answer = httpx.get(f"{url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def route_values(families: dict) -> set[str]:
    return {
        sample.labels["route"]
        for name in ("http_request_duration_seconds", "http_responses")
        for sample in families[name].samples
    }


def test_metrics_is_valid_exposition_with_each_kind(run_example) -> None:
    service = run_example(SERVICE, env={"LAG_INTERVAL": "0.05"})
    assert httpx.get(f"{service.url}/recipes/42").status_code == 200
    families = scrape(service.url)
    assert families["http_request_duration_seconds"].type == "histogram"
    assert families["http_responses"].type == "counter"
    assert families["http_requests_in_flight"].type == "gauge"
    assert families["event_loop_lag_seconds"].type == "gauge"
    # The default process collector: memory and open file descriptors.
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert families["process_open_fds"].samples[0].value > 0
    # The /metrics request is itself in flight while it renders.
    assert families["http_requests_in_flight"].samples[0].value == 1
    wait_until(
        lambda: scrape(service.url)["event_loop_lag_seconds"].samples[0].value > 0,
        10,
        "a loop lag measurement",
    )
    assert all(not s.name.endswith("_created") for f in families.values() for s in f.samples)
    counts = {
        s.labels["route"]: s.value
        for s in families["http_request_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts.keys() == {RECIPE_ROUTE, "/health"}
    assert counts[RECIPE_ROUTE] == 1
    assert counts["/health"] >= 1  # the kit's readiness 200, after any 503 "starting"


def test_unknown_paths_add_no_label_values(run_example) -> None:
    service = run_example(SERVICE)
    with httpx.Client(base_url=service.url) as client:
        for _ in range(50):
            answer = client.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}")
            assert answer.status_code == 404
            assert "message" in answer.json()
        assert client.get("/recipes/not-a-number").status_code == 404
        assert client.post("/recipes/42").status_code == 405
    families = scrape(service.url)
    assert route_values(families) <= ROUTES
    responses = {
        (s.labels["route"], s.labels["status"]): s.value for s in families["http_responses"].samples
    }
    assert responses[("unmatched", "404")] == 51
    assert responses[("unmatched", "405")] == 1
    assert families["http_requests_in_flight"].samples[0].value == 1  # only /metrics itself


def by_cuisine(families: dict, name: str) -> dict[str, float]:
    return {s.labels["cuisine"]: s.value for s in families[name].samples}


def test_recipes_viewed_are_counted_by_cuisine(run_example) -> None:
    service = run_example(SERVICE)
    before = scrape(service.url)
    # Every allowed cuisine and "other" exist from the start, at zero.
    assert by_cuisine(before, "recipes_viewed") == dict.fromkeys(CUISINES, 0)
    with httpx.Client(base_url=service.url) as client:
        for recipe_id in (42, 42, 43, 44, 45, 7):  # Indian twice, Thai, italian, Korean-Mexican
            client.get(f"/recipes/{recipe_id}")
    viewed = by_cuisine(scrape(service.url), "recipes_viewed")
    # "italian" and "Italian" are one value; a cuisine off the list is "other"; a 404 is no view.
    assert {c: v for c, v in viewed.items() if v} == {
        "indian": 2,
        "thai": 1,
        "italian": 1,
        "other": 1,
    }


def test_client_chosen_cuisines_stay_a_bounded_label(run_example) -> None:
    service = run_example(SERVICE)
    with httpx.Client(base_url=service.url) as client:
        thai = client.get("/recipes", params={"cuisine": "Thai"})
        assert [r["name"] for r in thai.json()["recipes"]] == ["Pad Thai"]
        for _ in range(200):  # 200 distinct cuisines, some hostile
            wanted = f'{uuid.uuid4().hex}\n"}} x' * 3
            assert client.get("/recipes", params={"cuisine": wanted}).json() == {"recipes": []}
        assert client.get("/recipes").status_code == 200  # no cuisine at all
    families = scrape(service.url)
    searches = by_cuisine(families, "recipe_searches")
    assert set(searches) == CUISINES  # 8 series, whatever was sent
    assert searches["thai"] == 1
    assert searches["other"] == 201
    assert set(by_cuisine(families, "recipes_viewed")) == CUISINES


def test_prometheus_scrapes_the_service(run_example, prometheus) -> None:
    # Prometheus first, then the service: its first scrape plans wait for a 5 s tick
    # (Prometheus 2.42) while the service starts.
    port = free_port()
    server = prometheus(f"{LOOPBACK}:{port}")
    service = run_example(SERVICE, port=port)
    with httpx.Client(base_url=service.url) as client:
        for _ in range(5):
            assert client.get("/recipes/42").status_code == 200
        for missing in (1, 2, 3):
            assert client.get(f"/recipes/{missing}").status_code == 404
        assert client.get("/no/such/route").status_code == 404
    server.wait_for('up{job="recipe-api"}', "job", {"recipe-api": 1})
    not_ops = '{route!~"/health|/metrics"}'
    server.wait_for(
        f"sum by (status) (http_responses_total{not_ops})", "status", {"200": 5, "404": 4}
    )
    server.wait_for(
        f"sum by (route) (http_request_duration_seconds_count{not_ops})",
        "route",
        {RECIPE_ROUTE: 8, "unmatched": 1},
    )
    # Every request landed in some bucket: the +Inf bucket equals the count.
    inf = server.values(
        f'http_request_duration_seconds_bucket{{route="{RECIPE_ROUTE}",le="+Inf"}}', "le"
    )
    assert inf == {"+Inf": 8}
    # The page's queries, as metrics_query.sh runs them, against this Prometheus.
    output = ""
    for line in commands("snippets/observability/metrics_query.sh"):
        _, argv = split(line.replace("127.0.0.1:9090", f"{LOOPBACK}:{server.port}"))
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
        output += result.stdout
    assert_output_is_shown(
        output,
        SNIPPETS / "metrics_query.out",
        lambda text: re.sub(r" @\[[0-9.]+\]", " @[TIME]", text),
    )
