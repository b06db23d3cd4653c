"""Distributed tracing: traced_web_api.py -> traced_recipe_api.py, spans at an OTLP receiver.

No collector, Jaeger or Zipkin server runs here (none is packaged for Debian):
the receiver in span_receiver.py speaks OTLP over HTTP (protobuf), decodes with
the exporter's own message classes, and rejects spans a real collector would
reject.
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
from kit.services.span_receiver import OtlpReceiver, Span

RECIPE_API = "observability/traced_recipe_api.py"
WEB_API = "observability/traced_web_api.py"
TRACING = "observability/tracing.py"
SNIPPETS = ROOT / "snippets" / "observability"
QUICK_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "200"}  # every 0.2 s instead of every 5 s
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def start_both(run_example, endpoint: str):
    env = {"OTLP_TRACES_URL": endpoint, **QUICK_EXPORT}
    recipe = run_example(RECIPE_API, env=env)
    web = run_example(WEB_API, env={**env, "TARGET": recipe.url})
    return web, recipe


def by_id(spans: list[Span]) -> dict[str, Span]:
    return {span.span_id: span for span in spans}


def tree(spans: list[Span]) -> str:
    """One line per span, children indented under parents: ids and times left out."""
    spans_by_id = by_id(spans)
    children: dict[str | None, list[Span]] = {}
    for span in sorted(spans, key=lambda s: s.start):
        parent = span.parent_span_id if span.parent_span_id in spans_by_id else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            shown = ", ".join(
                f"{k}={v}" for k, v in sorted(span.attributes.items()) if k.startswith("http.")
            )
            lines.append(f"{'    ' * depth}{span.service} {span.kind} {span.name!r} ({shown})")
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return "\n".join(lines) + "\n"


def normalize_ports(text: str) -> str:
    return re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)


def test_one_request_is_one_trace_across_both_services(run_example, span_receiver) -> None:
    web, _ = start_both(run_example, span_receiver.endpoint)
    answer = httpx.get(f"{web.url}/")
    assert answer.status_code == 200
    # Three spans, from two processes that export on their own schedules.
    spans = span_receiver.wait_for(lambda s: s.name != "GET /health", count=3)
    trace_ids = {s.trace_id for s in spans if s.name != "GET /health"}
    assert len(trace_ids) == 1  # one trace: web-api's spans and recipe-api's
    trace = [s for s in spans if s.trace_id in trace_ids]
    server = next(s for s in trace if s.name == "GET /")
    client = next(s for s in trace if s.kind == "CLIENT")
    producer = next(s for s in trace if s.service == "recipe-api")
    assert server.kind == "SERVER"
    assert server.parent_span_id is None  # the trace started at web-api
    assert client.parent_span_id == server.span_id  # web-api's call, inside its request
    assert client.service == "web-api"
    assert producer.kind == "SERVER"
    assert producer.parent_span_id == client.span_id  # recipe-api continued web-api's trace
    assert {s.status for s in trace} == {"UNSET"}  # nothing failed
    # The child happens inside its parent, on one clock (both processes on this machine).
    assert server.start <= client.start <= producer.start <= producer.end
    assert producer.end <= client.end <= server.end
    assert_output_is_shown(normalize_ports(tree(trace)), SNIPPETS / "tracing_trace.out")


def test_each_service_names_itself_on_its_resource(run_example, span_receiver) -> None:
    web, _ = start_both(run_example, span_receiver.endpoint)
    assert httpx.get(f"{web.url}/").status_code == 200
    spans = span_receiver.wait_for(lambda s: s.name != "GET /health", count=3)
    for span in spans:
        assert span.resource["service.name"] in {"web-api", "recipe-api"}
        assert span.resource["telemetry.sdk.language"] == "python"
    assert {s.service for s in spans if s.name == "GET /"} == {"web-api"}


def test_a_callers_traceparent_is_continued_to_recipe_api(run_example, span_receiver) -> None:
    web, _ = start_both(run_example, span_receiver.endpoint)
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    assert httpx.get(f"{web.url}/", headers={"traceparent": traceparent}).status_code == 200
    spans = span_receiver.wait_for(lambda s: s.trace_id == CALLER_TRACE, count=3)
    trace = [s for s in spans if s.trace_id == CALLER_TRACE]
    assert {s.service for s in trace} == {"web-api", "recipe-api"}
    server = next(s for s in trace if s.kind == "SERVER" and s.name == "GET /")
    assert server.parent_span_id == CALLER_SPAN  # continued, not restarted
    assert not [s for s in spans if s.trace_id != CALLER_TRACE and s.name == "GET /"]


@pytest.mark.parametrize(
    "b3",
    [
        {"X-B3-TraceId": CALLER_TRACE, "X-B3-SpanId": CALLER_SPAN, "X-B3-Sampled": "1"},
        {"b3": f"{CALLER_TRACE}-{CALLER_SPAN}-1"},
    ],
    ids=["multi-header", "single-header"],
)
def test_b3_headers_are_continued(run_example, span_receiver, b3) -> None:
    recipe = run_example(
        RECIPE_API, env={"OTLP_TRACES_URL": span_receiver.endpoint, **QUICK_EXPORT}
    )
    assert httpx.get(f"{recipe.url}/recipes/42", headers=b3).status_code == 200
    spans = span_receiver.wait_for(lambda s: s.trace_id == CALLER_TRACE)
    span = next(s for s in spans if s.trace_id == CALLER_TRACE)
    assert span.parent_span_id == CALLER_SPAN
    assert span.kind == "SERVER"
    assert span.name == "GET /recipes/<recipe_id:int>"
    assert span.attributes["http.response.status_code"] == 200


def test_web_api_sends_the_trace_in_both_formats(run_example, span_receiver, fake_upstream) -> None:
    # Stands where recipe-api would: answers recipe 42 and keeps the headers it got.
    producer = fake_upstream().behave(body={"recipe": {"id": 42}})
    env = {"OTLP_TRACES_URL": span_receiver.endpoint, "TARGET": producer.url, **QUICK_EXPORT}
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
    client = span_receiver.wait_for(lambda s: s.kind == "CLIENT")
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
def test_malformed_trace_headers_start_a_new_trace(run_example, span_receiver, headers) -> None:
    recipe = run_example(
        RECIPE_API, env={"OTLP_TRACES_URL": span_receiver.endpoint, **QUICK_EXPORT}
    )
    assert httpx.get(f"{recipe.url}/recipes/42", headers=headers).status_code == 200
    spans = span_receiver.wait_for(lambda s: s.name == "GET /recipes/<recipe_id:int>")
    span = next(s for s in spans if s.name == "GET /recipes/<recipe_id:int>")
    assert span.parent_span_id is None  # a root span: nothing of the bad header was kept
    assert span.trace_id not in str(headers)


def test_span_names_are_route_templates_not_paths(run_example, span_receiver) -> None:
    recipe = run_example(
        RECIPE_API, env={"OTLP_TRACES_URL": span_receiver.endpoint, **QUICK_EXPORT}
    )
    with httpx.Client() as client:
        for path in ("/recipes/42", "/recipes/7", "/recipes/0", "/recipes/abc", "/x/%0d%0a"):
            assert client.get(f"{recipe.url}{path}").status_code < 500
    recipe.stop()  # flushes the last spans
    names = {s.name for s in span_receiver.spans}
    assert names == {"GET /recipes/<recipe_id:int>", "GET unmatched", "GET /health"}
    statuses = sorted(s.attributes["http.response.status_code"] for s in span_receiver.spans)
    assert statuses.count(404) == 3  # 7 unknown, abc and /x/... match no route
    assert 400 in statuses
    # A 4xx is no server error. The kit's readiness checks may have met a 503 "starting"
    # on /health, which is one: those are the only spans allowed the ERROR status.
    assert {s.status for s in span_receiver.spans if s.name != "GET /health"} == {"UNSET"}
    errors = [s for s in span_receiver.spans if s.status == "ERROR"]
    assert all(s.attributes["http.response.status_code"] == 503 for s in errors)


def test_a_collector_that_is_down_costs_nothing(run_example) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}/v1/traces"
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


def test_a_stuck_collector_delays_no_request_and_gets_no_export_after_the_grace(
    run_example,
) -> None:
    """Batches of 5 spans: 90-odd spans queue up behind the stuck collector, some 18
    batches that the SDK alone would post one after the other at shutdown, each waiting
    the exporter's full 2 s timeout (up to its own 30 s cap). With the shared deadline,
    no export starts once STOP_GRACE has passed: a post or two after SIGTERM, not 18."""
    small_batches = {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5"}
    with OtlpReceiver(hang=True) as stuck:
        env = {"OTLP_TRACES_URL": stuck.endpoint, **QUICK_EXPORT, **small_batches}
        recipe = run_example(RECIPE_API, env=env)
        web = run_example(WEB_API, env={**env, "TARGET": recipe.url})
        with httpx.Client(timeout=2) as client:  # waiting on an export would time out
            for _ in range(30):
                assert client.get(f"{web.url}/").status_code == 200
        wait_until(lambda: stuck.posts, 10, "an export stuck at the collector")
        # SIGTERM to both at once: what is still queued gets STOP_GRACE in all.
        stopping = time.monotonic()
        with ThreadPoolExecutor() as pool:
            assert list(pool.map(lambda service: service.stop(), (web, recipe))) == [0, 0]
        after = [at for at in stuck.posts if at >= stopping]
        # Each service: at most the batch it was posting plus one started in the grace.
        assert len(after) <= 4, f"{len(after)} exports after SIGTERM"
        assert len(stuck.posts) < 90 // 5  # most batches were dropped, not posted


def test_a_client_that_gives_up_still_leaves_a_trace(
    run_example, span_receiver, fake_upstream
) -> None:
    """The client hangs up while web-api waits on recipe-api: Sanic cancels the request,
    and its server span is still ended, exported and marked failed."""
    producer = fake_upstream().behave(never=True)  # takes the request, never answers
    env = {"OTLP_TRACES_URL": span_receiver.endpoint, "TARGET": producer.url}
    web = run_example(WEB_API, env={**env, "TARGET_TIMEOUT": "30", **QUICK_EXPORT})
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{web.url}/", timeout=0.5)
    spans = span_receiver.wait_for(lambda s: s.kind == "CLIENT" or s.name == "GET /", count=2)
    server = next(s for s in spans if s.name == "GET /")
    client = next(s for s in spans if s.kind == "CLIENT")
    assert client.parent_span_id == server.span_id
    assert server.status == "ERROR"
    assert httpx.get(f"{web.url}/health").status_code == 200  # and it serves on
    assert web.stop() == 0
    assert "Traceback" not in web.output()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRACE_SAMPLE": "all"}, "TRACE_SAMPLE: Input should be a valid number"),
        ({"OTLP_TRACES_URL": "127.0.0.1:4318"}, "OTLP_TRACES_URL: Input should be a valid URL"),
        (
            {"OTLP_TRACES_URL": "http://127.0.0.1:4318"},  # the base URL, not the endpoint
            "OTLP_TRACES_URL: Value error, the OTLP/HTTP traces endpoint, ending in /v1/traces",
        ),
    ],
)
@pytest.mark.parametrize("example", [RECIPE_API, WEB_API])
def test_bad_settings_stop_it_at_start_up(example: str, env: dict, message: str) -> None:
    assert_refuses_to_start(example, env, f"configuration error: {message}")


def test_the_default_endpoint_is_where_the_docker_stack_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tracing.py's defaults: OTLP/HTTP's own port (4318), every trace kept."""
    monkeypatch.syspath_prepend(str((ROOT / "examples" / TRACING).parent))
    module = importlib.import_module("tracing")
    monkeypatch.delenv("OTLP_TRACES_URL", raising=False)
    monkeypatch.delenv("TRACE_SAMPLE", raising=False)
    settings = module.TraceSettings()
    assert str(settings.otlp_traces_url) == "http://127.0.0.1:4318/v1/traces"
    assert settings.trace_sample == 1.0
    assert '"127.0.0.1:4318:4318"' in (SNIPPETS / "compose.yaml").read_text()


