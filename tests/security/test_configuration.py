"""Application configuration (docs/security/configuration.md).

secret_service.py reads its secrets from files; canary values stand for them and
must never show: not in answers, logs, tracebacks, refusals or repr(). A token
given in the environment instead is readable in /proc/<pid>/environ; one read
from a file is not. The service's PostgreSQL role (snippets/security/config_roles.sql)
reads and writes rows, and is refused DROP, CREATE, ALTER and TRUNCATE.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from kit.examples import RunningExample, assert_output_is_shown, command_for
from kit.process import LOOPBACK, ROOT, free_port
from kit.snippets import run_script

SERVICE = "security/secret_service.py"
SNIPPETS = ROOT / "snippets" / "security"
PAGE = ROOT / "docs" / "security" / "configuration.md"
# Canaries: values that stand for secrets; any appearance is a leak.
FILE_CANARY = "canary-file-7f3a9c1e5b"
DB_CANARY = "canary-db-2d8e4b6a"
ENV_CANARY = "canary-env-9b1d3f5a"
SHORT_CANARY = "canary-short"  # too short to be a token: refused at start
CANARIES = (FILE_CANARY, DB_CANARY, ENV_CANARY, SHORT_CANARY)


def assert_no_canary(text: str, where: str) -> None:
    for canary in CANARIES:
        assert canary not in text, f"{canary} in {where}"


def private_file(path: Path, text: str, mode: int = 0o600) -> str:
    path.write_text(text)
    path.chmod(mode)
    return str(path)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("secrets")
    return {
        "token": private_file(directory / "api_token", FILE_CANARY + "\n"),
        "password": private_file(directory / "db_password", DB_CANARY + "\n"),
        "public": private_file(directory / "public_token", FILE_CANARY, 0o644),
        "empty": private_file(directory / "empty", ""),
        "directory": str(directory),
    }


@pytest.fixture(scope="module")
def notes_db(postgres_server) -> dict[str, str]:
    """The roles and database of config_roles.sh, and the table of the migration."""
    run_script(SNIPPETS / "config_roles.sh", {"ADMIN_URL": postgres_server.url})
    parts = urlsplit(postgres_server.url)
    urls = {
        role: f"postgresql://notes_{role}@{parts.hostname}:{parts.port}/notes"
        for role in ("owner", "app")
    }
    with psycopg.connect(urls["owner"], autocommit=True) as owner:
        owner.execute((SNIPPETS / "config_migration.sql").read_text())
    return urls


@pytest.fixture(scope="module")
def service(run_shared_example, notes_db, secrets) -> RunningExample:
    env = {
        "DATABASE_URL": notes_db["app"],
        "DATABASE_PASSWORD_FILE": secrets["password"],
        "API_TOKEN_FILE": secrets["token"],
        **REAL_EXEC,
    }
    return run_shared_example(SERVICE, env=env)


# A PYTHON* variable of its own makes the kit start the service with a real exec, not
# a fork of its warm Python: /proc/<pid>/environ is the environment a process was
# *started* with, so a fork would show the fork server's instead.
REAL_EXEC = {"PYTHONNOUSERSITE": "1"}


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode()


def start_refused(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    line_env, argv = command_for(SERVICE)
    return subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, **line_env, "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# --- the service: token from a file ------------------------------------------------


def test_the_token_from_the_file_guards_delete(service: RunningExample, notes_db) -> None:
    with psycopg.connect(notes_db["app"], autocommit=True) as app:
        (note_id,) = app.execute(
            "INSERT INTO notes.notes (body) VALUES ('buy flour') RETURNING id"
        ).fetchone()
    listed = httpx.get(f"{service.url}/notes")
    assert {"id": note_id, "body": "buy flour"} in listed.json()["notes"]
    url = f"{service.url}/notes/{note_id}"
    assert httpx.delete(url).status_code == 401
    wrong = httpx.delete(url, headers={"Authorization": "Bearer " + FILE_CANARY[:-1] + "x"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    right = httpx.delete(url, headers={"Authorization": f"Bearer {FILE_CANARY}"})
    assert right.json() == {"deleted": note_id}
    assert httpx.delete(url, headers={"Authorization": f"Bearer {FILE_CANARY}"}).status_code == 404


def test_no_secret_in_answers_or_the_log(service: RunningExample) -> None:
    answers = [
        httpx.get(f"{service.url}/health"),
        httpx.get(f"{service.url}/notes"),
        httpx.get(f"{service.url}/nowhere"),
        httpx.post(f"{service.url}/notes"),
        httpx.delete(f"{service.url}/notes/1", headers={"Authorization": "Bearer nope"}),
        httpx.delete(f"{service.url}/notes/abc"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 405, 401, 404]
    for answer in answers:
        assert_no_canary(answer.text + str(answer.headers), f"{answer.request.url}")
    log = service.output()
    assert "password from a file; API token from a file" in log  # it says that, not what
    assert_no_canary(log, "the log")


def test_the_file_secret_is_not_in_proc_environ(service: RunningExample, secrets) -> None:
    environ = environ_of(service.pid)
    assert f"API_TOKEN_FILE={secrets['token']}" in environ  # the path: not a secret
    assert FILE_CANARY not in environ
    assert DB_CANARY not in environ


def test_an_env_secret_is_in_proc_environ_and_a_raising_route_shows_none(
    run_example, secrets
) -> None:
    """The control for the test above, and an unexpected error: the database is not
    there, so GET /notes raises; the answer is a generic 500, the traceback is logged."""
    closed = f"postgresql://notes_app@{LOOPBACK}:{free_port()}/notes"
    env = {
        "DATABASE_URL": closed,
        "DATABASE_PASSWORD_FILE": secrets["password"],
        "API_TOKEN": ENV_CANARY,
        **REAL_EXEC,
    }
    running = run_example(SERVICE, env=env)
    assert f"API_TOKEN={ENV_CANARY}" in environ_of(running.pid)  # any same-user process reads it
    failed = httpx.get(f"{running.url}/notes")
    assert failed.status_code == 500
    assert failed.json()["status"] == 500
    assert_no_canary(failed.text, "the 500 answer")
    assert running.stop() == 0
    log = running.output()
    assert "Traceback" in log
    assert "OperationalError" in log
    assert_no_canary(log, "the traceback")


# --- refusals at start --------------------------------------------------------------


def test_bad_secret_files_are_refused_with_one_line_each(secrets) -> None:
    rounds = [
        (
            {
                "PORT": "abc",
                "API_TOKEN_FILE": secrets["public"],
                "DATABASE_PASSWORD_FILE": "/nonexistent/db_password",
            },
            [
                "configuration error: PORT: ",
                f"configuration error: API_TOKEN_FILE: Value error, {secrets['public']} "
                f"is readable by every user: chmod o-rwx {secrets['public']}",
                "configuration error: DATABASE_PASSWORD_FILE: Value error, cannot read "
                "/nonexistent/db_password: No such file or directory",
            ],
        ),
        (
            {"API_TOKEN": SHORT_CANARY, "DATABASE_PASSWORD_FILE": secrets["directory"]},
            [
                "configuration error: API_TOKEN: Value should have at least 16 items",
                f"configuration error: DATABASE_PASSWORD_FILE: Value error, "
                f"{secrets['directory']} is not a regular file",
            ],
        ),
        (
            {
                "API_TOKEN": ENV_CANARY,
                "API_TOKEN_FILE": secrets["token"],
                "DATABASE_PASSWORD_FILE": secrets["empty"],
            },
            [
                "configuration error: DATABASE_PASSWORD_FILE: Value error, "
                f"{secrets['empty']} is empty",
                "configuration error: API_TOKEN_FILE: Value error, "
                "set API_TOKEN_FILE or API_TOKEN, not both",
            ],
        ),
    ]
    for number, (env, lines) in enumerate(rounds):
        result = start_refused(env)
        if number == 0:  # the page shows this one, with the paths a reader would use
            shown = result.stderr.replace(secrets["directory"], "/run/secrets")
            assert_output_is_shown(shown, SNIPPETS / "config_refused.out")
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        printed = result.stderr.splitlines()
        assert len(printed) == len(lines), result.stderr
        for expected in lines:
            assert any(line.startswith(expected) for line in printed), (expected, printed)
        assert_no_canary(result.stderr, "the refusal")


def test_repr_and_str_hide_secrets_and_pydantic_alone_would_not(secrets) -> None:
    program = (
        "import sys; sys.path.insert(0, 'examples/security'); import secret_service as s\n"
        "print(repr(s.settings)); print(s.settings)\n"
        f"print(s.settings.api_token_file.get_secret_value() == {FILE_CANARY!r})\n"
        "try:\n"
        f"    s.Settings(api_token={SHORT_CANARY!r})\n"
        "except s.ValidationError as error:\n"
        "    print(error)\n"
    )
    env = {
        **os.environ,
        "API_TOKEN_FILE": secrets["token"],
        "DATABASE_PASSWORD_FILE": secrets["password"],
    }
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    shown, plain, loaded, error = result.stdout.split("\n", 3)
    assert "api_token_file=SecretStr('**********')" in shown
    assert "database_password_file=SecretStr('**********')" in shown
    assert "database_url=Secret('**********')" in shown
    assert "api_token_file=SecretStr('**********')" in plain
    assert_no_canary(shown + plain, "repr() and str()")
    assert loaded == "True"  # the secret is there, for whoever asks by name
    # The control: pydantic's own message quotes the bad value. load_settings prints
    # the name and the message only.
    assert f"input_value='{SHORT_CANARY}'" in error


# --- least privilege in PostgreSQL ---------------------------------------------------


@pytest.fixture
def as_app(notes_db) -> Iterator[psycopg.Connection]:
    with psycopg.connect(notes_db["app"], autocommit=True) as connection:
        yield connection


def test_the_app_role_reads_and_writes_rows(as_app: psycopg.Connection) -> None:
    (note_id,) = as_app.execute(
        "INSERT INTO notes.notes (body) VALUES ('draft') RETURNING id"
    ).fetchone()
    as_app.execute("UPDATE notes.notes SET body = 'final' WHERE id = %s", (note_id,))
    assert as_app.execute("SELECT body FROM notes.notes WHERE id = %s", (note_id,)).fetchall() == [
        ("final",)
    ]
    assert as_app.execute("DELETE FROM notes.notes WHERE id = %s", (note_id,)).rowcount == 1


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        ("DROP TABLE notes.notes", "must be owner of table notes"),
        ("ALTER TABLE notes.notes ADD COLUMN secret text", "must be owner of table notes"),
        ("TRUNCATE notes.notes", "permission denied for table notes"),
        ("CREATE TABLE notes.mine (id int)", "permission denied for schema notes"),
        ("CREATE TABLE public.mine (id int)", "permission denied for schema public"),
        ("CREATE ROLE intruder", "permission denied to create role"),
    ],
    ids=["drop", "alter", "truncate", "create-in-notes", "create-in-public", "create-role"],
)
def test_the_app_role_is_refused(as_app: psycopg.Connection, statement: str, refusal: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        as_app.execute(statement)
    assert refusal in str(refused.value)


def test_the_owner_may_and_new_tables_are_granted_at_once(notes_db, as_app) -> None:
    """The control: the same statements succeed as the owner, so the refusals above are
    about the role; and a table the owner's next migration adds is the app's to use."""
    with psycopg.connect(notes_db["owner"], autocommit=True) as owner:
        owner.execute("CREATE TABLE notes.tags (id int PRIMARY KEY, name text)")
        try:
            as_app.execute("INSERT INTO notes.tags VALUES (1, 'kitchen')")
            assert as_app.execute("SELECT name FROM notes.tags").fetchall() == [("kitchen",)]
            owner.execute("ALTER TABLE notes.tags ADD COLUMN colour text")
            owner.execute("TRUNCATE notes.tags")
        finally:
            owner.execute("DROP TABLE notes.tags")


def test_every_snippet_is_on_the_page() -> None:
    page = PAGE.read_text()
    for name in [
        "config_roles.sql",
        "config_roles.sh",
        "config_migration.sql",
        "config_refused.out",
    ]:
        assert f'--8<-- "snippets/security/{name}"' in page
    assert '--8<-- "examples/security/secret_service.py:secret_file"' in page
