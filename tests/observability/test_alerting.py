"""Alerting: the rules proven by promtool, then a real Prometheus, Alertmanager and receiver.

The live test runs the commands of snippets/observability/alerting_run.sh on
free ports, with the waits shortened (scrapes every second; evaluation, `for:`
and Alertmanager's group waits 250 ms) so that an alert
fires and resolves within seconds. The committed `for:` values are what
`promtool test rules` checks.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from kit import sysdeps
from kit.examples import assert_output_is_shown, assert_refuses_to_start
from kit.process import LOOPBACK, ROOT, STARTUP_TIMEOUT, free_port, http_ok, wait_until
from kit.services.prometheus import start_daemon, stop_daemons
from kit.snippets import commands, split

RECEIVER = "observability/alert_receiver.py"
HEALTH = "observability/health_service.py"
METRICS = "observability/metrics_service.py"
SNIPPETS = ROOT / "snippets" / "observability"
READER_DIR = "/tmp/recipe-alerts"  # noqa: S108  (the reader's directory in the script)


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    sysdeps.require("promtool")
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, check=False)


def rules_script() -> tuple[list[str], list[str]]:
    """The two commands of alerting_rules.sh, as the reader runs them from the repository root."""
    check, test = commands("snippets/observability/alerting_rules.sh")
    return split(check)[1], split(test)[1]


def test_the_rules_are_valid() -> None:
    check, _ = rules_script()
    assert check[:3] == ["promtool", "check", "rules"]
    result = promtool(*check[1:])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout  # 2 recording rules, 3 alerts


def test_the_rules_unit_tests_pass() -> None:
    _, test = rules_script()
    assert test[:3] == ["promtool", "test", "rules"]
    result = promtool(*test[1:])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_is_rejected(tmp_path: Path) -> None:
    rules = yaml.safe_load((SNIPPETS / "alert_rules.yml").read_text())
    high_error_rate = rules["groups"][0]["rules"][3]
    assert high_error_rate["alert"] == "HighErrorRate"
    high_error_rate["expr"] = "sum by (job) (rate(http_responses_total[5m]) >"
    broken = tmp_path / "rules.yml"
    broken.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(broken))
    assert result.returncode != 0
    assert '"HighErrorRate": could not parse expression' in result.stdout + result.stderr


def test_an_unmet_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests can fail: claim the health alert fires after one failed probe."""
    tests = (SNIPPETS / "alert_rules_test.yml").read_text()
    honest = (
        "      - eval_time: 1m # one failed probe: pending, nothing sent\n"
        "        alertname: HealthCheckFailing\n"
        "        exp_alerts: []\n"
    )
    assert tests.count(honest) == 1
    lying = tests.replace(
        honest,
        "      - eval_time: 1m\n"
        "        alertname: HealthCheckFailing\n"
        "        exp_alerts:\n"
        "          - exp_labels: {severity: page}\n",
    )
    (tmp_path / "alert_rules_test.yml").write_text(lying)
    shutil.copy(SNIPPETS / "alert_rules.yml", tmp_path)
    result = promtool("test", "rules", "alert_rules_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
    assert "alertname: HealthCheckFailing, time: 1m" in result.stdout + result.stderr


# Each change below makes a rule wrong in a way the unit tests must notice.
MUTATIONS = {
    "health for: shorter": ("for: 1m", "for: 0m"),
    "error-rate for: shorter": ("for: 5m", "for: 4m"),
    "p99 for: shorter": ("for: 10m", "for: 9m"),
    "error-rate threshold": ("> 0.05", "> 0.065"),
    "p99 threshold": ("> 0.25", "> 0.75"),
    "another quantile": ("histogram_quantile(0.99,", "histogram_quantile(0.98,"),
    "4xx counted as errors": ('status=~"5.."', 'status=~"[45].."'),
    "no zero for a service without 5xx": (
        "              or sum by (job) (rate(http_responses_total[5m])) * 0\n",
        "",
    ),
    "exporter down goes unnoticed": ('            or up{job="recipe-api-health"} == 0\n', ""),
}


@pytest.mark.parametrize("change", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_the_unit_tests_catch_a_wrong_rule(change: tuple[str, str], tmp_path: Path) -> None:
    old, new = change
    rules = (SNIPPETS / "alert_rules.yml").read_text()
    assert rules.count(old) == 1
    (tmp_path / "alert_rules.yml").write_text(rules.replace(old, new))
    shutil.copy(SNIPPETS / "alert_rules_test.yml", tmp_path)
    assert promtool("check", "rules", "alert_rules.yml", cwd=tmp_path).returncode == 0
    result = promtool("test", "rules", "alert_rules_test.yml", cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout + result.stderr


# --- the receiver -------------------------------------------------------------


def webhook(alerts: list[dict]) -> dict:
    return {"version": "4", "status": "firing", "receiver": "webhook", "alerts": alerts}


def alert(name: str, status: str = "firing", summary: str = "", **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": summary},
        "startsAt": "2026-11-29T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
    }


# A notification as Alertmanager 0.25 sends it (the documented webhook format, version 4).
REAL = {
    "receiver": "webhook",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "HealthCheckFailing",
                "instance": "http://127.0.0.1:4001/health",
                "job": "recipe-api-health",
                "severity": "page",
            },
            "annotations": {
                "summary": "http://127.0.0.1:4001/health is failing its health check",
                "description": "GET http://127.0.0.1:4001/health has not answered 2xx...",
            },
            "startsAt": "2026-11-29T10:41:07.283Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=probe_success&g0.tab=1",
            "fingerprint": "3b4ac28a8e0bd0b8",  # pragma: allowlist secret (an alert hash)
        }
    ],
    "groupLabels": {"alertname": "HealthCheckFailing", "job": "recipe-api-health"},
    "commonLabels": {"alertname": "HealthCheckFailing", "severity": "page"},
    "commonAnnotations": {"summary": "http://127.0.0.1:4001/health is failing its health check"},
    "externalURL": "http://127.0.0.1:9093",
    "version": "4",
    "groupKey": '{}:{alertname="HealthCheckFailing", job="recipe-api-health"}',
    "truncatedAlerts": 0,
}


