"""Which loops starve the event loop, and which do not.

A chain of work keeps the loop busy while two things wait to be serviced: a
socket that already has data to read, and a timer due 1 ms after the chain
starts. Four chains, each stopped after at most 100,000 links:

- a callback that reschedules itself with `loop.call_soon`;
- a task that loops on `await asyncio.sleep(0)`;
- a task that drains an `asyncio.Queue` that is already full: `await
  queue.get()` finds an item every time and never suspends;
- the same, with an `await asyncio.sleep(0)` every 100 items.

For each, the program prints after which link the I/O callback ran (or
"never", while the chain ran), and whether the timer fired before the chain
ended. The link numbers do not depend on timing: they follow from how
`BaseEventLoop._run_once` fills its queue. The timer is due after 1 ms, far
less than any chain that yields takes to run its links.

Run it:

    python examples/why_distributed/starvation.py

No environment variables, no arguments.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

LIMIT = 100_000  # links, at most, in a chain


# --8<-- [start:watch]
class Watch:
    """A socket with data waiting and a 1 ms timer, each noting how far a chain got."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.links = 0  # the chain adds one per link
        self.io_at: int | None = None
        self.timer_at: int | None = None
        self.serviced = asyncio.Event()  # set once both have run
        self.reader, self.writer = socket.socketpair()
        self.writer.send(b"request")  # readable from now on
        self.loop.add_reader(self.reader, self.on_readable)
        self.loop.call_later(0.001, self.on_timer)

    def on_readable(self) -> None:
        self.reader.recv(16)
        self.loop.remove_reader(self.reader)
        self.io_at = self.links
        self.check()

    def on_timer(self) -> None:
        self.timer_at = self.links
        self.check()

    def check(self) -> None:
        if self.io_at is not None and self.timer_at is not None:
            self.serviced.set()

    def more(self) -> bool:
        """Should the chain go on? Until both ran, or LIMIT links."""
        return not self.serviced.is_set() and self.links < LIMIT


# --8<-- [end:watch]


# --8<-- [start:chains]
async def call_soon_chain(watch: Watch) -> None:
    finished = watch.loop.create_future()

    def link() -> None:
        watch.links += 1
        if watch.more():
            watch.loop.call_soon(link)  # Node: process.nextTick(link) would starve I/O
        else:
            finished.set_result(None)

    watch.loop.call_soon(link)
    await finished


async def sleep_zero_loop(watch: Watch) -> None:
    while watch.more():
        watch.links += 1
        await asyncio.sleep(0)  # suspends: back of the queue, behind a fresh poll


# --8<-- [end:chains]


# --8<-- [start:queue]
def full_queue() -> asyncio.Queue[int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for item in range(LIMIT):
        queue.put_nowait(item)
    return queue


async def drain(watch: Watch) -> None:
    queue = full_queue()
    while not queue.empty():
        await queue.get()  # an item is there: returns it at once, never suspends
        watch.links += 1


async def drain_and_yield(watch: Watch) -> None:
    queue = full_queue()
    while not queue.empty():
        await queue.get()
        watch.links += 1
        if watch.links % 100 == 0:
            await asyncio.sleep(0)  # let the loop poll, run timers, other tasks


# --8<-- [end:queue]


# --8<-- [start:main]
async def run(name: str, chain: Callable[[Watch], Awaitable[None]]) -> None:
    watch = Watch()
    await chain(watch)
    io = "never" if watch.io_at is None else f"after link {watch.io_at}"
    timer = "yes" if watch.timer_at is not None else "no"
    await watch.serviced.wait()  # the starved ones get their turn now
    watch.reader.close()
    watch.writer.close()
    print(f"{name:<21} I/O serviced: {io:<15} timer fired during the chain: {timer}")


async def main() -> None:
    await run("call_soon chain", call_soon_chain)
    await run("sleep(0) loop", sleep_zero_loop)
    await run("drain a full queue", drain)
    await run("drain, sleep(0) /100", drain_and_yield)


if __name__ == "__main__":
    asyncio.run(main())
# --8<-- [end:main]
