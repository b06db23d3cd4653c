"""observed_recipe_api.py: each signal on alone, all together, none; bad settings; collectors down.

The signals go to real sockets: a UDP socket for the log collector, an HTTP
receiver speaking OTLP over HTTP for the spans, and `/metrics` read the way
Prometheus reads it.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from kit.examples import assert_refuses_to_start
from kit.process import LOOPBACK, free_port, wait_until
from kit.services.span_receiver import OtlpReceiver
from prometheus_client.parser import text_string_to_metric_families

SERVICE = "observability/observed_recipe_api.py"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def log_socket() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(5)
        yield sock


def start(run_example, telemetry: str, log_socket, collector):
    return run_example(
        SERVICE,
        env={
            "TELEMETRY": telemetry,
            "LOG_UDP": f"{LOOPBACK}:{log_socket.getsockname()[1]}",
            "OTLP_TRACES_URL": collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 0.2 s instead of 5 s
        },
    )


def traced_get(url: str) -> httpx.Response:
    return httpx.get(url, headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})


def datagrams(sock: socket.socket) -> Iterator[dict]:
    """Log records as they arrive; the socket's timeout ends a wait that lasts too long."""
    while True:
        yield json.loads(sock.recv(65536))


def log_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_all_three_signals_reach_their_collectors(run_example, log_socket, span_receiver) -> None:
    service = start(run_example, "logs,metrics,traces", log_socket, span_receiver)
    answer = traced_get(f"{service.url}/recipes/42")
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]

    # Logs: the line as a datagram (after /health's), and only there.
    datagram = next(d for d in datagrams(log_socket) if d["request_id"] == request_id)
    assert datagram["route"] == "/recipes/<recipe_id:int>"
    assert datagram["status"] == 200
    assert request_id not in service.output()

    # Metrics: the request counted under its route template.
    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{service.url}/metrics").text)
    }
    counted = {
        (s.labels["route"], s.labels["status"]): s.value for s in families["http_responses"].samples
    }
    assert counted[("/recipes/<recipe_id:int>", "200")] == 1

    # Traces: a server span that continues the caller's trace.
    spans = span_receiver.wait_for(lambda s: s.trace_id == TRACE_ID)
    span = next(s for s in spans if s.trace_id == TRACE_ID)
    assert span.parent_span_id == CALLER_SPAN
    assert span.kind == "SERVER"
    assert span.name == "GET /recipes/<recipe_id:int>"
    assert span.resource["service.name"] == "recipe-api"


@pytest.mark.parametrize("signal", ["logs", "metrics", "traces"])
def test_each_signal_alone_turns_on_only_itself(
    run_example, log_socket, span_receiver, signal
) -> None:
    service = start(run_example, signal, log_socket, span_receiver)
    assert httpx.get(f"{service.url}/health").json()["telemetry"] == [signal]
    answer = traced_get(f"{service.url}/recipes/42")
    assert answer.status_code == 200
    metrics = httpx.get(f"{service.url}/metrics")
    assert (metrics.status_code == 200) == (signal == "metrics")
    assert ("x-request-id" in answer.headers) == (signal == "logs")
    if signal == "traces":
        span_receiver.wait_for(lambda s: s.trace_id == TRACE_ID)
    # Stop the service: the tracer flushes what it holds, so "no span" is final.
    service.stop()
    traced = [s for s in span_receiver.spans if s.trace_id == TRACE_ID]
    assert bool(traced) == (signal == "traces")
    assert not log_lines(service.output())  # LOG_UDP is set: the collector gets the lines
    log_socket.settimeout(0.2)
    try:
        log_socket.recv(65536)
        got_datagram = True
    except TimeoutError:
        got_datagram = False
    assert got_datagram == (signal == "logs")


def test_without_a_collector_log_lines_go_to_stdout(run_example) -> None:
    service = run_example(SERVICE, env={"TELEMETRY": "logs"})
    supplied = "checkout-7f3a"
    answer = httpx.get(f"{service.url}/recipes/404", headers={"X-Request-Id": supplied})
    assert answer.status_code == 404
    assert answer.headers["x-request-id"] == supplied  # a well-formed caller id is kept
    made = httpx.get(f"{service.url}/recipes/42", headers={"X-Request-Id": "not an id; DROP"})
    assert made.headers["x-request-id"] != "not an id; DROP"
    service.stop()
    lines = {line["request_id"]: line for line in log_lines(service.output())}
    assert lines[supplied]["level"] == "warning"
    assert lines[supplied]["status"] == 404
    assert lines[made.headers["x-request-id"]]["level"] == "info"


def logged_ids(output: str) -> list[str]:
    return [line["request_id"] for line in log_lines(output)]


