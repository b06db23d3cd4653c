"""The kit as a pytest plugin: every fixture a test may ask for by name.

tests/conftest.py registers this module once (`pytest_plugins`).
"""

from __future__ import annotations

import signal

import pytest

from kit import process, sysdeps

pytest_plugins = [
    "kit.examples",
    "kit.fake_upstream",
    "kit.services.redis",
    "kit.services.postgresql",
    "kit.services.haproxy",
    "kit.services.memcached",
    "kit.services.prometheus",
    "kit.services.rsyslog",
    "kit.services.graphite",
    "kit.services.span_receiver",
    "kit.services.podman",
]


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI time-out, `kill`) ends the run like Ctrl-C does: fixtures are torn
    down and every process the kit started is stopped, instead of left orphaned."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Install what is missing once, in the main process, before any worker starts."""
    if not hasattr(session.config, "workerinput"):  # not an xdist worker
        sysdeps.require_everything()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """No process outlives the session, whatever a test left behind."""
    process.stop_all()
