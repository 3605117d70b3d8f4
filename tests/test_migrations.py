"""The app database's migrations: head is the models' schema, old databases are upgraded with
their data, and databases that examflow must not touch are refused with a clear message.

Tests taking ``app_url`` run on the test's own database (``home``): a SQLite file, or a fresh
PostgreSQL database with EXAMFLOW_TEST_POSTGRES_URL (tests/pg.py); the others are about
SQLite files or examflow's policy and make their own SQLite files."""

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from examflow import migrate
from examflow.cli import db_cmds
from examflow.db import engine_for, session_scope
from examflow.settings import get_settings
from models import all_tables
from models.arrangement import SeatAssignment
from models.registration import ImportBatch, Registration
from models.schools import School
from models.sitting_calendar import parse_calendar
from models.sittings import Sitting, store_calendar
from tests.cli import Result, run
from tests.conftest import CALENDAR
from tests.helpers import new_id

AS_OF = datetime(2024, 4, 20, 2, 0, tzinfo=UTC)
SEATS_INDEX = "ix_seatassignment_sitting_site"


def db(*args: str) -> Result:
    """`examflow db …` through the full command line once examflow/cli.py registers db_app,
    through db_app itself until then."""
    from examflow.cli import app

    if any(group.name == "db" for group in app.registered_groups):
        return run("db", *args)
    result = CliRunner().invoke(db_cmds.db_app, list(args), catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)


