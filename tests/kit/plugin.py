"""The kit as a pytest plugin: every fixture a test may ask for by name.

tests/conftest.py registers this module once (`pytest_plugins`).
"""

from __future__ import annotations

import re
import signal
from typing import Any

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


# --- scheduling over xdist workers --------------------------------------------------
# `--dist loadfile` keeps a module on one worker, so that its module-scoped services
# are started once. Two refinements keep the run from ending on one long module:
# the longest modules are handed out first (the rest keep their order), and the
# contract module, the longest of all (about 110 s, every service of the site), is
# split per service: each service's checks stay together on one worker.
LONGEST_FIRST = (
    "tests/site/test_browser.py",
    "tests/scaling/test_workers.py",
    "tests/containers/test_images.py",
    "tests/containers/test_compose.py",
    "tests/observability/test_tracing.py",
    "tests/protocols/test_graphql.py",
    "tests/scaling/test_haproxy.py",
    "tests/protocols/test_http.py",
)
CONTRACT = "tests/test_contract.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: n for n, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadFileScheduling

    class FileOrServiceScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            if scope == CONTRACT and (service := re.search(r"\[([\w/]+\.py)", nodeid)):
                return f"{scope}::{service[1]}"
            return scope

    if config.getoption("dist") != "loadfile":
        return None  # another --dist: xdist's own scheduler
    return FileOrServiceScheduling(config, log)
