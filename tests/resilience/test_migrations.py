"""docs/resilience/migrations.md: yoyo-migrations against the kit's real PostgreSQL.

Each test gets a database of its own (CREATE DATABASE on the shared server), so the
tests never see each other's tables. Migrations are applied with the `yoyo` command
the page gives, and the schema is read back from information_schema.

The live rename runs migrating_service.py at two STAGEs side by side under a client
that writes through one and reads back through the other; waits are bounds on
progress (rounds completed), never timings.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from kit.process import ROOT, wait_until
from kit.services.postgresql import PostgresServer
from kit.snippets import run_script

MIGRATIONS = ROOT / "examples" / "resilience" / "migrations"
BROKEN = MIGRATIONS / "broken"
SCRIPT = "snippets/resilience/migrate.sh"
BOUND = 20.0  # seconds: a bound on reaching a state, never a pass/fail threshold
YOYO = str(Path(sys.executable).parent / "yoyo")
RECIPES, INGREDIENTS, RATING = (
    "20261130_01_create-recipes",
    "20261130_02_create-ingredients",
    "20261130_03_add-rating",
)


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database on the shared server; dropped afterwards."""
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def yoyo(database_url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The yoyo command line as the page writes it, against `database_url`."""
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    command, *rest = args
    argv = [YOYO, str(command), "--batch", "--no-config-file", "--database", url]
    return subprocess.run(
        [*argv, *map(str, rest)], capture_output=True, text=True, timeout=30, check=False
    )


def schema(database_url: str) -> list[tuple[str, str, str, str]]:
    """Every column of every table in the public schema, with its type and nullability."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()


def tables(database_url: str) -> set[str]:
    return {row[0] for row in schema(database_url)}


def recorded(database_url: str) -> list[str]:
    """The migration ids in yoyo's tracking table, oldest first."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc, migration_id"
        ).fetchall()
    return [row[0] for row in rows]


def status(listing: str) -> dict[str, str]:
    """`yoyo list` output -> {migration id: "A" (applied) or "U" (unapplied)}."""
    return {mid: flag for flag, mid in re.findall(r"^([AU])\s+(\S+)", listing, re.M)}


def test_apply_creates_tables_and_records_each_migration(database_url: str) -> None:
    assert tables(database_url) == set()  # a fresh database: the control
    result = yoyo(database_url, "apply", MIGRATIONS)
    assert result.returncode == 0, result.stderr
    assert {"recipes", "ingredients"} <= tables(database_url)
    assert recorded(database_url) == [RECIPES, INGREDIENTS]
    # The migrations created what their SQL says, not just two table names.
    columns = {(t, c): (ty, null) for t, c, ty, null in schema(database_url)}
    assert columns["recipes", "name"] == ("text", "NO")
    assert columns["ingredients", "recipe_id"] == ("bigint", "NO")


def test_apply_again_is_a_no_op(database_url: str) -> None:
    assert yoyo(database_url, "apply", MIGRATIONS).returncode == 0
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO recipes (name) VALUES ('shakshuka')")
    before = (schema(database_url), recorded(database_url))
    again = yoyo(database_url, "apply", MIGRATIONS)
    assert again.returncode == 0, again.stderr
    assert (schema(database_url), recorded(database_url)) == before
    with psycopg.connect(database_url) as conn:  # the data is untouched
        assert conn.execute("SELECT name FROM recipes").fetchall() == [("shakshuka",)]


def test_the_page_script_applies_lists_and_rolls_back_the_last(database_url: str) -> None:
    result = run_script(SCRIPT, {"DATABASE_URL": database_url})
    lists = [block for block in result.stdout.split("STATUS") if block.strip()]
    assert len(lists) == 2, result.stdout
    assert status(lists[0]) == {RECIPES: "A", INGREDIENTS: "A"}
    assert status(lists[1]) == {RECIPES: "A", INGREDIENTS: "U"}
    # Rollback ran 02's .rollback.sql only, and removed its tracking row.
    assert tables(database_url) == {
        "recipes",
        "_yoyo_log",
        "_yoyo_migration",
        "_yoyo_version",
        "yoyo_lock",
    }
    assert recorded(database_url) == [RECIPES]


def test_a_broken_migration_leaves_the_schema_as_it_was(database_url: str) -> None:
    assert yoyo(database_url, "apply", MIGRATIONS).returncode == 0
    before = schema(database_url)
    result = yoyo(database_url, "apply", MIGRATIONS, BROKEN)
    assert result.returncode != 0
    assert 'column "ratng" does not exist' in result.stderr  # PostgreSQL's own words
    # The ALTER TABLE before the failing CREATE INDEX succeeded, then was rolled back
    # with it: no rating column, nothing else changed, and no tracking row.
    assert schema(database_url) == before
    assert recorded(database_url) == [RECIPES, INGREDIENTS]


def test_control_without_a_transaction_the_first_statement_stays(
    database_url: str, tmp_path: Path
) -> None:
    """The check above can fail: the same migration marked non-transactional (and with
    no rollback file, so yoyo has nothing to undo it with) leaves its first statement
    applied when the second fails, and the schema comparison sees it."""
    assert yoyo(database_url, "apply", MIGRATIONS).returncode == 0
    before = schema(database_url)
    migration = tmp_path / f"{RATING}.sql"
    migration.write_text("-- transactional: false\n" + (BROKEN / migration.name).read_text())
    result = yoyo(database_url, "apply", MIGRATIONS, tmp_path)
    assert result.returncode != 0
    after = schema(database_url)
    assert after != before
    assert ("recipes", "rating", "smallint", "YES") in after
    assert recorded(database_url) == [RECIPES, INGREDIENTS]


# --- the live rename of recipes.name to title, under a stream of requests ----------

LIVE = MIGRATIONS / "live"
SERVICE = "resilience/migrating_service.py"
SEEDED = 2500  # rows written before the rename began: the backfill takes 3 batches
ROUNDS = 15  # write-then-read rounds the stream completes at each point of a step


class Stream:
    """A client thread: POST a recipe to one instance, GET it back from the next one,
    again and again, keeping every failure (a non-2xx, a wrong name, an exception)."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.rounds = 0
        self.failures: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.done.is_set():
                urls = list(self.urls)
                writer, reader = urls[self.rounds % len(urls)], urls[(self.rounds + 1) % len(urls)]
                name = f"recipe {self.rounds}"
                try:
                    made = client.post(f"{writer}/recipes", json={"name": name})
                    if made.status_code != 201:
                        self.failures.append(f"POST {writer}: {made.status_code} {made.text}")
                        continue
                    read = client.get(f"{reader}/recipes/{made.json()['id']}")
                    if read.status_code != 200 or read.json()["name"] != name:
                        self.failures.append(f"GET {reader}: {read.status_code} {read.text}")
                except httpx.HTTPError as error:
                    self.failures.append(f"{type(error).__name__}: {error}")
                finally:
                    self.rounds += 1

    def more(self, rounds: int = ROUNDS) -> None:
        """Wait until `rounds` more rounds are done (a bound on progress, not a timing)."""
        target = self.rounds + rounds
        wait_until(lambda: self.rounds >= target, timeout=BOUND, what=f"{rounds} rounds")

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=BOUND)