def sqlite_exec(path: Path, statement: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(statement).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def app_url(home: Path) -> str:
    """The test's own database, untouched: nothing has made an engine for it yet."""
    home.mkdir(parents=True, exist_ok=True)
    return get_settings().resolved_database_url()


@pytest.fixture
def sqlite_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An examflow home whose database is its SQLite file, whatever the test run's database."""
    monkeypatch.setenv("EXAMFLOW_HOME", str(tmp_path / "var"))
    monkeypatch.delenv("EXAMFLOW_DATABASE_URL", raising=False)
    return tmp_path / "var"


def execute(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def diffs(url: str) -> list[Any]:
    all_tables()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def sqlite_ddl(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Each table's and index's CREATE statement as SQLite keeps it: its head and its
    elements (columns, constraints), sorted: constraint order differs and means nothing."""
    rows = sqlite_exec(
        path,
        "SELECT name, sql FROM sqlite_master WHERE name != 'alembic_version' AND sql IS NOT NULL",
    )
    ddl = {}
    for name, sql in rows:
        statement = " ".join(sql.split())
        head, _, body = statement.partition("(")
        elements, depth, item = [], 0, ""
        for char in body.rstrip(")").strip():
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                elements.append(item.strip())
                item = ""
            else:
                item += char
        elements.append(item.strip())
        ddl[name] = (head.strip(), sorted(elements))
    return ddl


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every examflow table that has rows, in primary-key order (a table that a
    later revision adds is absent before the upgrade and empty after it: both leave it out;
    so are the columns a later revision adds to a table, read only where present)."""
    all_tables()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = inspect(conn)
            present = set(inspector.get_table_names())
            columns = {n: {c["name"] for c in inspector.get_columns(n)} for n in present}
            rows = {
                name: [
                    tuple(r)
                    for r in conn.execute(
                        select(*(c for c in table.columns if c.name in columns[name])).order_by(
                            *table.primary_key
                        )
                    )
                ]
                for name, table in SQLModel.metadata.tables.items()
                if name in present
            }
            return {name: found for name, found in rows.items() if found}
    finally:
        engine.dispose()


def indexes(url: str, table: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        return {
            str(ix["name"]): [str(c) for c in ix["column_names"]]
            for ix in inspect(engine).get_indexes(table)
        }
    finally:
        engine.dispose()


def fill_at_0001(url: str) -> None:
    """A sitting from the notice's calendar, two schools, a registration and its seat, written
    the way examflow wrote them when the database was at 0001."""
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            calendar = parse_calendar(CALENDAR.read_text(encoding="utf-8"))
            store_calendar(session, calendar, CALENDAR.name, AS_OF)
            for code, site in (("P1", True), ("P2", False)):
                session.add(
                    School(
                        code=code,
                        name=f"{code} 职业技术学院",
                        province="北京市",
                        is_pilot=True,
                        pilot_scale=100,
                        is_site=site,
                        seats=30 if site else None,
                        affairs_email=f"a@{code.lower()}.edu.cn",
                        updated_at=AS_OF,
                    )
                )
            batch = ImportBatch(
                sitting_code="2024-1",
                kind="registration",
                file_name="reg.csv",
                sha256="0" * 64,
                rows=1,
                imported_at=AS_OF,
            )
            session.add(batch)
            session.flush()
            assert batch.id is not None
            registration = Registration(
                sitting_code="2024-1",
                school_code="P2",
                site_code="P1",
                name="张三",
                id_number=new_id(),
                level="初级",
                province="北京市",
                fee_fen=30000,
                fee_basis="standard",
                batch_id=batch.id,
                registered_at=AS_OF,
            )
            session.add(registration)
            session.flush()
            assert registration.id is not None
            session.add(
                SeatAssignment(
                    registration_id=registration.id,
                    sitting_code="2024-1",
                    site_code="P1",
                    level="初级",
                    room="101",
                    seat=1,
                    ticket_number="202411P10001",
                    ticket_seq=1,
                    arranged_at=AS_OF,
                )
            )
            session.commit()
    finally:
        engine.dispose()


def old_database(url: str, *, with_history: bool = True) -> str:
    """The database at ``url`` brought to 0001 and given data; without history: as
    create_all made it before migrations existed (no alembic_version)."""
    migrate.upgrade(url, "0001")
    assert migrate.current(url) == "0001"
    fill_at_0001(url)
    if not with_history:
        execute(url, "DROP TABLE alembic_version")
        assert migrate.current(url) is None
    return url


def models_made_database(url: str) -> str:
    """The database at ``url`` as create_all makes it from today's models: no history."""
    all_tables()
    engine = create_engine(url)
    try:
        SQLModel.metadata.create_all(engine)
    finally:
        engine.dispose()
    return url


# -- (a) head is the models' schema ------------------------------------------------------------


def test_migrating_an_empty_database_to_head_gives_exactly_the_models(app_url: str) -> None:
    migrate.upgrade(app_url)
    assert diffs(app_url) == []
    assert migrate.current(app_url) == migrate.head()


def test_a_new_database_made_by_create_all_is_the_migrated_one(tmp_path: Path) -> None:
    """ensure_schema's shortcut for a brand-new database (create_all + stamp head) gives the
    very schema the migrations give: the same DDL (up to the order of its elements), the same
    revision."""
    migrate.upgrade(url_of(tmp_path / "migrated.db"))
    engine_for(url_of(tmp_path / "created.db"))
    assert sqlite_ddl(tmp_path / "created.db") == sqlite_ddl(tmp_path / "migrated.db")
    assert migrate.current(url_of(tmp_path / "created.db")) == migrate.head()


def test_the_quick_head_constant_is_the_newest_revision() -> None:
    assert migrate.head() == migrate.HEAD, "a new revision: update examflow.migrate.HEAD"


def test_every_revision_downgrades_to_nothing_and_up_again(app_url: str) -> None:
    from alembic import command

    migrate.upgrade(app_url)
    command.downgrade(migrate.alembic_config(app_url), "base")
    engine = create_engine(app_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    migrate.upgrade(app_url)
    assert diffs(app_url) == []


# -- (b) an old database with data is upgraded to head and keeps it -----------------------------


def test_db_upgrade_brings_an_old_database_to_head_and_keeps_its_data(app_url: str) -> None:
    url = old_database(app_url)
    before = snapshot(url)
    assert before["registration"] and before["seatassignment"] and before["school"]
    assert SEATS_INDEX not in indexes(url, "seatassignment")

    result = db("upgrade")
    assert result.exit_code == 0, result.output
    assert f"0001 -> {migrate.head()}" in result.stdout

    assert migrate.current(url) == migrate.head()
    assert indexes(url, "seatassignment")[SEATS_INDEX] == ["sitting_code", "site_code"]
    assert snapshot(url) == before
    with session_scope() as session:  # and examflow reads it as before
        sitting = session.get(Sitting, "2024-1")
        assert sitting is not None and sitting.spec.code == "2024-1"

    again = db("upgrade")
    assert again.exit_code == 0 and f"already at {migrate.head()}" in again.stdout


def test_a_database_made_before_migrations_is_adopted_and_upgraded(app_url: str) -> None:
    url = old_database(app_url, with_history=False)
    before = snapshot(url)
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.head()
    assert snapshot(url) == before
    assert SEATS_INDEX in indexes(url, "seatassignment")


def test_examflow_upgrades_its_own_sqlite_file_on_first_use(sqlite_home: Path) -> None:
    url = old_database(url_of(sqlite_home / "examflow.db"), with_history=False)
    before = snapshot(url)
    with session_scope() as session:
        assert session.get(Sitting, "2024-1") is not None
    assert migrate.current(url) == migrate.head()
    assert snapshot(url) == before


# -- databases examflow must not change on its own ---------------------------------------------


def test_an_old_database_elsewhere_is_refused_until_db_upgrade(
    sqlite_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = old_database(url_of(tmp_path / "shared.db"))
    with pytest.raises(migrate.SchemaError, match=r"at revision 0001.*examflow db upgrade"):
        engine_for(url)
    assert migrate.current(url) == "0001"  # untouched

    monkeypatch.setenv("EXAMFLOW_DATABASE_URL", url)
    assert db("upgrade").exit_code == 0
    engine_for(url)  # now fine
    assert migrate.current(url) == migrate.head()


def test_a_database_made_before_migrations_at_head_is_just_stamped(app_url: str) -> None:
    url = models_made_database(app_url)
    engine_for(url)  # nothing to change, so no need to ask (wherever it is): stamped
    assert migrate.current(url) == migrate.head()


def test_a_schema_matching_no_revision_is_refused_with_its_differences(tmp_path: Path) -> None:
    url = models_made_database(url_of(tmp_path / "odd.db"))
    execute(url, "DROP INDEX ix_school_province")
    with pytest.raises(migrate.SchemaError, match="matches no known revision") as raised:
        migrate.upgrade(url)
    assert "ix_school_province" in str(raised.value)
    assert migrate.current(url) is None


def test_a_database_from_a_newer_examflow_is_refused(tmp_path: Path) -> None:
    url = url_of(tmp_path / "newer.db")
    migrate.upgrade(url)
    execute(url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(migrate.SchemaError, match=r"9999.*newer examflow"):
        engine_for(url)


def test_processes_starting_together_create_a_new_database_once(tmp_path: Path) -> None:
    url = url_of(tmp_path / "race.db")
    errors: list[BaseException] = []

    def start() -> None:
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        try:
            migrate.ensure_schema(engine)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert migrate.current(url) == migrate.head()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()
    assert diffs(url) == []


# -- (c) db current ----------------------------------------------------------------------------


def test_db_current_prints_the_head_revision(app_url: str) -> None:
    missing = db("current")
    assert missing.exit_code == 1 and "no revision" in missing.stderr

    assert db("upgrade").exit_code == 0
    result = db("current")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{migrate.head()} (head)"


def test_db_upgrade_goes_to_a_given_revision_and_refuses_an_unknown_one(app_url: str) -> None:
    result = db("upgrade", "--revision", "0001")
    assert result.exit_code == 0, result.output
    assert db("current").stdout.strip() == f"0001 (head is {migrate.head()})"

    unknown = db("upgrade", "--revision", "nope")
    assert unknown.exit_code == 1 and "unknown revision 'nope'" in unknown.stderr
    assert db("upgrade").exit_code == 0
    past = db("upgrade", "--revision", "0001")
    assert past.exit_code == 0 and "nothing to do" in past.stdout
    assert migrate.current(app_url) == migrate.head()
