"""The comparison page: wire_bytes.py measures real bytes through a counting relay."""

from __future__ import annotations

import re

from kit.examples import assert_refuses_to_start, run_program

ROW = re.compile(
    r"^\| (?P<protocol>[^|]+) \| (?P<first_up>[\d,]+) B / (?P<first_down>[\d,]+) B "
    r"\| (?P<later_up>[\d,]+) B / (?P<later_down>[\d,]+) B \| (?P<payload>[\d,]+) B \|$",
    re.MULTILINE,
)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_wire_bytes_measures_each_protocol(run_example, grpc_stubs) -> None:
    http = run_example("protocols/http_producer.py")
    graphql = run_example("protocols/graphql_producer.py")
    grpc = run_example("protocols/grpc_producer.py", ready="port")
    output = run_program(
        "protocols/wire_bytes.py",
        env={
            "HTTP_TARGET": http.url,
            "GRAPHQL_TARGET": graphql.url,
            "GRPC_TARGET": f"127.0.0.1:{grpc.port}",
        },
    )
    rows = {
        m["protocol"]: {k: number(v) for k, v in m.groupdict().items() if k != "protocol"}
        for m in ROW.finditer(output)
    }
    assert list(rows) == ["JSON over HTTP/1.1", "GraphQL over HTTP/1.1", "gRPC over HTTP/2"]
    json_, graphql_, grpc_ = rows.values()
    # Every call moved real bytes both ways, and more than its payload.
    for row in rows.values():
        assert row["later_down"] > row["payload"] > 0
        assert row["later_up"] > 0
    # HTTP/1.1 repeats the same request and headers: every call costs the same.
    assert json_["first_up"] == json_["later_up"]
    # HTTP/2 pays for its preface and settings once; HPACK then shrinks repeated headers.
    assert grpc_["later_up"] < grpc_["first_up"]
    assert grpc_["later_up"] < json_["later_up"]
    # Protobuf's binary encoding is smaller than the same data in JSON.
    assert grpc_["payload"] < json_["payload"]
    assert graphql_["payload"] > 0


def test_wire_bytes_refuses_bad_settings_with_one_line_each(grpc_stubs) -> None:
    bad = {"CALLS": "1", "HTTP_TARGET": "not-a-url", "GRPC_TARGET": "nohost"}
    stderr = assert_refuses_to_start("protocols/wire_bytes.py", bad, "")
    named = sorted(line.split(":")[1].strip() for line in stderr.splitlines())
    assert named == sorted(bad)  # one line per bad variable, each naming it
