"""recipe-api and web-api behave as "The two sample services" page says."""

from __future__ import annotations

import re
import signal
import threading

import httpx
import pytest
from kit import sysdeps
from kit.examples import RunningExample, assert_output_is_shown
from kit.process import LOOPBACK, ROOT, connections_to, free_port
from kit.snippets import run_script

RECIPE_API = "why_distributed/recipe_api.py"
WEB_API = "why_distributed/web_api.py"


@pytest.fixture(scope="module")
def recipe_api(run_shared_example) -> RunningExample:
    """One recipe-api for the read-only tests of this module."""
    return run_shared_example(RECIPE_API)


def assert_json_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert body["message"]
    return body


# --- recipe-api -----------------------------------------------------------


def test_recipe_api_returns_recipe_and_its_pid(recipe_api: RunningExample) -> None:
    response = httpx.get(f"{recipe_api.url}/recipes/42")
    assert response.status_code == 200
    body = response.json()
    assert body["producer_pid"] == recipe_api.pid
    assert body["recipe"]["id"] == 42
    assert body["recipe"]["name"] == "Chicken Tikka Masala"
    assert [i["name"] for i in body["recipe"]["ingredients"]] == ["Chicken", "Sauce"]


@pytest.mark.parametrize("path", ["/recipes/7", "/recipes/abc", "/recipes/4.2", "/recipes/"])
def test_recipe_api_unknown_or_malformed_id_is_404(recipe_api: RunningExample, path: str) -> None:
    assert_json_error(httpx.get(recipe_api.url + path), 404)


@pytest.mark.parametrize("recipe_id", ["0", "-1", str(2**31), "99999999999999999999"])
def test_recipe_api_out_of_range_id_is_400(recipe_api: RunningExample, recipe_id: str) -> None:
    body = assert_json_error(httpx.get(f"{recipe_api.url}/recipes/{recipe_id}"), 400)
    assert "between 1 and 2147483647" in body["message"]


def test_recipe_api_unknown_route_404_wrong_method_405(recipe_api: RunningExample) -> None:
    assert_json_error(httpx.get(f"{recipe_api.url}/nope"), 404)
    assert_json_error(httpx.post(f"{recipe_api.url}/recipes/42", json={}), 405)
    assert_json_error(httpx.delete(f"{recipe_api.url}/health"), 405)


# --- web-api ----------------------------------------------------------------


def test_web_api_returns_both_pids(run_example, recipe_api: RunningExample) -> None:
    web_api = run_example(WEB_API, env={"TARGET": recipe_api.url})
    body = httpx.get(web_api.url).json()
    assert body["consumer_pid"] == web_api.pid
    assert body["producer_data"]["producer_pid"] == recipe_api.pid
    assert body["producer_data"]["recipe"]["id"] == 42


def test_web_api_reuses_one_connection_to_recipe_api(
    run_example, recipe_api: RunningExample
) -> None:
    web_api = run_example(WEB_API, env={"TARGET": recipe_api.url})
    for _ in range(5):
        assert httpx.get(web_api.url).status_code == 200
    assert connections_to(web_api.pid, recipe_api.port) == 1


def test_web_api_502_when_recipe_api_is_down(run_example) -> None:
    recipe_api = run_example(RECIPE_API)
    web_api = run_example(WEB_API, env={"TARGET": recipe_api.url})
    assert httpx.get(web_api.url).status_code == 200
    assert recipe_api.stop() == 0
    response = httpx.get(web_api.url, timeout=10)
    assert response.status_code == 502
    assert response.json()["error"] == "recipe-api unavailable"
    assert httpx.get(f"{web_api.url}/health").status_code == 200


def test_web_api_502_when_connection_is_refused(run_example) -> None:
    nothing_there = f"http://{LOOPBACK}:{free_port()}"
    web_api = run_example(WEB_API, env={"TARGET": nothing_there})
    response = httpx.get(web_api.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": "ConnectError"}


BEHAVIOURS = {
    "silent": ({"never": True}, "no answer within 0.3s"),
    "500": ({"status": 500, "body": {"error": "boom"}}, "answered 500"),
    "not json": ({"body": "<html>maintenance</html>"}, "answered something that is not JSON"),
}


@pytest.mark.parametrize(("behaviour", "reason"), BEHAVIOURS.values(), ids=BEHAVIOURS.keys())
def test_web_api_502_when_recipe_api_misbehaves(run_example, fake_upstream, behaviour, reason):
    producer = fake_upstream().behave(**behaviour)
    web_api = run_example(WEB_API, env={"TARGET": producer.url, "TARGET_TIMEOUT": "0.3"})
    response = httpx.get(web_api.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": reason}


def test_web_api_finishes_in_flight_requests_on_sigterm(run_example, fake_upstream) -> None:
    producer = fake_upstream().behave(body={"producer_pid": 0, "recipe": {"id": 42}}, delay=0.5)
    web_api = run_example(WEB_API, env={"TARGET": producer.url})
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(target=lambda: result.update(r=httpx.get(web_api.url, timeout=10)))
    request.start()
    assert producer.arrived.wait(10), "the request never reached the producer"
    # web-api is now waiting on the slow producer: SIGTERM arrives mid-request
    assert web_api.stop(signal.SIGTERM) == 0
    request.join()
    assert result["r"].status_code == 200
    assert result["r"].json()["consumer_pid"] == web_api.pid


# --- the commands the page gives ------------------------------------------

TRY_SCRIPT = ROOT / "snippets/why_distributed/try_services.sh"
TRY_OUTPUT = ROOT / "snippets/why_distributed/try_services.out"


def without_pids(text: str) -> str:
    return re.sub(r'"(consumer|producer)_pid":\d+', r'"\1_pid":PID', text)


def test_try_services_script_prints_what_the_page_shows(run_example) -> None:
    sysdeps.require("curl")
    recipe_api = run_example(RECIPE_API)
    web_api = run_example(WEB_API, env={"TARGET": recipe_api.url})
    result = run_script(TRY_SCRIPT, {"RECIPE_API": recipe_api.url, "WEB_API": web_api.url})
    assert_output_is_shown(result.stdout, TRY_OUTPUT, normalize=without_pids)
    assert f'"consumer_pid":{web_api.pid}' in result.stdout
    assert f'"producer_pid":{recipe_api.pid}' in result.stdout


def test_recipe_api_access_log_is_off_unless_asked(run_example) -> None:
    quiet = run_example(RECIPE_API)
    logged = run_example(RECIPE_API, env={"ACCESS_LOG": "1"})
    for service in (quiet, logged):
        assert httpx.get(f"{service.url}/recipes/42").status_code == 200
    assert quiet.stop() == 0
    assert logged.stop() == 0
    assert "GET http://127.0.0.1" not in quiet.output()
    assert f"GET http://127.0.0.1:{logged.port}/recipes/42" in logged.output()


@pytest.mark.parametrize("accept", ["text/html", "text/plain", "*/*"])
def test_errors_are_json_whatever_the_client_accepts(recipe_api: RunningExample, accept) -> None:
    response = httpx.get(f"{recipe_api.url}/recipes/0", headers={"Accept": accept})
    assert_json_error(response, 400)
