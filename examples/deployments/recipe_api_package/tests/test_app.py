"""Unit tests of the installed package: fast, no network, no server started.

Run them from this directory after installing the package: `python -m pytest`.
"""

from __future__ import annotations

import pytest
from sanic.exceptions import BadRequest, NotFound

import recipe_api
from recipe_api.app import find_recipe, health, load_settings, parse_args


def test_health_reports_the_package_version() -> None:
    assert health() == {"status": "ok", "version": recipe_api.__version__}


def test_a_known_recipe_is_found() -> None:
    assert find_recipe(42)["name"] == "Chicken Tikka Masala"


def test_an_unknown_recipe_is_not_found() -> None:
    with pytest.raises(NotFound):
        find_recipe(7)


@pytest.mark.parametrize("recipe_id", [0, -1, 2**31])
def test_an_id_out_of_range_is_a_bad_request(recipe_id: int) -> None:
    with pytest.raises(BadRequest):
        find_recipe(recipe_id)


def test_settings_default_to_loopback_port_4000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 4000)


@pytest.mark.parametrize("port", ["abc", "0", "99999"])
def test_a_bad_port_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], port: str
) -> None:
    monkeypatch.setenv("PORT", port)
    with pytest.raises(SystemExit) as exited:
        load_settings()
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("configuration error: PORT: ")


def test_version_option_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"recipe-api {recipe_api.__version__}\n"