def refusal(url: str, body: object) -> dict[str, str]:
    """POST a bad webhook: 422, and {path: message} of the problems named."""
    answer = httpx.post(url, json=body)
    assert answer.status_code == 422, (body, answer.text)
    assert answer.json()["error"] == "not an Alertmanager webhook"
    return {p["path"]: p["message"] for p in answer.json()["problems"]}


def test_the_receiver_accepts_a_real_alertmanager_payload(run_example) -> None:
    receiver = run_example(RECEIVER)
    url = f"{receiver.url}/alerts"
    assert httpx.post(url, json=REAL).json() == {"received": 1}
    # A newer Alertmanager may add fields, at the top or in an alert: still accepted.
    newer = {**REAL, "alertsURL": "http://x", "alerts": [{**REAL["alerts"][0], "silencedBy": []}]}
    assert httpx.post(url, json=newer).json() == {"received": 1}
    kept = [
        a
        for a in httpx.get(url).json()["alerts"]
        if a["fingerprint"] == REAL["alerts"][0]["fingerprint"]
    ]
    assert len(kept) == 2
    assert kept[0]["labels"] == REAL["alerts"][0]["labels"]
    assert kept[0]["startsAt"] == "2026-11-29T10:41:07.283000Z"


def test_a_malformed_webhook_gets_422_with_the_field_paths(run_example) -> None:
    receiver = run_example(RECEIVER)
    url = f"{receiver.url}/alerts"
    assert httpx.post(url, content=b"{not json").status_code == 400
    assert refusal(url, []) == {
        "(body)": "Input should be a valid dictionary or instance of Webhook"
    }
    assert "version" in refusal(url, {**REAL, "version": "3"})
    assert set(refusal(url, {"version": "4"})) == {"status", "alerts"}
    assert "alerts" in refusal(url, {**REAL, "alerts": "all of them"})
    assert "alerts" in refusal(url, {**REAL, "alerts": []})
    assert "alerts.0" in refusal(url, webhook(["an alert"]))
    assert "alerts.0.status" in refusal(url, webhook([alert("X", status="on fire")]))
    no_name = alert("X")
    no_name["labels"] = {}
    assert refusal(url, webhook([no_name])) == {
        "alerts.0.labels": "Value error, labels must include alertname"
    }
    assert "alerts.0.annotations" in refusal(
        url, webhook([{**alert("X"), "annotations": ["a list"]}])
    )
    assert "alerts.0.startsAt" in refusal(url, webhook([{**alert("X"), "startsAt": "soon"}]))
    assert "truncatedAlerts" in refusal(url, {**REAL, "truncatedAlerts": -1})
    # Sizes are bounded: a label value, the number of labels, the number of alerts.
    assert "alerts.0.labels.note" in refusal(url, webhook([alert("X", note="x" * 2001)]))
    many = {f"l{i}": "v" for i in range(64)}
    assert "alerts.0.labels" in refusal(url, webhook([alert("X", **many)]))
    assert "alerts" in refusal(url, webhook([alert("X")] * 1001))
    # The problems named are bounded too, however many there are.
    assert len(refusal(url, webhook([{"status": "?"}] * 500))) == 10
    assert httpx.post(url, content=b"[" + b"1," * 600_000 + b"1]").status_code == 413
    receiver.stop()
    assert "REFUSED webhook: [{'path': 'alerts.0.status'" in receiver.output()


