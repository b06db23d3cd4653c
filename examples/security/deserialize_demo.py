"""Three deserializers that run code from their input, each beside a safe one.

`pickle.loads`, `yaml.load` with an unsafe Loader and `eval` all turn bytes
into objects by running whatever the bytes ask for. Given a payload an attacker
built, each writes a file (here: the harmless stand-in for "runs any command").
The safe counterparts (a pickle Unpickler that allows no globals,
`yaml.safe_load`, `ast.literal_eval` and `json.loads`) refuse the same payload.

Run it in a scratch directory: it builds the payload that writes MARKER, and
loads it with the safe loader, or with `--unsafe` the dangerous one:

    python examples/security/deserialize_demo.py pickle marker.txt

`pickle` may be replaced by `yaml` or `eval`. It prints what the loader did and
whether MARKER exists afterwards. Never use the dangerous loaders on input that
crossed a trust boundary (a request, a queue, a file a user uploaded): no
service of this site does.
"""

from __future__ import annotations

import argparse
import ast
import io
import json

# This program exists to show pickle's danger, on its own payload: hence the nosec.
import pickle  # nosec B403
from pathlib import Path

import yaml


# --8<-- [start:payloads]
def code_writing(marker: Path) -> str:
    """Python that writes `marker`: what an attacker runs is up to them."""
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('owned')"


class Exploit:
    """pickle stores "call this with these arguments" for objects: any callable."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (self.code,))  # unpickling calls exec(code)


def payload(kind: str, marker: Path) -> bytes | str:
    code = code_writing(marker)
    if kind == "pickle":
        return pickle.dumps(Exploit(code))
    if kind == "yaml":
        return f"recipe: !!python/object/apply:builtins.exec [{json.dumps(code)}]\n"
    return code  # eval: a "number" or "list" from a query string, say


# --8<-- [end:payloads]


# --8<-- [start:unsafe]
def load_unsafe(kind: str, data: bytes | str) -> object:
    if kind == "pickle":
        # pickle.loads on untrusted bytes runs code. Allowed here (noqa, nosec) only
        # because this program exists to show it, on its own payload, in a scratch dir.
        return pickle.loads(data)  # noqa: S301  # nosec B301
    if kind == "yaml":
        # yaml.Loader (like yaml.unsafe_load) builds any Python object the tags name.
        # Allowed here for the same reason: the danger shown, on the demo's own payload.
        return yaml.load(data, Loader=yaml.Loader)  # noqa: S506  # nosec B506
    # eval runs any expression, a call included. Allowed here for the same reason.
    return eval(data)  # noqa: S307  # nosec B307


# --8<-- [end:unsafe]


# --8<-- [start:safe]
class NoGlobals(pickle.Unpickler):
    """An unpickler that loads plain data only: every class or function is refused."""

    def find_class(self, module: str, name: str) -> object:
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def load_safe(kind: str, data: bytes | str) -> object:
    if kind == "pickle":
        return NoGlobals(io.BytesIO(data)).load()  # find_class refuses every global
    if kind == "yaml":
        return yaml.safe_load(data)  # plain YAML: maps, lists, strings, numbers
    try:
        return json.loads(data)  # data is data: JSON first...
    except ValueError:
        return ast.literal_eval(data)  # ...or Python literals, and nothing that runs


# --8<-- [end:safe]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["pickle", "yaml", "eval"])
    parser.add_argument("marker", type=Path, help="the file the payload tries to write")
    parser.add_argument("--unsafe", action="store_true", help="use the dangerous loader")
    args = parser.parse_args()

    data = payload(args.kind, args.marker)
    loader, label = (load_unsafe, "unsafe") if args.unsafe else (load_safe, "safe")
    try:
        loader(args.kind, data)
        print(f"{args.kind} ({label}): loaded the payload")
    except (pickle.UnpicklingError, yaml.YAMLError, ValueError, SyntaxError) as error:
        first_line = str(error).splitlines()[0]
        print(f"{args.kind} ({label}): refused: {type(error).__name__}: {first_line}")
    print(f"{args.marker} exists: {args.marker.exists()}")


if __name__ == "__main__":
    main()
