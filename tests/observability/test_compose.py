"""The Docker stack for readers: snippets/observability/compose.yaml, validated without Docker.

No Docker engine runs here, but `docker-compose config` parses, interpolates and
validates a compose file without one. The tests run it on the committed file the
way compose_up.sh names it, then check what the page promises about the result.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from kit import sysdeps
from kit.process import ROOT
from kit.snippets import command

SNIPPETS = ROOT / "snippets" / "observability"
COMPOSE = "snippets/observability/compose.yaml"
EXAMPLES = ROOT / "examples" / "observability"


def up_command() -> tuple[dict[str, str], list[str]]:
    return command("snippets/observability/compose_up.sh")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`config` instead of `up --detach`, with Debian's docker-compose (v1, no daemon needed)."""
    program = sysdeps.require("docker-compose")["docker-compose"]
    _, words = up_command()
    assert words[:2] == ["docker", "compose"], words
    assert words[2:4] == ["-f", COMPOSE], words
    assert words[4:] == ["up", "--detach"], words
    clean = {k: v for k, v in os.environ.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    return subprocess.run(
        [program, "-f", COMPOSE, "config"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def config() -> dict:
    env, _ = up_command()
    assert set(env) == {"GRAFANA_ADMIN_PASSWORD"}, env
    result = compose_config(env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_stack_holds_the_books_collectors(config: dict) -> None:
    services = config["services"]
    assert set(services) == {
        "elasticsearch",
        "logstash",
        "kibana",
        "jaeger",
        "graphite",
        "grafana",
    }
    assert services["elasticsearch"]["image"].startswith("docker.elastic.co/elasticsearch/")
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")  # v2: OTLP
    assert services["grafana"]["image"].startswith("grafana/grafana:")


def test_every_image_is_pinned_to_a_version(config: dict) -> None:
    for name, service in config["services"].items():
        image, _, tag = service["image"].rpartition(":")
        assert image, name
        assert re.fullmatch(r"\d+(\.\d+)+(-\d+)?", tag), f"{name}: {service['image']}"


def test_every_port_is_published_on_loopback_only(config: dict) -> None:
    published = [port for s in config["services"].values() for port in s.get("ports", [])]
    assert published
    for port in published:
        assert str(port).startswith("127.0.0.1:"), port


def default_port(example: Path) -> int:
    """The default the example's docstring documents: "`PORT`: ... (default `3000`)"."""
    found = re.search(r"`PORT`: port to listen on \(default `(\d+)`\)", example.read_text())
    assert found, example
    return int(found[1])


def test_no_host_port_is_one_the_sample_services_use(config: dict) -> None:
    # Readers run web-api and recipe-api beside the stack, on their default ports.
    samples = ROOT / "examples" / "why_distributed"
    defaults = {default_port(samples / name) for name in ("web_api.py", "recipe_api.py")}
    assert defaults == {3000, 4000}
    host_ports = {
        int(str(port).split(":")[1])
        for service in config["services"].values()
        for port in service.get("ports", [])
    }
    assert not host_ports & defaults, host_ports & defaults
    assert "127.0.0.1:3001:3000/tcp" in config["services"]["grafana"]["ports"]


def published(config: dict, service: str) -> set[str]:
    """'5140/udp' style: container port and protocol as published on the host."""
    return {str(p).split(":", 2)[2] for p in config["services"][service]["ports"]}


def test_collector_ports_match_what_the_examples_send_to(config: dict) -> None:
    # logging_run.sh ships logs to 127.0.0.1:5140 over UDP: Logstash listens there.
    assert "LOG_UDP=127.0.0.1:5140" in (SNIPPETS / "logging_run.sh").read_text()
    assert "5140:5140/udp" in {
        str(p).split(":", 1)[1] for p in config["services"]["logstash"]["ports"]
    }
    assert "port => 5140" in (SNIPPETS / "logstash.conf").read_text()
    assert "codec => json" in (SNIPPETS / "logstash.conf").read_text()
    # OTLP_TRACES_URL's default (tracing.py) is 127.0.0.1:4318/v1/traces: Jaeger's OTLP/HTTP.
    assert "4318/tcp" in published(config, "jaeger")
    assert "receivers.otlp.protocols.http.endpoint=0.0.0.0:4318" in " ".join(
        config["services"]["jaeger"]["command"]
    )
    assert "8125/udp" in published(config, "graphite")


def test_mounted_files_are_committed(config: dict) -> None:
    mounts = [
        volume.split(":")[0]
        for service in config["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith("/")
    ]
    assert len(mounts) == 2
    for source in mounts:
        assert Path(source).is_file(), source
        assert Path(source).resolve().parent == SNIPPETS.resolve()
    provisioned = yaml.safe_load((SNIPPETS / "grafana_datasources.yml").read_text())
    kinds = {source["type"] for source in provisioned["datasources"]}
    assert kinds == {"elasticsearch", "jaeger", "graphite"}
    hosts = {re.sub(r"^http://([^:/]+).*$", r"\1", s["url"]) for s in provisioned["datasources"]}
    assert hosts <= set(config["services"])


def test_grafana_password_comes_from_the_environment() -> None:
    missing = compose_config({})
    assert missing.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in missing.stderr
    chosen = "s3cret-from-env"
    result = compose_config({"GRAFANA_ADMIN_PASSWORD": chosen})
    assert result.returncode == 0, result.stderr
    grafana = yaml.safe_load(result.stdout)["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == chosen
    assert chosen not in (SNIPPETS / "compose.yaml").read_text()
