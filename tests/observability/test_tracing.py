"""Distributed tracing: traced_web_api.py -> traced_recipe_api.py, spans at a Zipkin receiver.

No Zipkin server runs here (it is a Java service, not packaged for Debian): the
receiver in span_receiver.py speaks the part of Zipkin's v2 API that tracers
use and rejects spans a real Zipkin would reject.
"""

from __future__ import annotations

import importlib
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from kit.examples import assert_output_is_shown, assert_refuses_to_start
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.services.span_receiver import ZipkinReceiver

RECIPE_API = "observability/traced_recipe_api.py"
WEB_API = "observability/traced_web_api.py"
TRACING = "observability/tracing.py"
SNIPPETS = ROOT / "snippets" / "observability"
QUICK_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "200"}  # every 0.2 s instead of every 5 s
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def start_both(run_example, zipkin_endpoint: str):
    env = {"ZIPKIN": zipkin_endpoint, **QUICK_EXPORT}
    recipe = run_example(RECIPE_API, env=env)
    web = run_example(WEB_API, env={**env, "TARGET": recipe.url})
    return web, recipe


def by_id(spans: list[dict]) -> dict[str, dict]:
    return {span["id"]: span for span in spans}


def tree(spans: list[dict]) -> str:
    """One line per span, children indented under parents: ids and times left out."""
    spans_by_id = by_id(spans)
    children: dict[str | None, list[dict]] = {}
    for span in sorted(spans, key=lambda s: s["timestamp"]):
        parent = span.get("parentId") if span.get("parentId") in spans_by_id else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            tags = ", ".join(
                f"{k}={v}" for k, v in sorted(span.get("tags", {}).items()) if k.startswith("http.")
            )
            lines.append(
                f"{'    ' * depth}{span['localEndpoint']['serviceName']} {span['kind']} "
                f"{span['name']!r} ({tags})"
            )
            walk(span["id"], depth + 1)

    walk(None, 0)
    return "\n".join(lines) + "\n"


def normalize_ports(text: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)


def test_one_request_is_one_trace_across_both_services(run_example, zipkin) -> None:
    web, _ = start_both(run_example, zipkin.endpoint)
    answer = httpx.get(f"{web.url}/")
    assert answer.status_code == 200
    # Three spans, from two processes that export on their own schedules.
    spans = zipkin.wait_for(lambda s: s["name"] != "GET /health", count=3)
    trace_ids = {s["traceId"] for s in spans if s["name"] != "GET /health"}
    assert len(trace_ids) == 1  # one trace: web-api's spans and recipe-api's
    trace = [s for s in spans if s["traceId"] in trace_ids]
    server = next(s for s in trace if s["name"] == "GET /")
    client = next(s for s in trace if s["kind"] == "CLIENT")
    producer = next(s for s in trace if s["localEndpoint"]["serviceName"] == "recipe-api")
    assert server["kind"] == "SERVER"
    assert "parentId" not in server  # the trace started at web-api
    assert client["parentId"] == server["id"]  # web-api's call, inside its request
    assert client["localEndpoint"]["serviceName"] == "web-api"
    assert producer["kind"] == "SERVER"
    assert producer["parentId"] == client["id"]  # recipe-api continued web-api's trace
    # The child happens inside its parent, on one clock (both processes on this machine).
    assert server["timestamp"] <= client["timestamp"] <= producer["timestamp"]
    assert producer["duration"] <= client["duration"] <= server["duration"]
    assert_output_is_shown(normalize_ports(tree(trace)), SNIPPETS / "tracing_trace.out")


def test_a_callers_traceparent_is_continued_to_recipe_api(run_example, zipkin) -> None:
    web, _ = start_both(run_example, zipkin.endpoint)
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    assert httpx.get(f"{web.url}/", headers={"traceparent": traceparent}).status_code == 200
    spans = zipkin.wait_for(lambda s: s["traceId"] == CALLER_TRACE, count=3)
    trace = [s for s in spans if s["traceId"] == CALLER_TRACE]
    assert {s["localEndpoint"]["serviceName"] for s in trace} == {"web-api", "recipe-api"}
    server = next(s for s in trace if s["kind"] == "SERVER" and s["name"] == "GET /")
    assert server["parentId"] == CALLER_SPAN  # continued, not restarted
    assert not [s for s in spans if s["traceId"] != CALLER_TRACE and s["name"] == "GET /"]


