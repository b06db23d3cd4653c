"""The kit as a pytest plugin: every fixture a test may ask for by name.

tests/conftest.py registers this module once (`pytest_plugins`).
"""

from __future__ import annotations

import pytest

from kit import process

pytest_plugins = [
    "kit.examples",
    "kit.fake_upstream",
    "kit.services.redis",
    "kit.services.postgresql",
    "kit.services.haproxy",
    "kit.services.prometheus",
    "kit.services.rsyslog",
    "kit.services.graphite",
    "kit.services.span_receiver",
]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """No process outlives the session, whatever a test left behind."""
    process.stop_all()
