"""The fork server itself (see forkserver.py): `python _forkserver_main.py SOCKET`.

Imports what the examples import, then for each request on SOCKET forks a child
that runs the requested script, answers `{"pid": N}`, and when the child is
reaped answers `{"exit": code}` (negative for a signal, as Popen says it) and
closes that connection. End of file on stdin kills every child and ends it.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys

# What nearly every example imports; whatever one of them imports beyond this, it
# imports itself, as it would anyway. No module here may start a thread at import.
import httpx  # noqa: F401
import orjson  # noqa: F401
import pydantic  # noqa: F401
import pydantic_settings  # noqa: F401
import sanic
import sanic.errorpages
import sanic.handlers
import sanic.response  # noqa: F401

# SIGINT as this interpreter found it at start (ignored, when the test worker that
# started it ignores it): a plain `python script.py` started by that worker starts so.
INITIAL_SIGINT = signal.getsignal(signal.SIGINT)


def run_as_main(script: str) -> None:
    """What `python script.py` does with the script: a fresh `__main__` module.

    Also under the name `__mp_main__`, which multiprocessing aliased to the server's
    own `__main__` when it was imported here: results a process pool sends back
    are classes of the script's `__main__`, and must be found there.
    """
    import builtins
    import importlib.machinery
    import types

    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__spec__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    sys.modules["__main__"] = sys.modules["__mp_main__"] = main
    with open(script, "rb") as source:
        code = compile(source.read(), script, "exec")
    exec(code, main.__dict__)  # noqa: S102  # the script, as python itself runs it


def run_child(request: dict, close: list[int]) -> None:
    """In the forked child: become `python script.py` and never return."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, INITIAL_SIGINT)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        # One log file for both, or (for a one-shot program) one file each.
        for fd, path in ((1, request["log"]), (2, request.get("stderr") or request["log"])):
            opened = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        script = os.path.abspath(request["argv"][1])
        sys.argv = [script, *request["argv"][2:]]
        sys.path[0] = os.path.dirname(script)
        try:
            run_as_main(script)
            code = 0
        except SystemExit as stop:
            if stop.code is None:
                code = 0
            elif isinstance(stop.code, int):
                code = stop.code
            else:
                print(stop.code, file=sys.stderr)
                code = 1
        except KeyboardInterrupt:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            # As the interpreter does: die by the signal, so the parent sees it.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        import threading

        threading._shutdown()  # type: ignore[attr-defined]  # non-daemon threads, as at exit
        import atexit

        atexit._run_exitfuncs()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        os._exit(code & 0xFF if code >= 0 else 1)


def main() -> None:
    address = sys.argv[1]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address + ".tmp")
    listener.listen(64)
    os.rename(address + ".tmp", address)  # appears only once it accepts
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_read, selectors.EVENT_READ, "reap")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    children: dict[int, socket.socket] = {}

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = children.pop(pid, None)
            if connection is not None:
                with contextlib.suppress(OSError):
                    message = {"exit": os.waitstatus_to_exitcode(status)}
                    connection.sendall(json.dumps(message).encode() + b"\n")
                connection.close()

    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                connection, _ = listener.accept()
                with connection.makefile("r") as lines:
                    request = json.loads(lines.readline())
                close = [listener.fileno(), wake_read, wake_write, connection.fileno(),
                         selector.fileno(), *(c.fileno() for c in children.values())]  # fmt: skip
                pid = os.fork()
                if pid == 0:
                    run_child(request, close)
                children[pid] = connection
                connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
            elif key.data == "reap":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
                reap()
            elif not os.read(sys.stdin.fileno(), 4096):  # the test worker is gone
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                return


if __name__ == "__main__":
    main()
