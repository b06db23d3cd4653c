"""Environments and logging: what the page claims about logging_service.py, with a real rsyslog.

The service ships its JSON lines over UDP to rsyslogd started with
snippets/observability/rsyslog.conf; the tests read what rsyslog wrote.
"""

from __future__ import annotations

import json
import re
import signal

import httpx
import pytest
from kit.examples import RunningExample, assert_output_is_shown, assert_refuses_to_start
from kit.process import ROOT, free_udp_port
from kit.snippets import command, run_script

SERVICE = "observability/logging_service.py"
SNIPPETS = ROOT / "snippets" / "observability"


def stdout_records(service: RunningExample) -> list[dict]:
    """The JSON lines the service printed (Sanic's own start-up lines are not JSON)."""
    return [json.loads(line) for line in service.output().splitlines() if line.startswith("{")]


def production(run_example, collector=None, **env: str) -> RunningExample:
    """The service as snippets/observability/logging_run.sh starts it, on a free port."""
    script_env, argv = command("snippets/observability/logging_run.sh")
    assert argv == ["python", f"examples/{SERVICE}"], argv
    assert script_env == {"APP_ENV": "production", "LOG_UDP": "127.0.0.1:5140"}
    udp = collector.address if collector else ""
    return run_example(SERVICE, env={**script_env, "LOG_UDP": udp, **env})


def test_records_arrive_at_the_collector_parsed(run_example, rsyslog) -> None:
    service = production(run_example, rsyslog)
    answer = httpx.get(f"{service.url}/recipes/42", headers={"X-Request-Id": "req-42"})
    assert answer.status_code == 200
    records = rsyslog.wait_for(lambda r: r.get("request_id") == "req-42", "the request's record")
    (finished,) = [r for r in records if r.get("request_id") == "req-42"]
    assert finished["level"] == "info"
    assert finished["event"] == "request finished"
    assert finished["path"] == "/recipes/42"
    assert finished["method"] == "GET"
    assert finished["status"] == 200
    assert finished["env"] == "production"
    assert finished["service"] == "recipe-api"
    assert isinstance(finished["duration_ms"], float)
    # Client errors are logged one level up.
    assert httpx.get(f"{service.url}/recipes/7", headers={"X-Request-Id": "r7"}).status_code == 404
    records = rsyslog.wait_for(lambda r: r.get("request_id") == "r7", "the 404's record")
    (missing,) = [r for r in records if r.get("request_id") == "r7"]
    assert (missing["level"], missing["status"]) == ("warning", 404)
    assert stop_cleanly(service) == 0


def stop_cleanly(service: RunningExample) -> int:
    return service.stop(signal.SIGTERM)


def test_records_below_the_threshold_are_dropped(run_example, rsyslog) -> None:
    # production defaults to info: the debug lines of a request go nowhere.
    service = production(run_example, rsyslog)
    assert httpx.get(f"{service.url}/recipes/42", headers={"X-Request-Id": "t1"}).status_code == 200
    rsyslog.wait_for(lambda r: r.get("request_id") == "t1", "the request's record")
    assert stop_cleanly(service) == 0
    collected = [r for r in rsyslog.records() if r.get("request_id") == "t1"]
    printed = [r for r in stdout_records(service) if r.get("request_id") == "t1"]
    for records in (collected, printed):
        assert [r["event"] for r in records] == ["request finished"]
    # The same service in staging logs them, to both places.
    staging = run_example(SERVICE, env={"APP_ENV": "staging", "LOG_UDP": rsyslog.address})
    assert httpx.get(f"{staging.url}/recipes/42", headers={"X-Request-Id": "t2"}).status_code == 200
    events = ["request started", "looking up recipe", "request finished"]
    rsyslog.wait_for(lambda r: r.get("request_id") == "t2" and r["level"] == "info", "3 records")
    assert [r["event"] for r in rsyslog.records() if r.get("request_id") == "t2"] == events
    assert [r["event"] for r in stdout_records(staging) if r.get("request_id") == "t2"] == events
    # LOG_LEVEL overrides the environment's threshold.
    quiet = run_example(SERVICE, env={"APP_ENV": "staging", "LOG_LEVEL": "warning"})
    assert httpx.get(f"{quiet.url}/recipes/42").status_code == 200
    assert httpx.get(f"{quiet.url}/recipes/1").status_code == 404
    assert stop_cleanly(quiet) == 0
    levels = {r["level"] for r in stdout_records(quiet)}
    assert levels == {"warning"}


