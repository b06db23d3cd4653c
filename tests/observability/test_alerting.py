"""Alerting: the rules proven by promtool, then a real Prometheus, Alertmanager and receiver.

The live test runs the commands of snippets/observability/alerting_run.sh on
free ports, with the waits shortened (scrape and evaluation every second,
`for:` one second, Alertmanager's group waits one second) so that an alert
fires and resolves within seconds. The committed `for:` values are what
`promtool test rules` checks.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
from pathlib import Path

import httpx
import sysdeps
import yaml
from harness import LOOPBACK, ROOT, Service, assert_output_is_shown, free_port, wait_until

RECEIVER = "observability/alert_receiver.py"
HEALTH = "observability/health_service.py"
METRICS = "observability/metrics_service.py"
SNIPPETS = ROOT / "snippets" / "observability"
READER_DIR = "/tmp/recipe-alerts"  # noqa: S108  (the reader's directory in the script)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    sysdeps.require("promtool")
    return subprocess.run(
        ["promtool", *args], cwd=SNIPPETS, capture_output=True, text=True, check=False
    )


def test_the_rules_are_valid() -> None:
    result = promtool("check", "rules", "alert_rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 3 rules found" in result.stdout


def test_the_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alert_rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_is_rejected(tmp_path: Path) -> None:
    rules = yaml.safe_load((SNIPPETS / "alert_rules.yml").read_text())
    rules["groups"][0]["rules"][1]["expr"] = "sum by (job) (rate(http_responses_total[5m]) >"
    broken = tmp_path / "rules.yml"
    broken.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(broken))
    assert result.returncode != 0
    assert "HighErrorRate" in result.stdout + result.stderr or "parse error" in (
        result.stdout + result.stderr
    )


def test_an_unmet_expectation_fails_the_unit_tests(tmp_path: Path) -> None:
    """The unit tests can fail: claim the health alert fires after one failed probe."""
    tests = (SNIPPETS / "alert_rules_test.yml").read_text()
    tests = tests.replace(
        "rule_files:\n  - alert_rules.yml", f"rule_files:\n  - {SNIPPETS}/alert_rules.yml"
    )
    lying = tests.replace(
        "      - eval_time: 1m # one failed probe: pending, nothing sent\n"
        "        alertname: HealthCheckFailing\n"
        "        exp_alerts: []",
        "      - eval_time: 1m\n"
        "        alertname: HealthCheckFailing\n"
        "        exp_alerts:\n"
        "          - exp_labels: {severity: page}",
    )
    assert lying != tests
    (tmp_path / "lying.yml").write_text(lying)
    result = promtool("test", "rules", str(tmp_path / "lying.yml"))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


# --- the live pipeline --------------------------------------------------------


def webhook(alerts: list[dict]) -> dict:
    return {"version": "4", "status": "firing", "receiver": "webhook", "alerts": alerts}


def test_the_receiver_rejects_what_is_not_a_webhook(run_example) -> None:
    receiver = run_example(RECEIVER)
    url = f"{receiver.url}/alerts"
    assert httpx.post(url, content=b"{not json").status_code == 400
    for bad in (
        [],
        {"version": "3", "alerts": []},
        {"version": "4", "alerts": "all of them"},
        webhook([{"status": "on fire", "labels": {"alertname": "X"}}]),
        webhook([{"status": "firing", "labels": {}}]),
        webhook([{"status": "firing", "labels": {"alertname": "X"}, "annotations": []}]),
    ):
        answer = httpx.post(url, json=bad)
        assert answer.status_code == 422, bad
        assert answer.json()["error"] == "not an Alertmanager webhook"
    assert httpx.post(url, content=b"[" + b"1," * 600_000 + b"1]").status_code == 413
    alert = {"status": "firing", "labels": {"alertname": "X", "note": "a\nb"}, "annotations": {}}
    assert httpx.post(url, json=webhook([alert])).json() == {"received": 1}
    assert [a["labels"]["alertname"] for a in httpx.get(url).json()["alerts"]] == ["X"]
    receiver.stop()
    assert "FIRING X note=a?b: " in receiver.output()  # one line per alert, always


def script_lines() -> list[str]:
    text = (SNIPPETS / "alerting_run.sh").read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def shorten_waits(directory: Path) -> None:
    """Seconds instead of minutes: the same pipeline, in the time a test can wait."""
    prometheus = yaml.safe_load((directory / "prometheus.yml").read_text())
    prometheus["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    (directory / "prometheus.yml").write_text(yaml.safe_dump(prometheus))
    rules = yaml.safe_load((directory / "alert_rules.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        rule["for"] = "1s"
    (directory / "alert_rules.yml").write_text(yaml.safe_dump(rules))
    manager = yaml.safe_load((directory / "alertmanager.yml").read_text())
    manager["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    (directory / "alertmanager.yml").write_text(yaml.safe_dump(manager))


def alerts_named(receiver_url: str, name: str) -> list[dict]:
    alerts = httpx.get(f"{receiver_url}/alerts").json()["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name]


def test_health_failing_fires_then_resolves(
    run_example, postgres_server, redis_server, tmp_path: Path
) -> None:
    programs = sysdeps.require(
        "prometheus",
        "promtool",
        "prometheus-alertmanager",
        "amtool",
        "prometheus-blackbox-exporter",
    )
    receiver = run_example(RECEIVER)
    health = run_example(
        HEALTH, env={"DATABASE_URL": postgres_server.url, "REDIS_URL": redis_server.url}
    )
    metrics = run_example(METRICS)
    ports = {
        "9093": free_port(),
        "9115": free_port(),
        "9090": free_port(),
        "4000": metrics.port,
        "4001": health.port,
        "5001": receiver.port,
    }

    def local(line: str) -> str:
        line = line.replace(READER_DIR, str(tmp_path)).replace(" snippets/", f" {ROOT}/snippets/")
        line = line.replace("=snippets/", f"={ROOT}/snippets/")
        return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"{LOOPBACK}:{ports[m.group(1)]}", line)

    lines = [local(line) for line in script_lines()]
    *prepare, blackbox, manager, prometheus = lines
    for line in prepare[:4]:  # mkdir, render, copy, render
        subprocess.run(["bash", "-c", line], cwd=ROOT, check=True)
    shorten_waits(tmp_path)
    for line in prepare[4:]:  # promtool check config, amtool check-config
        checked = subprocess.run(
            shlex.split(line), cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout + checked.stderr

    services = []
    for name, line, extra in (
        ("blackbox", blackbox, []),
        ("alertmanager", manager, []),
        ("prometheus", prometheus, ["--rules.alert.resend-delay=1s"]),
    ):
        argv = shlex.split(line)
        argv[0] = programs[argv[0]]
        port = ports[{"blackbox": "9115", "alertmanager": "9093", "prometheus": "9090"}[name]]
        service = Service(name, [*argv, *extra], port, tmp_path, stop_signal=signal.SIGTERM)

        def ready(port: int = port) -> bool:
            try:
                return httpx.get(f"http://{LOOPBACK}:{port}/-/ready", timeout=0.5).is_success
            except httpx.TransportError:
                return False

        service.start(ready)
        services.append(service)
    try:
        prometheus_url = f"http://{LOOPBACK}:{ports['9090']}"

        def probe_success() -> list[str]:
            answer = httpx.get(
                f"{prometheus_url}/api/v1/query", params={"query": "probe_success"}
            ).json()
            return [r["value"][1] for r in answer["data"]["result"]]

        wait_until(lambda: probe_success() == ["1"], 20, "a successful health probe")
        assert not alerts_named(receiver.url, "HealthCheckFailing")

        postgres_server.stop()  # /health now answers 500 DOWN
        wait_until(
            lambda: any(
                a["status"] == "firing" for a in alerts_named(receiver.url, "HealthCheckFailing")
            ),
            30,
            "HealthCheckFailing to arrive firing",
        )
        postgres_server.start()
        wait_until(
            lambda: any(
                a["status"] == "resolved" for a in alerts_named(receiver.url, "HealthCheckFailing")
            ),
            30,
            "HealthCheckFailing to arrive resolved",
        )
    finally:
        for service in reversed(services):
            service.stop()
    for service in services:
        assert service.process is not None
        assert service.process.returncode == 0, service.log_path.read_text()
    # A healthy service with no errors raised none of the other alerts.
    names = {a["labels"]["alertname"] for a in httpx.get(f"{receiver.url}/alerts").json()["alerts"]}
    assert names == {"HealthCheckFailing"}
    receiver.stop()
    printed = [line for line in receiver.output().splitlines() if "HealthCheckFailing" in line]
    shown = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:4001", "\n".join(printed[:1] + printed[-1:]))
    assert_output_is_shown(shown + "\n", SNIPPETS / "alerting_receiver.out")
