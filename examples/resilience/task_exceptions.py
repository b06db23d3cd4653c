"""A background task fails and nobody awaits it: what asyncio does, and a policy.

A service starts a task to refresh prices and keeps serving (here: five ticks,
0.2 s apart). The task fails at once. What happens next depends on `--policy`:

- `none` (asyncio's default): the error is logged as "Task exception was never
  retrieved" when the task object is garbage-collected, and the process goes
  on, without its refresher, and exits 0. Nothing else notices.
- `keep-reference`: the same, with the task kept in a set: nothing is logged
  until the set goes away, after the last tick.
- `exit`: an exception handler installed with `loop.set_exception_handler`
  logs one critical record and the service stops: exit code 1, so that a
  supervisor restarts it.
- `taskgroup`: the task belongs to an `asyncio.TaskGroup`; its failure cancels
  the serving task and reaches `main` as an `ExceptionGroup`, caught with
  `except*`: exit code 1.

Run it:

    python examples/resilience/task_exceptions.py --policy none
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

log = logging.getLogger("prices")
TICKS = 5


# --8<-- [start:forgotten]
async def refresh_prices() -> None:
    raise ConnectionError("price feed refused the connection")


async def serve() -> None:
    for tick in range(1, TICKS + 1):
        await asyncio.sleep(0.2)
        print(f"tick {tick}: still serving", flush=True)


async def forgotten() -> int:
    asyncio.create_task(refresh_prices())  # noqa: RUF006 (nobody keeps it, nobody awaits it)
    await serve()
    return 0


# --8<-- [end:forgotten]


# --8<-- [start:kept]
async def kept() -> int:
    tasks: set[asyncio.Task[None]] = set()
    tasks.add(asyncio.create_task(refresh_prices()))  # a reference, never awaited
    await serve()
    return 0  # the set goes away with this frame, and the task with it


# --8<-- [end:kept]


# --8<-- [start:policy]
async def with_exit_policy() -> int:
    loop = asyncio.get_running_loop()
    serving = asyncio.create_task(serve())
    failed = False

    def crash(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Called for every error nobody handled: log it once, stop serving, exit 1.
        nonlocal failed
        log.critical("fatal: %s; exiting 1", context["message"], exc_info=context.get("exception"))
        failed = True
        serving.cancel()

    loop.set_exception_handler(crash)
    asyncio.create_task(refresh_prices())  # noqa: RUF006 (forgotten again)
    await asyncio.wait([serving])  # until it is done, or cancelled by the policy
    return 1 if failed else 0  # the supervisor restarts a whole, fresh process


# --8<-- [end:policy]


# --8<-- [start:taskgroup]
async def with_task_group() -> int:
    code = 0
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(refresh_prices())
            group.create_task(serve())  # cancelled when a sibling fails
    except* ConnectionError as failed:  # an ExceptionGroup, split by type
        log.critical("fatal: %r; exiting 1", failed.exceptions[0])
        code = 1  # no return inside except*
    return code


# --8<-- [end:taskgroup]

POLICIES = {
    "none": forgotten,
    "keep-reference": kept,
    "exit": with_exit_policy,
    "taskgroup": with_task_group,
}


def main() -> int:
    parser = argparse.ArgumentParser(description="A failing background task, four ways.")
    parser.add_argument("--policy", choices=POLICIES, default="none")
    args = parser.parse_args()
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    code = asyncio.run(POLICIES[args.policy]())
    print(f"exit code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
