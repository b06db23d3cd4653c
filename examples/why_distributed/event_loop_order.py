"""The asyncio event loop, what runs when.

One coroutine schedules six kinds of work before it first awaits: a
`call_soon` callback, a task that yields once with `await asyncio.sleep(0)`,
a `call_later(0)` timer, an I/O callback for a socket that is already
readable, and a job on the default thread pool that blocks for 100 ms. Each
callback prints one numbered line when it runs, so the output is the order in
which the loop ran them. Apart from the 100 ms job, nothing depends on timing:
the order comes from how `BaseEventLoop._run_once` fills and drains its queue.

Run it:

    python examples/why_distributed/event_loop_order.py

No environment variables, no arguments.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time

# --8<-- [start:say]
_counter = itertools.count(1)


def say(what: str) -> None:
    """Print one numbered line: the number is the order in which things ran."""
    print(f"{next(_counter)}. {what}")


# --8<-- [end:say]


# --8<-- [start:work]
def blocking_job() -> str:
    # Runs on a thread of the default executor, never on the loop, long enough
    # to land after everything else.
    time.sleep(0.1)  # blocks on purpose: this thread is not the loop's
    return "done"


async def child() -> None:
    say("task: first step, runs up to its first await")
    await asyncio.sleep(0)  # sleep(0) yields once: "run me again on the next turn"
    say("task: second step, after asyncio.sleep(0)")


# --8<-- [end:work]


# --8<-- [start:main]
async def main() -> None:
    loop = asyncio.get_running_loop()
    reader, writer = socket.socketpair()
    io_done = loop.create_future()

    def on_readable() -> None:
        data = reader.recv(16)
        loop.remove_reader(reader)
        say(f"I/O callback: the socket is readable, got {data!r}")
        io_done.set_result(None)

    loop.add_reader(reader, on_readable)
    writer.send(b"ping")  # readable from now on, before the loop ever polls

    loop.call_later(0, say, "call_later(0) timer")
    loop.call_soon(say, "call_soon callback")
    task = asyncio.create_task(child())
    job = loop.run_in_executor(None, blocking_job)
    job.add_done_callback(lambda _: say("thread pool job: its future is done"))
    say("main: synchronous code, before its first await")

    result = await job
    say(f"main: resumed with the job's result, {result!r}")
    await asyncio.gather(task, io_done)  # both finished long ago: no new lines
    reader.close()
    writer.close()


if __name__ == "__main__":
    asyncio.run(main())
# --8<-- [end:main]
