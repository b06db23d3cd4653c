"""A chaos layer for Sanic services: faults injected at configured rates.

Not a service of its own: a service's settings inherit `ChaosSettings` and it
calls `install_chaos(app, settings)` (examples/resilience/chaos_recipe_api.py
does). Then every request except `GET /health` meets, in this order, each with
its own draw of a seeded random generator:

- crash (`CHAOS_CRASH_RATE`): a log line, then `os._exit(86)` at once: no
  cleanup, no answer, every request in flight on this process lost, as in a
  segfault or an out-of-memory kill. Exit code 86 tells the supervisor, and you,
  that the chaos layer did it;
- pause (`CHAOS_PAUSE_RATE`, `CHAOS_PAUSE_MS`): a blocking `time.sleep()`, on purpose, on
  the event loop: it simulates a stall of the whole process (a long
  garbage collection, a blocking call someone slipped in), so every request on
  this process waits, and so do its health checks;
- delay (`CHAOS_DELAY_RATE`, `CHAOS_DELAY_MS`): `await asyncio.sleep()`, a slow
  upstream call: this request waits, the others go on;
- error (`CHAOS_ERROR_RATE`): 503 `{"error": "chaos"}`, a failed upstream call;
- drop (`CHAOS_DROP_RATE`): the connection closed without an answer.

`GET /health` is spared the request-level faults, so that the health checks
report the process (crashed, paused or fine), not the dice. All rates 0 (the
default) turn the layer off. SIGUSR1 stops the injection at run time and
SIGUSR2 resumes it at the configured rates, without a restart; `GET /health`
says which (`"chaos": "on"` or `"off"`). Each fault injected is logged as one
line `chaos: <kind> ...`.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter

from pydantic import Field
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.log import logger as log
from sanic.response import HTTPResponse, json

CRASH_EXIT_CODE = 86  # not 1 (an exception), 2 (bad settings) or 128+n (a signal)
SPARED = frozenset({"/health"})  # health checks see the process, not the dice


# --8<-- [start:settings]
class ChaosSettings(BaseSettings):
    """CHAOS_* from the environment: rates in [0, 1], times in milliseconds."""

    chaos_crash_rate: float = Field(0.0, ge=0, le=1)
    chaos_pause_rate: float = Field(0.0, ge=0, le=1)
    chaos_pause_ms: int = Field(300, ge=0, le=60_000)
    chaos_delay_rate: float = Field(0.0, ge=0, le=1)
    chaos_delay_ms: int = Field(200, ge=0, le=60_000)
    chaos_error_rate: float = Field(0.0, ge=0, le=1)
    chaos_drop_rate: float = Field(0.0, ge=0, le=1)
    chaos_seed: int = Field(0, ge=0)  # the same seed, the same sequence of draws


# --8<-- [end:settings]


class Chaos:
    """The rates, the seeded generator, the switch and what was injected so far."""

    def __init__(self, settings: ChaosSettings) -> None:
        self.rates = {
            "crash": settings.chaos_crash_rate,
            "pause": settings.chaos_pause_rate,
            "delay": settings.chaos_delay_rate,
            "error": settings.chaos_error_rate,
            "drop": settings.chaos_drop_rate,
        }
        self.pause = settings.chaos_pause_ms / 1000
        self.delay = settings.chaos_delay_ms / 1000
        self.rng = random.Random(settings.chaos_seed)  # noqa: S311 (dice, not secrets)  # nosec B311
        self.configured = any(self.rates.values())
        self.on = self.configured
        self.injected: Counter[str] = Counter()

    def draw(self) -> set[str]:
        # One draw per kind on every request, hit or not, before acting on any:
        # the sequence of faults depends on the seed and the request count alone.
        hits = {kind for kind, rate in self.rates.items() if self.rng.random() < rate}
        if "crash" in hits:
            hits = {"crash"}  # nothing else happens after it
        elif "error" in hits:
            hits.discard("drop")  # answered already: nothing left to drop
        self.injected.update(hits)
        return hits

    def switch(self, on: bool) -> None:
        self.on = on and self.configured
        log.warning("chaos: %s (injected so far: %s)", "on" if self.on else "off", self.counts())

    def counts(self) -> str:
        return ", ".join(f"{kind} {self.injected[kind]}" for kind in self.rates)


# --8<-- [start:inject]
async def inject(request: Request) -> HTTPResponse | None:
    chaos: Chaos = request.app.ctx.chaos
    if not chaos.on or request.path in SPARED:
        return None
    hits = chaos.draw()
    if "crash" in hits:
        log.critical("chaos: crash, exit code %d", CRASH_EXIT_CODE)
        os._exit(CRASH_EXIT_CODE)  # no cleanup, no answer: as a hard crash would
    if "pause" in hits:
        log.warning("chaos: pause %gs, event loop blocked", chaos.pause)
        time.sleep(chaos.pause)  # noqa: ASYNC251 (blocks the loop on purpose: a stall)
    if "delay" in hits:
        log.warning("chaos: delay %gs", chaos.delay)
        await asyncio.sleep(chaos.delay)  # this request alone waits
    if "error" in hits:
        log.warning("chaos: error 503")
        return json({"error": "chaos"}, status=503)
    if "drop" in hits:
        log.warning("chaos: drop the connection")
        request.transport.abort()  # closed without an answer
        return HTTPResponse(status=204)  # the handler does not run; nothing is sent
    return None


def install_chaos(app: Sanic, settings: ChaosSettings) -> None:
    """Inject faults into every request of `app` (but /health), at `settings`' rates."""
    app.ctx.chaos = Chaos(settings)
    app.on_request(inject, priority=1000)  # before the service's own middleware

    @app.before_server_start
    async def chaos_switch(app: Sanic) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, app.ctx.chaos.switch, False)
        loop.add_signal_handler(signal.SIGUSR2, app.ctx.chaos.switch, True)
        if app.ctx.chaos.on:
            log.warning("chaos: on, rates %s", app.ctx.chaos.rates)


# --8<-- [end:inject]