def test_the_verbose_level_sits_between_info_and_debug(run_example) -> None:
    # LOG_LEVEL=VERBOSE (any case): verbose lines and above, no debug.
    verbose = run_example(SERVICE, env={"APP_ENV": "staging", "LOG_LEVEL": "VERBOSE"})
    # LOG_LEVEL=info, the negative control: no verbose lines either.
    info = run_example(SERVICE, env={"APP_ENV": "staging", "LOG_LEVEL": "info"})
    for service in (verbose, info):
        assert httpx.get(f"{service.url}/recipes/42", headers={"X-Request-Id": "v1"}).is_success
        assert stop_cleanly(service) == 0
    lines = {
        service: [
            (r["level"], r["event"]) for r in stdout_records(service) if r.get("request_id") == "v1"
        ]
        for service in (verbose, info)
    }
    assert lines[verbose] == [("verbose", "looking up recipe"), ("info", "request finished")]
    assert lines[info] == [("info", "request finished")]
    assert '"log_level":"verbose"' in verbose.output()  # the starting line says which


def test_request_id_is_on_every_line_and_in_the_header(run_example, rsyslog) -> None:
    service = run_example(SERVICE, env={"APP_ENV": "staging", "LOG_UDP": rsyslog.address})
    with httpx.Client(base_url=service.url) as client:  # one connection, several requests
        generated = client.get("/recipes/42").headers["x-request-id"]
        kept = client.get("/recipes/42", headers={"X-Request-Id": "Client.id_1-2"})
        too_long = client.get("/recipes/42", headers={"X-Request-Id": "a" * 65})
        bad_chars = client.get("/recipes/42", headers={"X-Request-Id": "id with spaces;"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert kept.headers["x-request-id"] == "Client.id_1-2"
    for replaced in (too_long, bad_chars):
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    ids = [generated, "Client.id_1-2", *(r.headers["x-request-id"] for r in (too_long, bad_chars))]
    assert len(set(ids)) == 4
    last = ids[-1]
    rsyslog.wait_for(lambda r: r.get("request_id") == last and "status" in r, "the last request")
    collected = rsyslog.records()
    for request_id in ids:
        lines = [r for r in collected if r.get("request_id") == request_id]
        assert [r["event"] for r in lines] == [
            "request started",
            "looking up recipe",
            "request finished",
        ]
    # Every line logged during a request carries an id (none leaks across requests).
    assert all("request_id" in r for r in collected if r["event"] != "starting")


def test_client_values_are_sanitized(run_example) -> None:
    service = run_example(SERVICE, env={"APP_ENV": "staging"})
    agent = "evil\x1b[31m\tagent" + "x" * 500
    answer = httpx.get(f"{service.url}/recipes/42", headers={"User-Agent": agent})
    assert answer.status_code == 200
    long_path = httpx.get(f"{service.url}/" + "p" * 1000)
    assert long_path.status_code == 404
    assert stop_cleanly(service) == 0
    records = stdout_records(service)
    (started,) = [r for r in records if r.get("user_agent", "").startswith("evil")]
    assert started["user_agent"] == "evil?[31m?agent" + "x" * 85 + "..."
    (finished,) = [r for r in records if r.get("status") == 404]
    assert finished["path"] == "/" + "p" * 199 + "..."
    # No header is logged but the (cleaned) user agent.
    assert not any("headers" in r or "x-request-id" in r for r in records)


def test_collector_down_never_blocks_nor_raises(run_example) -> None:
    closed = free_udp_port()  # nothing listens there
    service = production(run_example, LOG_UDP=f"127.0.0.1:{closed}")
    with httpx.Client(base_url=service.url) as client:
        statuses = [client.get("/recipes/42").status_code for _ in range(50)]
        health = client.get("/health").json()
    assert statuses == [200] * 50
    assert service.alive()
    # Every record was tried; the kernel's refusals were counted, not raised.
    udp = health["log_udp"]
    assert udp["sent"] + udp["failed"] >= 51
    assert udp["failed"] > 0
    assert stop_cleanly(service) == 0
    assert '"event":"stopped"' in service.output()


def test_development_logs_readable_lines(run_example) -> None:
    service = run_example(SERVICE)  # the run line: APP_ENV=development
    assert (
        httpx.get(f"{service.url}/recipes/42", headers={"X-Request-Id": "dev-1"}).status_code == 200
    )
    assert httpx.get(f"{service.url}/recipes/0").status_code == 400
    assert httpx.get(f"{service.url}/health").json() == {"status": "ok", "log_udp": None}
    assert stop_cleanly(service) == 0
    lines = [line for line in service.output().splitlines() if "request_id=dev-1" in line]
    assert len(lines) == 3
    assert "[debug    ] request started" in lines[0]
    assert "status=200" in lines[-1]
    assert "env=development" in lines[-1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_ENV": "prod"}, "APP_ENV: Input should be 'development', 'staging' or 'production'"),
        (
            {"LOG_LEVEL": "LOUD"},
            "LOG_LEVEL: Input should be 'error', 'warning', 'info', 'verbose' or 'debug'",
        ),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT: Input should be 'console' or 'json'"),
        ({"LOG_UDP": "not-an-address"}, "LOG_UDP: Value error, expected host:port"),
        ({"LOG_UDP": "127.0.0.1:99999"}, "LOG_UDP: Value error, expected host:port"),
        (
            {"LOG_UDP": "no-such-host.invalid:5140"},
            "LOG_UDP: Value error, cannot resolve 'no-such-host.invalid'",
        ),
    ],
)
def test_bad_settings_stop_the_start(env: dict[str, str], message: str) -> None:
    stderr = assert_refuses_to_start(SERVICE, env, f"configuration error: {message}")
    if env == {"APP_ENV": "prod"}:
        assert_output_is_shown(stderr, SNIPPETS / "logging_bad_env.out")


def normalize_query(text: str) -> str:
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", text)


def test_query_over_the_collected_records(run_example, rsyslog) -> None:
    service = production(run_example, rsyslog)
    with httpx.Client(base_url=service.url) as client:
        for request_id, path in [("demo-1", "/recipes/42"), ("demo-2", "/recipes/42")]:
            assert client.get(path, headers={"X-Request-Id": request_id}).status_code == 200
        assert client.get("/recipes/7", headers={"X-Request-Id": "demo-404"}).status_code == 404
        assert client.get("/recipes/0", headers={"X-Request-Id": "demo-400"}).status_code == 400
    rsyslog.wait_for(lambda r: r.get("request_id") == "demo-400", "the last request")
    result = run_script(SNIPPETS / "logging_query.sh", {"COLLECTED": str(rsyslog.file)})
    assert result.stderr == ""
    assert_output_is_shown(result.stdout, SNIPPETS / "logging_query.out", normalize_query)
    # One record as rsyslog wrote it, shown on the page (pretty-printed).
    (record,) = [r for r in rsyslog.records() if r.get("request_id") == "demo-404"]
    shown = json.dumps(record, indent=2, sort_keys=True) + "\n"
    assert_output_is_shown(shown, SNIPPETS / "logging_record.out", normalize_record)


def normalize_record(text: str) -> str:
    text = re.sub(r'"duration_ms": [\d.]+', '"duration_ms": <ms>', text)
    return normalize_query(text)