def test_a_failed_call_shows_in_the_trace(run_example, span_receiver) -> None:
    """recipe-api unreachable: web-api answers 502, and its spans say where it failed."""
    closed = f"http://{LOOPBACK}:{free_port()}"
    env = {"OTLP_TRACES_URL": span_receiver.endpoint, "TARGET": closed, **QUICK_EXPORT}
    web = run_example(WEB_API, env=env)
    answer = httpx.get(f"{web.url}/")
    assert answer.status_code == 502
    assert answer.json() == {"error": "recipe-api unavailable", "reason": "ConnectError"}
    spans = span_receiver.wait_for(lambda s: s.kind == "CLIENT" or s.name == "GET /", count=2)
    server = next(s for s in spans if s.name == "GET /")
    client = next(s for s in spans if s.kind == "CLIENT")
    assert client.parent_span_id == server.span_id
    assert (server.kind, client.kind) == ("SERVER", "CLIENT")
    # The server span: a 5xx answer is an error, with the status as its error.type.
    assert server.status == "ERROR"
    assert server.attributes["http.response.status_code"] == 502
    assert server.attributes["error.type"] == "502"
    # The client span: failed, with the reason and the exception the call raised.
    assert client.status == "ERROR"
    assert "ConnectError" in client.status_message
    exception = next(e for e in client.events if e["name"] == "exception")
    assert exception["exception.type"] == "httpx.ConnectError"