def test_nothing_is_kept_from_a_refused_webhook(run_example) -> None:
    receiver = run_example(RECEIVER)
    url = f"{receiver.url}/alerts"
    assert httpx.post(url, json=webhook([alert("Before")])).json() == {"received": 1}
    # One good alert and one bad: the whole webhook is refused, the good one too.
    assert refusal(url, webhook([alert("Good"), alert("Bad", status="?")])) == {
        "alerts.1.status": "Input should be 'firing' or 'resolved'"
    }
    assert [a["labels"]["alertname"] for a in httpx.get(url).json()["alerts"]] == ["Before"]
    receiver.stop()
    printed = receiver.output()
    assert "FIRING Before" in printed
    assert "Good" not in printed.replace("REFUSED", "")  # nothing half-delivered
    assert "'path': 'alerts.1.status'" in printed  # the refusal is on record


def test_the_receiver_keeps_the_last_alerts_and_prints_bounded_lines(run_example) -> None:
    receiver = run_example(RECEIVER, env={"KEEP": "2"})
    url = f"{receiver.url}/alerts"
    answer = httpx.post(url, json=webhook([alert("A"), alert("B", "resolved"), alert("C")]))
    assert answer.json() == {"received": 3}
    kept = httpx.get(url).json()["alerts"]
    assert [(a["labels"]["alertname"], a["status"]) for a in kept] == [
        ("B", "resolved"),
        ("C", "firing"),
    ]
    httpx.post(url, json=webhook([alert("D", summary="x" * 1000)]))
    httpx.post(url, json=webhook([alert("E", note="a\nb")]))
    receiver.stop()
    lines = [line for line in receiver.output().splitlines() if line.startswith(("FIRING", "RES"))]
    assert lines[:3] == ["FIRING A : ", "RESOLVED B : ", "FIRING C : "]
    assert lines[3] == "FIRING D : " + "x" * (200 - len("FIRING D : ")) + "..."
    assert lines[4] == "FIRING E note=a?b: "  # one line per alert, always
    assert len(lines) == 5


def test_the_receiver_refuses_a_bad_keep() -> None:
    for keep, message in [
        ("0", "KEEP: Input should be greater than 0"),
        ("ten", "KEEP: Input should be a valid integer"),
        ("-1", "KEEP: Input should be greater than 0"),
    ]:
        assert_refuses_to_start(RECEIVER, {"KEEP": keep}, message)


# --- the live pipeline --------------------------------------------------------


QUICK = "250ms"  # rule evaluation, for:, Alertmanager's waits: instead of minutes


