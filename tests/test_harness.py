"""The fixtures start real services, and stopping them really stops them."""

from __future__ import annotations

import psycopg
import pytest
import redis
from harness import PostgresServer, RedisServer, command_from_run_line, port_open


def test_redis_fixture_serves_and_restarts(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("greeting", "hello")
    assert client.get("greeting") == b"hello"

    redis_server.stop()
    assert not port_open(redis_server.port)
    with pytest.raises(redis.ConnectionError):
        client.ping()

    redis_server.start()
    assert client.ping()
    assert client.get("greeting") is None  # nothing persisted between runs
    client.close()


def test_postgres_fixture_serves_sql(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url, connect_timeout=5) as conn:
        row = conn.execute("select current_setting('listen_addresses'), 6 * 7").fetchone()
    assert row == ("127.0.0.1", 42)


def test_run_line_environment_and_argv_are_split() -> None:
    env, argv = command_from_run_line(
        "TARGET=http://127.0.0.1:4000 python examples/why_distributed/web_api.py --flag"
    )
    assert env == {"TARGET": "http://127.0.0.1:4000"}
    assert argv[1:] == ["examples/why_distributed/web_api.py", "--flag"]