@dataclass
class Step:
    stage: int  # the code version the migration is applied under
    before: str | None  # the last live migration already applied
    during: str  # the migration applied under traffic
    old: int | None = None  # the version rolled out from (both serve for a while)


STEPS = [
    Step(1, None, "20261201_01_add-title"),
    Step(2, "20261201_01_add-title", "20261201_02_backfill-title", old=1),
    Step(3, "20261201_02_backfill-title", "20261201_03_title-not-null", old=2),
    Step(4, "20261201_03_title-not-null", "20261201_04_drop-name", old=3),
]


def prepare(database_url: str, step: Step) -> None:
    """The schema as it is when the step begins, with rows written by the old code."""
    assert yoyo(database_url, "apply", MIGRATIONS).returncode == 0
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO recipes (name) SELECT 'seed ' || n FROM generate_series(1, %s) n",
            (SEEDED,),
        )
    if step.before:
        result = yoyo(database_url, "apply", "--revision", step.before, MIGRATIONS, LIVE)
        assert result.returncode == 0, result.stderr


def roll_out_until(run_example, database_url: str, step: Step, *, keep_old: bool = False) -> Stream:
    """Start the new version next to the old, stream through both, stop the old one
    (unless `keep_old`), then apply the step's migration under the stream."""
    env = {"DATABASE_URL": database_url}
    new = run_example(SERVICE, env={**env, "STAGE": str(step.stage)})
    old = run_example(SERVICE, env={**env, "STAGE": str(step.old)}) if step.old else None
    stream = Stream([old.url, new.url] if old else [new.url])
    stream.more()  # both versions serve: a rolling update's overlap
    if old and not keep_old:
        stream.urls = [new.url]  # drain the old one first, as a load balancer does:
        stream.more(2)  # the round in flight when the list changed is over
        assert old.stop() == 0
        stream.more()
    result = yoyo(database_url, "apply", "--revision", step.during, MIGRATIONS, LIVE)
    assert result.returncode == 0, result.stderr
    stream.more()
    stream.stop()
    return stream


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"stage{s.stage}-{s.during[12:]}")
def test_each_step_of_the_rename_fails_no_request(run_example, database_url: str, step: Step):
    prepare(database_url, step)
    stream = roll_out_until(run_example, database_url, step)
    assert stream.failures == [], stream.failures[:5]
    assert recorded(database_url)[-1] == step.during
    assert stream.rounds >= 2 * ROUNDS
    if step.stage >= 2:  # from the backfill on, every row has its title
        with psycopg.connect(database_url) as conn:
            missing = conn.execute("SELECT count(*) FROM recipes WHERE title IS NULL").fetchone()
        assert missing == (0,)


def test_control_dropping_the_column_under_the_old_code_fails_requests(
    run_example, database_url: str
) -> None:
    """The same last step with the version that still writes `name` left running:
    once the column is gone, its requests fail, and the stream sees them."""
    step = STEPS[-1]
    prepare(database_url, step)
    stream = roll_out_until(run_example, database_url, step, keep_old=True)
    assert any("500" in failure for failure in stream.failures), stream.failures[:5]
