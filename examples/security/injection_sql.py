"""SQL injection: a query built with an f-string, then the same query with parameters.

It creates a `users` table in the database at `DATABASE_URL` (dropping any
table of that name first: point it at a scratch database), then looks a user
up by name the wrong way and the right way, with a name an attacker chose.
Each step prints what came back and whether the table is still there.

Run it (with a PostgreSQL you may scribble on, and a database `scratch` in it):

    python examples/security/injection_sql.py

Environment:

- `DATABASE_URL`: the scratch database (default `postgresql://postgres@127.0.0.1:5432/scratch`).
"""

from __future__ import annotations

import os

import psycopg

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/scratch")

SETUP = """
    DROP TABLE IF EXISTS users;
    CREATE TABLE users (name text PRIMARY KEY, api_key text NOT NULL);
    INSERT INTO users VALUES ('alice', 'key-alice'), ('bob', 'key-bob'), ('carol', 'key-carol');
"""


# --8<-- [start:unsafe]
def find_user_unsafe(conn: psycopg.Connection, name: str) -> list[tuple]:
    # The name becomes part of the SQL text: its quotes end the string literal.
    # (noqa, nosec: this is the injection the page shows, on purpose.)
    query = f"SELECT name, api_key FROM users WHERE name = '{name}'"  # noqa: S608  # nosec B608
    return conn.execute(query).fetchall()


# --8<-- [end:unsafe]


# --8<-- [start:safe]
def find_user(conn: psycopg.Connection, name: str) -> list[tuple]:
    # %s is a placeholder: the name travels apart from the SQL text (server-side
    # binding), so no character in it can change what the statement does.
    return conn.execute("SELECT name, api_key FROM users WHERE name = %s", (name,)).fetchall()


# --8<-- [end:safe]


def table_exists(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone()[0]


def attempt(conn: psycopg.Connection, lookup, name: str) -> None:
    print(f"{lookup.__name__}({name!r})")
    try:
        print(f"  rows: {lookup(conn, name)}")
    except psycopg.Error as error:
        print(f"  refused: {type(error).__name__}: {str(error).splitlines()[0]}")
    print(f"  users table still there: {table_exists(conn)}")


# --8<-- [start:main]
def main() -> None:
    # autocommit: each statement stands alone, as in a web request's short transaction.
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        for lookup in (find_user_unsafe, find_user):
            conn.execute(SETUP)
            attempt(conn, lookup, "alice")  # what the code was written for
            attempt(conn, lookup, "x' OR '1'='1")  # every row
            attempt(conn, lookup, "x'; DROP TABLE users; --")  # a second statement


# --8<-- [end:main]

if __name__ == "__main__":
    main()