@pytest.mark.parametrize(
    "b3",
    [
        {"X-B3-TraceId": CALLER_TRACE, "X-B3-SpanId": CALLER_SPAN, "X-B3-Sampled": "1"},
        {"b3": f"{CALLER_TRACE}-{CALLER_SPAN}-1"},
    ],
    ids=["multi-header", "single-header"],
)
def test_b3_headers_are_continued(run_example, zipkin, b3) -> None:
    recipe = run_example(RECIPE_API, env={"ZIPKIN": zipkin.endpoint, **QUICK_EXPORT})
    assert httpx.get(f"{recipe.url}/recipes/42", headers=b3).status_code == 200
    spans = zipkin.wait_for(lambda s: s["traceId"] == CALLER_TRACE)
    span = next(s for s in spans if s["traceId"] == CALLER_TRACE)
    assert span["parentId"] == CALLER_SPAN
    assert span["name"] == "GET /recipes/<recipe_id:int>"
    assert span["tags"]["http.response.status_code"] == "200"


def test_web_api_sends_the_trace_in_both_formats(run_example, zipkin, fake_upstream) -> None:
    # Stands where recipe-api would: answers recipe 42 and keeps the headers it got.
    producer = fake_upstream().behave(body={"recipe": {"id": 42}})
    env = {"ZIPKIN": zipkin.endpoint, "TARGET": producer.url, **QUICK_EXPORT}
    web = run_example(WEB_API, env=env)
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    assert httpx.get(f"{web.url}/", headers={"traceparent": traceparent}).status_code == 200
    headers = {k.lower(): v for k, v in producer.requests[-1].headers.items()}
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", CALLER_TRACE, "01")
    assert span_id != CALLER_SPAN  # the parent is now web-api's client span
    assert headers["x-b3-traceid"] == trace_id
    assert headers["x-b3-spanid"] == span_id
    assert headers["x-b3-sampled"] == "1"
    client = zipkin.wait_for(lambda s: s["kind"] == "CLIENT")
    assert span_id in by_id(client)
    shown = "\n".join(
        f"{name}: {headers[name]}"
        for name in ("traceparent", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled")
    )
    ids = {CALLER_TRACE: "<trace id>", span_id: "<web-api client span id>"}
    assert_output_is_shown(
        re.sub("|".join(ids), lambda m: ids[m.group()], shown) + "\n",
        SNIPPETS / "tracing_headers.out",
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-not-a-trace-01"},
        {"traceparent": f"00-{'0' * 32}-{CALLER_SPAN}-01"},  # all-zero trace id is invalid
        {"traceparent": "zz-" + "a" * 2000},
        {"X-B3-TraceId": "xyz", "X-B3-SpanId": "123"},
        {"b3": "garbage-in"},
    ],
    ids=["short", "zero-trace", "long", "b3-bad-hex", "b3-single-garbage"],
)
def test_malformed_trace_headers_start_a_new_trace(run_example, zipkin, headers) -> None:
    recipe = run_example(RECIPE_API, env={"ZIPKIN": zipkin.endpoint, **QUICK_EXPORT})
    assert httpx.get(f"{recipe.url}/recipes/42", headers=headers).status_code == 200
    spans = zipkin.wait_for(lambda s: s["name"] == "GET /recipes/<recipe_id:int>")
    span = next(s for s in spans if s["name"] == "GET /recipes/<recipe_id:int>")
    assert "parentId" not in span  # a root span: nothing of the bad header was kept
    assert span["traceId"] not in str(headers)


def test_span_names_are_route_templates_not_paths(run_example, zipkin) -> None:
    recipe = run_example(RECIPE_API, env={"ZIPKIN": zipkin.endpoint, **QUICK_EXPORT})
    with httpx.Client() as client:
        for path in ("/recipes/42", "/recipes/7", "/recipes/0", "/recipes/abc", "/x/%0d%0a"):
            assert client.get(f"{recipe.url}{path}").status_code < 500
    recipe.stop()  # flushes the last spans
    names = {s["name"] for s in zipkin.spans}
    assert names == {"GET /recipes/<recipe_id:int>", "GET unmatched", "GET /health"}
    statuses = sorted(s["tags"]["http.response.status_code"] for s in zipkin.spans)
    assert statuses.count("404") == 3  # 7 unknown, abc and /x/... match no route
    assert "400" in statuses


def test_a_collector_that_is_down_costs_nothing(run_example) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}/api/v2/spans"
    web, recipe = start_both(run_example, closed)
    with httpx.Client(timeout=2) as client:
        for _ in range(30):
            assert client.get(f"{web.url}/").status_code == 200
        # The failed exports are counted, not raised into requests.
        wait_until(
            lambda: client.get(f"{recipe.url}/health").json()["span_exports_failed"] > 0,
            10,
            "a failed export counted",
        )
    assert web.stop() == 0
    assert recipe.stop() == 0
    assert "Traceback" not in web.output() + recipe.output()