def shorten_waits(directory: Path) -> None:
    """Seconds instead of minutes: the same pipeline, in the time a test can wait."""
    prometheus = yaml.safe_load((directory / "prometheus.yml").read_text())
    # Scrapes stay at 1 s (a probe gets a whole second, even on a busy machine).
    prometheus["global"] = {"scrape_interval": "1s", "evaluation_interval": QUICK}
    (directory / "prometheus.yml").write_text(yaml.safe_dump(prometheus))
    rules = yaml.safe_load((directory / "alert_rules.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        if "for" in rule:  # alerts only: a recording rule has no for
            rule["for"] = QUICK
    (directory / "alert_rules.yml").write_text(yaml.safe_dump(rules))
    manager = yaml.safe_load((directory / "alertmanager.yml").read_text())
    manager["route"].update(group_wait=QUICK, group_interval=QUICK, repeat_interval="1h")
    (directory / "alertmanager.yml").write_text(yaml.safe_dump(manager))


def alerts_named(receiver_url: str, name: str) -> list[dict]:
    alerts = httpx.get(f"{receiver_url}/alerts").json()["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name]


def test_health_failing_fires_then_resolves(
    run_example, postgres_server, redis_server, tmp_path: Path
) -> None:
    sysdeps.require("promtool", "amtool")
    # The page's ports, each replaced by a free one.
    ports = {port: free_port() for port in ("9093", "9115", "9090", "4000", "4001", "5001")}

    def local(line: str) -> str:
        line = line.replace(READER_DIR, str(tmp_path)).replace(" snippets/", f" {ROOT}/snippets/")
        line = line.replace("=snippets/", f"={ROOT}/snippets/")
        return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"{LOOPBACK}:{ports[m.group(1)]}", line)

    lines = [local(line) for line in commands("snippets/observability/alerting_run.sh")]
    *prepare, blackbox, manager, prometheus = lines
    for line in prepare[:4]:  # mkdir, render, copy, render
        subprocess.run(["bash", "-c", line], cwd=ROOT, check=True)
    shorten_waits(tmp_path)
    for line in prepare[4:]:  # promtool check config, amtool check-config
        checked = subprocess.run(
            split(line)[1], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout + checked.stderr

    # Prometheus resends firing alerts every 250 ms instead of every minute.
    services = [
        start_daemon("blackbox", split(blackbox)[1], ports["9115"], tmp_path),
        start_daemon("alertmanager", split(manager)[1], ports["9093"], tmp_path),
        start_daemon(
            "prometheus",
            [*split(prometheus)[1], f"--rules.alert.resend-delay={QUICK}"],
            ports["9090"],
            tmp_path,
        ),
    ]
    # The services start while Prometheus (2.42) makes its first scrape plans, which it
    # sends on a fixed 5 s tick: both waits overlap instead of adding up.
    started = [
        run_example(RECEIVER, port=ports["5001"], ready=""),
        run_example(
            HEALTH,
            port=ports["4001"],
            ready="",
            env={"DATABASE_URL": postgres_server.url, "REDIS_URL": redis_server.url},
        ),
        run_example(METRICS, port=ports["4000"], ready=""),
    ]
    receiver, health, metrics = started
    for service in started:
        wait_until(http_ok(f"{service.url}/health"), STARTUP_TIMEOUT, f"{service.name} ready")
    try:
        prometheus_url = f"http://{LOOPBACK}:{ports['9090']}"

        def query(promql: str) -> dict[str, float]:
            """{label values: value} of an instant query (labels other than __name__)."""
            answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql})
            assert answer.status_code == 200, answer.text
            return {
                ",".join(v for k, v in sorted(r["metric"].items()) if k != "__name__"): float(
                    r["value"][1]
                )
                for r in answer.json()["data"]["result"]
            }

        # Real traffic for the other two rules, 404s included: their recorded
        # series exist for the real metric names, and stay under the thresholds.
        # The first request creates the route's series; a rate counts only what
        # happens after Prometheus first saw them, so wait for that scrape first
        # (it comes with the first health probe).
        httpx.get(f"{metrics.url}/recipes/42")
        health_url = f"http://{LOOPBACK}:{health.port}/health"
        wait_until(
            lambda: query("probe_success") == {f"{health_url},recipe-api-health": 1.0},
            20,
            "a successful health probe",
        )
        wait_until(
            lambda: query('http_responses_total{route="/recipes/<recipe_id:int>"}'),
            20,
            "the recipe route's first scrape",
        )
        for recipe_id in (42,) * 20 + (1,) * 5:
            httpx.get(f"{metrics.url}/recipes/{recipe_id}")

        def recipe_p99() -> float:
            p99 = query("job_route:http_request_duration_seconds:p99_5m")
            return p99.get("recipe-api,/recipes/<recipe_id:int>", math.nan)

        wait_until(lambda: not math.isnan(recipe_p99()), 20, "the recorded p99 of the recipes")
        assert 0 < recipe_p99() < 0.25
        assert query("job:http_5xx_per_response:ratio_rate5m") == {"recipe-api": 0.0}
        assert not alerts_named(receiver.url, "HealthCheckFailing")

        postgres_server.stop()  # /health now answers 500 DOWN
        try:
            wait_until(
                lambda: any(
                    a["status"] == "firing"
                    for a in alerts_named(receiver.url, "HealthCheckFailing")
                ),
                30,
                "HealthCheckFailing to arrive firing",
            )
        finally:
            postgres_server.start()  # session-scoped: later tests need it
        wait_until(
            lambda: any(
                a["status"] == "resolved" for a in alerts_named(receiver.url, "HealthCheckFailing")
            ),
            30,
            "HealthCheckFailing to arrive resolved",
        )
        # Every rule evaluated without error; the other two alerts never left "inactive".
        groups = httpx.get(f"{prometheus_url}/api/v1/rules").json()["data"]["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        assert len(rules) == 5
        assert {name: r["health"] for name, r in rules.items()} == dict.fromkeys(rules, "ok")
        assert rules["HighErrorRate"]["state"] == rules["SlowRequestsP99"]["state"] == "inactive"
    finally:
        stop_daemons(services)
    # The receiver heard of nothing else either.
    names = {a["labels"]["alertname"] for a in httpx.get(f"{receiver.url}/alerts").json()["alerts"]}
    assert names == {"HealthCheckFailing"}
    receiver.stop()
    printed = [line for line in receiver.output().splitlines() if "HealthCheckFailing" in line]
    shown = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:4001", "\n".join(printed[:1] + printed[-1:]))
    assert_output_is_shown(shown + "\n", SNIPPETS / "alerting_receiver.out")