def test_buffered_lines_are_written_on_a_clean_stop(run_example) -> None:
    """stdout lines wait in memory for the next flush (every 0.25 s): SIGTERM writes
    the lines still waiting, so the last requests are in the log."""
    service = run_example(SERVICE, env={"TELEMETRY": "logs"})
    sent = [f"term-{n}" for n in range(50)]
    with httpx.Client() as client:
        for request_id in sent:
            client.get(f"{service.url}/recipes/42", headers={"X-Request-Id": request_id})
    assert service.stop() == 0  # at once: the last lines have had no flush of their own
    ids = [i for i in logged_ids(service.output()) if i.startswith("term-")]
    assert ids == sent  # every line, the last ones included, in order


def test_a_kill_loses_the_lines_not_yet_written(run_example) -> None:
    """SIGKILL (or a crash) gives the service no chance to flush: what was written
    survives whole and in order, what still waited in memory (at most the last
    0.25 s of lines) is gone. How many is up to when the last flush ran."""
    service = run_example(SERVICE, env={"TELEMETRY": "logs"})
    answered = []
    with httpx.Client() as client:
        for n in range(200):
            request_id = f"kill-{n}"
            client.get(f"{service.url}/recipes/42", headers={"X-Request-Id": request_id})
            answered.append(request_id)
    service.kill()
    service.stopped = True  # killed on purpose: no clean exit to check
    ids = [i for i in logged_ids(service.output()) if i.startswith("kill-")]
    assert ids == answered[: len(ids)]  # whole lines, in order: only the tail can be lost
    print(f"SIGKILL: {len(answered) - len(ids)} of {len(answered)} lines lost")


def test_sampling_keeps_a_share_of_new_traces_and_obeys_the_caller(
    run_example, log_socket, span_receiver
) -> None:
    service = run_example(
        SERVICE,
        env={
            "TELEMETRY": "traces",
            "TRACE_SAMPLE": "0",
            "OTLP_TRACES_URL": span_receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    with httpx.Client() as client:
        for _ in range(20):  # new traces: none kept at a ratio of 0
            assert client.get(f"{service.url}/recipes/42").status_code == 200
        not_sampled = f"00-{'1' * 32}-{CALLER_SPAN}-00"  # the caller decided: not sampled
        client.get(f"{service.url}/recipes/42", headers={"traceparent": not_sampled})
        assert traced_get(f"{service.url}/recipes/42").status_code == 200  # sampled: kept
    service.stop()
    assert [span.trace_id for span in span_receiver.spans] == [TRACE_ID]


def test_none_means_no_signal_at_all(run_example, log_socket, span_receiver) -> None:
    service = start(run_example, "none", log_socket, span_receiver)
    answer = traced_get(f"{service.url}/recipes/42")
    assert answer.status_code == 200
    assert "x-request-id" not in answer.headers
    assert httpx.get(f"{service.url}/metrics").status_code == 404
    service.stop()
    assert not span_receiver.spans
    assert not log_lines(service.output())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TELEMETRY": "logs,tracing"},
            "configuration error: TELEMETRY: Value error, use 'none' or a comma-separated "
            "list of logs, metrics, traces\n",
        ),
        ({"TELEMETRY": ""}, "configuration error: TELEMETRY: Value error, use 'none'"),
        ({"LOG_UDP": "localhost"}, "configuration error: LOG_UDP: Value error, expected host:port"),
        (
            {"TRACE_SAMPLE": "10%"},
            "configuration error: TRACE_SAMPLE: Input should be a valid number",
        ),
        (
            {"TRACE_SAMPLE": "1.5"},
            "configuration error: TRACE_SAMPLE: Input should be less than or equal to 1",
        ),
    ],
)
def test_bad_settings_stop_it_at_start_up(env: dict[str, str], message: str) -> None:
    assert_refuses_to_start(SERVICE, env, message)


def test_collectors_down_cost_requests_nothing(run_example) -> None:
    closed_udp, closed_tcp = free_port(), free_port()
    service = run_example(
        SERVICE,
        env={
            "TELEMETRY": "logs,metrics,traces",
            "LOG_UDP": f"{LOOPBACK}:{closed_udp}",
            "OTLP_TRACES_URL": f"http://{LOOPBACK}:{closed_tcp}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    )
    with httpx.Client() as client:
        for _ in range(50):
            assert client.get(f"{service.url}/recipes/42").status_code == 200

        def both_counted() -> bool:
            health = client.get(f"{service.url}/health").json()
            return health["log_datagrams_dropped"] > 0 and health["span_exports_failed"] > 0

        # The kernel reports the refused datagrams; the exporter's thread its failed posts.
        wait_until(both_counted, 10, "the failures counted in /health")
    assert service.stop() == 0
    assert "Traceback" not in service.output()


def test_a_hung_collector_delays_neither_requests_nor_the_stop(run_example, log_socket) -> None:
    with OtlpReceiver(hang=True) as stuck:
        service = start(run_example, "traces", log_socket, stuck)
        with httpx.Client(timeout=2) as client:  # a request waiting on the export would time out
            for _ in range(50):
                assert client.get(f"{service.url}/recipes/42").status_code == 200
        wait_until(lambda: stuck.posts, 10, "an export stuck at the collector")
        # SIGTERM: no export starts after tracing.STOP_GRACE; exit code 0.
        assert service.stop() == 0