def test_a_stuck_collector_delays_neither_requests_nor_the_stop(run_example) -> None:
    # Batches of 5 spans: 60 spans queue up behind the stuck collector, 12 batches that
    # the SDK alone would post one after the other at shutdown, 2 s each.
    small_batches = {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5"}
    with ZipkinReceiver(hang=True) as stuck:
        env = {"ZIPKIN": stuck.endpoint, **QUICK_EXPORT, **small_batches}
        recipe = run_example(RECIPE_API, env=env)
        web = run_example(WEB_API, env={**env, "TARGET": recipe.url})
        with httpx.Client(timeout=2) as client:  # waiting on an export would time out
            for _ in range(30):
                assert client.get(f"{web.url}/").status_code == 200
        # SIGTERM: what is still queued gets STOP_GRACE (2 s) in all, then exit code 0.
        started = time.monotonic()
        with ThreadPoolExecutor() as pool:  # both at once
            assert list(pool.map(lambda service: service.stop(), (web, recipe))) == [0, 0]
        assert time.monotonic() - started < 6  # over 20 s without the shared deadline
        assert stuck.posts > 0


def test_a_client_that_gives_up_still_leaves_a_trace(run_example, zipkin, fake_upstream) -> None:
    """The client hangs up while web-api waits on recipe-api: Sanic cancels the request,
    and its server span is still ended, exported and marked failed."""
    producer = fake_upstream().behave(never=True)  # takes the request, never answers
    env = {"ZIPKIN": zipkin.endpoint, "TARGET": producer.url, "TARGET_TIMEOUT": "30"}
    web = run_example(WEB_API, env={**env, **QUICK_EXPORT})
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{web.url}/", timeout=0.5)
    spans = zipkin.wait_for(lambda s: s["kind"] == "CLIENT" or s["name"] == "GET /", count=2)
    server = next(s for s in spans if s["name"] == "GET /")
    client = next(s for s in spans if s["kind"] == "CLIENT")
    assert client["parentId"] == server["id"]
    assert server["tags"]["otel.status_code"] == "ERROR"
    assert httpx.get(f"{web.url}/health").status_code == 200  # and it serves on
    assert web.stop() == 0
    assert "Traceback" not in web.output()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRACE_SAMPLE": "all"}, "TRACE_SAMPLE: Input should be a valid number"),
        ({"ZIPKIN": "127.0.0.1:9411"}, "ZIPKIN: Input should be a valid URL"),
    ],
)
@pytest.mark.parametrize("example", [RECIPE_API, WEB_API])
def test_bad_settings_stop_it_at_start_up(example: str, env: dict, message: str) -> None:
    assert_refuses_to_start(example, env, f"configuration error: {message}")


def test_the_default_zipkin_is_where_the_docker_stack_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tracing.py's defaults: Zipkin's own port, every trace kept."""
    monkeypatch.syspath_prepend(str((ROOT / "examples" / TRACING).parent))
    module = importlib.import_module("tracing")
    monkeypatch.delenv("ZIPKIN", raising=False)
    monkeypatch.delenv("TRACE_SAMPLE", raising=False)
    settings = module.TraceSettings()
    assert str(settings.zipkin) == "http://127.0.0.1:9411/api/v2/spans"
    assert settings.trace_sample == 1.0
    assert '"127.0.0.1:9411:9411"' in (SNIPPETS / "compose.yaml").read_text()


def test_a_failed_call_shows_in_the_trace(run_example, zipkin) -> None:
    """recipe-api unreachable: web-api answers 502, and its spans say where it failed."""
    closed = f"http://{LOOPBACK}:{free_port()}"
    web = run_example(WEB_API, env={"ZIPKIN": zipkin.endpoint, "TARGET": closed, **QUICK_EXPORT})
    answer = httpx.get(f"{web.url}/")
    assert answer.status_code == 502
    assert answer.json() == {"error": "recipe-api unavailable", "reason": "ConnectError"}
    spans = zipkin.wait_for(lambda s: s["kind"] == "CLIENT" or s["name"] == "GET /", count=2)
    server = next(s for s in spans if s["name"] == "GET /")
    client = next(s for s in spans if s["kind"] == "CLIENT")
    assert client["parentId"] == server["id"]
    assert server["tags"]["http.response.status_code"] == "502"
    assert "error" in server["tags"]  # a 5xx answer marks the server span failed too
    assert "error" in client["tags"]  # Zipkin's mark of a failed span, with the reason
