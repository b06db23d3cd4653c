"""The "Parameter checking and deserialization" page's claims, on real sockets and processes.

validated_service refuses each kind of bad value with a 4xx naming the field; the
dangerous deserializers run an attacker's payload (it writes a marker file in a
scratch directory) and their safe counterparts refuse the very same payload.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from kit import sysdeps
from kit.examples import RunningExample, assert_output_is_shown, command_for
from kit.process import ROOT
from kit.snippets import run_script

SERVICE = "security/validated_service.py"
DEMO = "security/deserialize_demo.py"
SNIPPETS = ROOT / "snippets" / "security"
CANARY = "canary-value-7f3a"  # a rejected value: it must never come back in an answer
MAX_BODY = 4096  # the test's MAX_BODY_BYTES


def recipe(**changes: object) -> dict:
    good = {
        "name": "Tomato soup",
        "steps": "Simmer.",
        "ingredients": [{"name": "tomato", "quantity": "6"}],
        "tags": ["soup", "vegan"],
    }
    return {**good, **changes}


@pytest.fixture(scope="module")
def service(run_shared_example) -> RunningExample:
    return run_shared_example(SERVICE, env={"MAX_BODY_BYTES": str(MAX_BODY)})


@pytest.fixture(scope="module")
def client(service: RunningExample):
    with httpx.Client(base_url=service.url, timeout=10) as client:
        yield client


def test_a_valid_recipe_is_created_listed_and_read(client: httpx.Client) -> None:
    created = client.post("/recipes", json=recipe())
    assert created.status_code == 201, created.text
    recipe_id = created.json()["id"]
    assert client.get(f"/recipes/{recipe_id}").json()["name"] == "Tomato soup"
    listed = client.get("/recipes", params={"tag": "vegan", "limit": "5"})
    assert listed.status_code == 200
    assert recipe_id in [r["id"] for r in listed.json()["recipes"]]


BAD_VALUES = {
    "unknown field": ("POST", "/recipes", recipe(admin=CANARY), ["body", "admin"]),
    "string too long": ("POST", "/recipes", recipe(name="x" * 101), ["body", "name"]),
    "wrong type": ("POST", "/recipes", recipe(name=123), ["body", "name"]),
    "number as string": (
        "POST", "/recipes", recipe(ingredients=[{"name": "egg", "quantity": 2}]),
        ["body", "ingredients", 0, "quantity"],
    ),
    "too many items": (
        "POST", "/recipes", recipe(ingredients=[{"name": "salt", "quantity": "1"}] * 51),
        ["body", "ingredients"],
    ),
    "nested unknown field": (
        "POST", "/recipes", recipe(ingredients=[{"name": "salt", "quantity": "1", "x": 1}]),
        ["body", "ingredients", 0, "x"],
    ),
    "tag not matching its pattern": (
        "POST", "/recipes", recipe(tags=["<script>"]), ["body", "tags", 0]
    ),
    "query parameter of the wrong type": ("GET", "/recipes?limit=ten", None, ["query", "limit"]),
    "query parameter out of range": ("GET", "/recipes?limit=1000", None, ["query", "limit"]),
    "query parameter repeated": ("GET", "/recipes?limit=1&limit=2", None, ["query", "limit"]),
    "unknown query parameter": ("GET", f"/recipes?{CANARY}=1", None, ["query", CANARY]),
    "path parameter not a number": ("GET", "/recipes/abc", None, ["path", "recipe_id"]),
    "path parameter out of range": ("GET", "/recipes/0", None, ["path", "recipe_id"]),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_VALUES, ids=str)
def test_each_kind_of_bad_value_is_a_422_naming_the_field(client: httpx.Client, case: str) -> None:
    method, path, body, loc = BAD_VALUES[case]
    response = client.request(method, path, json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert loc in [problem["loc"] for problem in problems], problems
    if case != "unknown query parameter":  # there the field's name is the canary
        assert CANARY not in response.text  # the rejected value is never echoed


def test_the_same_request_without_the_bad_value_is_accepted(client: httpx.Client) -> None:
    """The control: the refusals above come from the bad value alone."""
    assert client.post("/recipes", json=recipe(name="x" * 100)).status_code == 201
    assert client.post("/recipes", json=recipe(tags=["a"] * 10)).status_code == 201
    assert client.get("/recipes?limit=100").status_code == 200


def test_a_body_that_is_not_json_is_a_400(client: httpx.Client) -> None:
    response = client.post("/recipes", content=b"name=soup&admin=1")
    assert response.status_code == 400
    assert response.json()["problems"] == [{"loc": ["body"]}]


def test_an_oversized_body_is_a_413_and_a_body_at_the_limit_is_read(
    client: httpx.Client,
) -> None:
    padding = " " * (MAX_BODY - len(httpx.Request("POST", "/", json=recipe()).content))
    at_limit = httpx.Request("POST", "/", json=recipe()).content + padding.encode()
    assert len(at_limit) == MAX_BODY
    assert client.post("/recipes", content=at_limit).status_code == 201
    response = client.post("/recipes", content=at_limit + b" ")
    assert response.status_code == 413
    assert response.json()["problems"][0]["loc"] == ["body"]


# --- deserializers ------------------------------------------------------------------


def demo(kind: str, cwd: Path, *flags: str) -> str:
    """The demo's run line, with KIND and the flags, run in the scratch directory `cwd`."""
    env, argv = command_for(DEMO)
    script = str(ROOT / argv[1])
    result = subprocess.run(
        [argv[0], script, kind, "marker.txt", *flags],
        cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_the_run_line_uses_the_safe_loader() -> None:
    _, argv = command_for(DEMO)
    assert argv[2:] == ["pickle", "marker.txt"]
    assert "--unsafe" not in argv


@pytest.mark.parametrize("kind", ["pickle", "yaml", "eval"])
def test_the_dangerous_loader_runs_the_payload(kind: str, tmp_path: Path) -> None:
    output = demo(kind, tmp_path, "--unsafe")
    assert (tmp_path / "marker.txt").read_text() == "owned"  # the payload's code ran
    assert f"{kind} (unsafe): loaded the payload" in output


@pytest.mark.parametrize(
    ("kind", "error"),
    [("pickle", "UnpicklingError"), ("yaml", "ConstructorError"), ("eval", "ValueError")],
)
def test_the_safe_loader_refuses_the_same_payload(kind: str, error: str, tmp_path: Path) -> None:
    output = demo(kind, tmp_path)
    assert not (tmp_path / "marker.txt").exists()
    assert f"{kind} (safe): refused: {error}: " in output
    assert "marker.txt exists: False" in output


def test_the_page_shows_a_real_run_of_all_six(tmp_path: Path) -> None:
    result = run_script(SNIPPETS / "attack_deserialize.sh", {"TMPDIR": str(tmp_path)})
    assert_output_is_shown(
        result.stdout,
        SNIPPETS / "attack_deserialize.out",
        normalize=lambda text: re.sub(r" at 0x[0-9a-f]+", " at 0x...", text),
    )


def bandit(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-f", "custom", "--msg-template", "{test_id}",
         *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.stdout


def test_bandit_flags_the_demo_only_where_a_justified_nosec_stands() -> None:
    """Without its `# nosec` comments bandit finds each dangerous call in the demo (the
    danger is real); with them, nothing; the services themselves hold none at all."""
    demo_file = "examples/security/deserialize_demo.py"
    found = set(bandit("--ignore-nosec", demo_file).split())
    assert {"B301", "B307", "B403", "B506"} <= found
    assert bandit(demo_file).split() == []
    services = ["examples/security/validated_service.py", "examples/security/injection_service.py"]
    assert bandit("--ignore-nosec", *services).split() == []
    for path in services:
        assert "nosec" not in (ROOT / path).read_text()


def test_the_try_script_prints_what_the_page_shows(service: RunningExample) -> None:
    sysdeps.require("curl")
    result = run_script(SNIPPETS / "attack_try.sh", {"SERVICE": service.url})
    assert_output_is_shown(result.stdout, SNIPPETS / "attack_try.out")
