"""A notes service that reads its secrets from files, and never shows them.

`GET /notes` lists the notes (PostgreSQL, as the least-privileged `notes_app` role
of snippets/security/config_roles.sql); `DELETE /notes/<id>` deletes one and needs
`Authorization: Bearer <API token>`, compared in constant time. Without a token
configured, every DELETE is refused (401). `GET /health` answers 200 and
touches nothing.

Run it:

    python examples/security/secret_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4600`).
- `DATABASE_URL`: PostgreSQL URL, without a password (default
  `postgresql://notes_app@127.0.0.1:5432/notes`).

Secrets, each from a file whose path a variable gives (a podman or Kubernetes
secret mounted as a file, say); the file must exist, be a regular file, be
readable, not be readable by every user (`chmod 600` or `640`) and not be empty.
A trailing newline is dropped:

- `DATABASE_PASSWORD_FILE`: the path of the database password (default: none,
  the URL's own authentication);
- `API_TOKEN_FILE`: the path of the token `DELETE` requires (default: none);
- `API_TOKEN`: the token itself, for comparison: accepted, but readable in
  `/proc/<pid>/environ` (docs/security/configuration.md says why files are
  better). At least 16 characters. Set it or `API_TOKEN_FILE`, not both.

A bad setting stops it at start with exit code 2 and one line per problem naming
the variable, never the value. Secrets are `SecretStr`: `repr()` and `str()` show
`**********`. It stops cleanly on SIGTERM or Ctrl-C. An unexpected error in a
route answers 500 with a generic JSON body; its traceback goes to the log, and
neither holds a secret.
"""

from __future__ import annotations

import hmac
import stat
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import orjson
import psycopg
from pydantic import (
    BeforeValidator,
    Field,
    PostgresDsn,
    Secret,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:secret_file]
def read_secret_file(path: object) -> object:
    """The secret in the file at `path`: refused unless the file is private and not empty.

    Runs once at start, before the event loop: the blocking read blocks nothing.
    """
    if not isinstance(path, str):
        return path
    file = Path(path)
    try:
        mode = file.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file")
        if mode & stat.S_IROTH:
            raise ValueError(f"{path} is readable by every user: chmod o-rwx {path}")
        secret = file.read_text().rstrip("\r\n")  # `echo token > file` adds a newline
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    if not secret:
        raise ValueError(f"{path} is empty")
    return secret


# The variable holds a path; the validated field holds what the file holds.
SecretFile = Annotated[SecretStr | None, BeforeValidator(read_secret_file)]
# --8<-- [end:secret_file]


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment; the *_FILE fields from their files."""

    host: str = "127.0.0.1"
    port: int = Field(4600, ge=1, le=65535)
    database_url: Secret[PostgresDsn] = Secret(
        PostgresDsn("postgresql://notes_app@127.0.0.1:5432/notes")
    )
    database_password_file: SecretFile = None
    api_token: SecretStr | None = Field(None, min_length=16)
    api_token_file: SecretFile = None

    @field_validator("api_token_file")
    @classmethod
    def one_source(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and info.data.get("api_token") is not None:
            raise ValueError("set API_TOKEN_FILE or API_TOKEN, not both")
        return value


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per problem: the name and the message,
    never the value (str(error) would print it: `input_value='...'`)."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


settings = load_settings()
# --8<-- [end:settings]

# --8<-- [start:setup]
DATABASE_URL = str(settings.database_url.get_secret_value())
PASSWORD = settings.database_password_file  # still a SecretStr, or None
TOKEN = settings.api_token_file or settings.api_token

app = Sanic("secret-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


@app.before_server_start
async def say_what_is_configured(app: Sanic) -> None:
    parts = urlsplit(DATABASE_URL)
    # Where, and whether a secret is set: never what it is.
    log.info(
        "database %s://%s@%s:%s%s, password %s; API token %s",
        parts.scheme, parts.username, parts.hostname, parts.port, parts.path,
        "from a file" if PASSWORD else "none",
        "from a file" if settings.api_token_file else "from the environment" if TOKEN else "none",
    )  # fmt: skip


async def connect() -> psycopg.AsyncConnection:
    password = PASSWORD.get_secret_value() if PASSWORD else None
    # The password goes to the driver as its own argument, not pasted into the URL.
    return await psycopg.AsyncConnection.connect(DATABASE_URL, password=password, connect_timeout=2)


# --8<-- [end:setup]


# --8<-- [start:routes]
def authorized(request: Request) -> bool:
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if TOKEN is None or scheme.lower() != "bearer":
        return False
    # Constant time: how long the comparison takes says nothing about the token.
    return hmac.compare_digest(given.encode(), TOKEN.get_secret_value().encode())


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "UP"})


@app.get("/notes")
async def list_notes(request: Request) -> HTTPResponse:
    # No try/except: a database that is down is an unexpected error here. Sanic answers
    # 500 with a generic body and logs the traceback; neither holds the password.
    async with await connect() as connection:
        cursor = await connection.execute("SELECT id, body FROM notes.notes ORDER BY id")
        rows = await cursor.fetchall()
    return json({"notes": [{"id": id_, "body": body} for id_, body in rows]})


@app.delete("/notes/<note_id:int>")
async def delete_note(request: Request, note_id: int) -> HTTPResponse:
    if not authorized(request):
        # The answer never echoes what was sent: a wrong token may be a real one, mistyped.
        return json(
            {"error": "a valid bearer token is required"},
            status=401,
            headers={"www-authenticate": "Bearer"},
        )
    async with await connect() as connection:
        cursor = await connection.execute(
            "DELETE FROM notes.notes WHERE id = %s RETURNING id", (note_id,)
        )
        deleted = await cursor.fetchone()
    if deleted is None:
        return json({"error": f"no note {note_id}"}, status=404)
    return json({"deleted": note_id})


# --8<-- [end:routes]


def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
