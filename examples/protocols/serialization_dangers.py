"""The dangers of serializing objects, in Python.

Three short demonstrations, each printing what happened:

1. Serializing a record as it is (`vars()`, `dataclasses.asdict()`, or orjson,
   which encodes any dataclass natively) sends every field, the secret ones
   included.
2. `pickle.loads` on bytes that came from the network runs code that the
   sender chose. The payload here only calls `print`, to show that it ran.
3. The fix: an explicit response schema that names the fields a client sees.

Run it:

    python examples/protocols/serialization_dangers.py

No environment variables, no arguments.
"""

from __future__ import annotations

import dataclasses
import json
import pickle  # nosec B403  # the danger this example shows
from typing import TypedDict

import orjson


# --8<-- [start:record]
@dataclasses.dataclass
class RecipeRecord:
    id: int
    name: str
    supplier_price_cents: int  # a business secret
    internal_note: str  # for staff only


record = RecipeRecord(42, "Chicken Tikka Masala", 1234, "30% off until March; do not publish")
# --8<-- [end:record]


def show(expression: str, encoded: bytes | str) -> None:
    text = encoded.decode() if isinstance(encoded, bytes) else encoded
    secrets = [name for name in ("supplier_price_cents", "internal_note") if name in text]
    print(f"   {expression}\n     {text}\n     leaks: {', '.join(secrets) or 'nothing'}")


def serialize_the_object() -> None:
    print("1. Serializing the object itself")
    # --8<-- [start:leaks]
    show("json.dumps(vars(record))", json.dumps(vars(record)))
    show("json.dumps(dataclasses.asdict(record))", json.dumps(dataclasses.asdict(record)))
    show("orjson.dumps(record)", orjson.dumps(record))  # orjson encodes dataclasses natively
    # --8<-- [end:leaks]
    print()


# --8<-- [start:pickle]
class Payload:
    """What an attacker sends: unpickling calls whatever __reduce__ returns."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        # A real attacker returns (os.system, ("...",)). We only print, to prove it ran.
        return (print, ("     !! this line was printed by pickle.loads, chosen by the sender",))


def unpickle_from_the_network() -> None:
    print("2. pickle.loads on bytes from the network")
    received = pickle.dumps(Payload())  # imagine these bytes arrived in a request body
    print(f"   {len(received)} bytes received, naming builtins.print: {b'print' in received}")
    print("   calling pickle.loads(received)...")
    result = pickle.loads(received)  # noqa: S301 - the danger this example shows  # nosec B301
    print(f"   pickle.loads returned {result!r}, after running the sender's function")
    # The same attempt as JSON is only data: json.loads builds dicts, lists,
    # strings, numbers, booleans and None, and calls nothing.
    body = '{"id": 42, "name": "Chicken Tikka Masala"}'
    print(f"   json.loads of a JSON body only builds data: {json.loads(body)!r}")
    print()


# --8<-- [end:pickle]


# --8<-- [start:schema]
class PublicRecipe(TypedDict):
    id: int
    name: str


def to_public(record: RecipeRecord) -> PublicRecipe:
    return {"id": record.id, "name": record.name}


# --8<-- [end:schema]


def explicit_schema() -> None:
    print("3. An explicit response schema")
    show("orjson.dumps(to_public(record))", orjson.dumps(to_public(record)))


def main() -> None:
    serialize_the_object()
    unpickle_from_the_network()
    explicit_schema()


if __name__ == "__main__":
    main()
