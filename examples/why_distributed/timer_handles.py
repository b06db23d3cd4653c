"""Timers in asyncio: what `loop.call_later` gives back, and what it is for.

`loop.call_later(delay, callback)` returns an `asyncio.TimerHandle`, as
Node's `setTimeout` returns a `Timeout` object. The handle knows when it is
due, on the loop's own monotonic clock (`when()`), can be cancelled before it
fires (`cancel()`), and says whether it was (`cancelled()`). The program
prints numbered lines in the order things happen, so a timer that ran when it
should not have would show up as a line out of place; nothing is decided by
how long anything took.

Run it:

    python examples/why_distributed/timer_handles.py

No environment variables, no arguments.
"""

from __future__ import annotations

import asyncio
import itertools
import time

_counter = itertools.count(1)


def say(what: str) -> None:
    """Print one numbered line: the number is the order in which things ran."""
    print(f"{next(_counter)}. {what}")


# --8<-- [start:handle]
async def main() -> None:
    loop = asyncio.get_running_loop()

    in_ten = loop.call_later(10, say, "the 10 s timer fired")
    say(f"call_later returned a {type(in_ten).__name__}")
    # when() is an absolute time on the loop's clock, loop.time(), which is
    # time.monotonic(): it never jumps when the wall clock is set.
    say(f"when() is loop.time() + {round(in_ten.when() - loop.time())} s")
    before, on_loop, after = time.monotonic(), loop.time(), time.monotonic()
    say(f"loop.time() reads the monotonic clock: {before <= on_loop <= after}")
    in_ten.cancel()
    say(f"after cancel(), cancelled() is {in_ten.cancelled()}")

    loop.call_later(0.01, say, "the 10 ms timer fired")
    dropped = loop.call_later(0.02, say, "the cancelled 20 ms timer fired")
    dropped.cancel()
    await asyncio.sleep(0.05)  # wakes on a timer due after both of the others
    say("50 ms later: only the timer that was not cancelled has run")

    loop.call_later(3600, say, "an hour later")
    say("main returns with a timer still pending")


if __name__ == "__main__":
    asyncio.run(main())  # returns when main does: pending timers are dropped
    say("asyncio.run has returned, without waiting for the timer")
# --8<-- [end:handle]
