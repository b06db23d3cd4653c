"""End a process in each of the ways a supervisor can tell apart.

A supervisor (systemd, Kubernetes, a shell script, a parent written in Python)
learns one thing when a child ends: its exit status. This program ends the way
its first argument asks, prints what it does, and prints `finally: cleanup ran`
from a `finally` block whenever that block gets to run.

Run it:

    python examples/resilience/exits.py ok

Ways (the shell's `$?` / Python's `returncode` after each):

- `ok`: returns normally: 0 / 0.
- `error`: prints one line on stderr and exits 1: 1 / 1.
- `raise`: an exception nobody catches: traceback, 1 / 1.
- `sigint`: sends itself SIGINT (what Ctrl-C does): `KeyboardInterrupt`,
  then Python ends by the signal: 130 / -2.
- `sigterm`: sends itself SIGTERM with no handler: 143 / -15, no cleanup.
- `sigkill`: tries to handle SIGKILL (refused), then sends it: 137 / -9.
- `wait`: waits up to a minute for a signal from outside, then exits 0.
- a word it does not know: usage error, 2 / 2 (argparse's convention).

`--graceful` installs a SIGTERM and SIGHUP handler that raises `SystemExit(0)`:
`finally` blocks run and the exit status is 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType

WAYS = ["ok", "error", "raise", "sigint", "sigterm", "sigkill", "wait"]


def say(message: str) -> None:
    # flush=True: a process killed by a signal never flushes its buffers,
    # and a pipe (a supervisor's log) is block-buffered.
    print(message, flush=True)


# --8<-- [start:graceful]
def stop_gracefully(signum: int, frame: FrameType | None) -> None:
    say(f"{signal.Signals(signum).name} received: exiting 0")
    raise SystemExit(0)  # unwinds the stack: finally blocks and atexit run


def install_graceful_stop() -> None:
    signal.signal(signal.SIGTERM, stop_gracefully)
    signal.signal(signal.SIGHUP, stop_gracefully)


# --8<-- [end:graceful]


# --8<-- [start:ways]
def end(way: str) -> int:
    if way == "ok":
        say("ok: done")
        return 0
    if way == "error":
        print("error: input.csv not found", file=sys.stderr)
        return 1
    if way == "raise":
        raise RuntimeError("nobody catches this")
    if way == "sigint":
        os.kill(os.getpid(), signal.SIGINT)  # Python turns it into KeyboardInterrupt
    elif way == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    elif way == "sigkill":
        try:
            signal.signal(signal.SIGKILL, stop_gracefully)
        except OSError as error:
            say(f"a SIGKILL handler is refused: {error!r}")
        os.kill(os.getpid(), signal.SIGKILL)
    elif way == "wait":
        say(f"pid {os.getpid()} waiting for a signal")
        time.sleep(60)  # on purpose: a sync CLI waiting for a signal
        return 0
    time.sleep(5)  # on purpose, never reached: a signal sent to oneself arrives at once
    say("still alive")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="End the process the way asked.")
    parser.add_argument("way", choices=WAYS)
    parser.add_argument("--graceful", action="store_true", help="handle SIGTERM and SIGHUP")
    args = parser.parse_args()  # a bad word: usage on stderr, exit 2
    if args.graceful:
        install_graceful_stop()
    try:
        return end(args.way)
    finally:
        say("finally: cleanup ran")


if __name__ == "__main__":
    sys.exit(main())
# --8<-- [end:ways]
