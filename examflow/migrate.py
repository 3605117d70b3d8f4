"""The app database's schema, kept by Alembic migrations (``examflow/migrations``).

Every database carries its revision in ``alembic_version``. When an engine is first made
(``examflow.db.engine_for``), ``ensure_schema`` looks at the database once:

* at head: nothing to do (one small read, no lock);
* brand new (none of examflow's tables, no ``alembic_version``): created at head, as
  ``create_all`` + ``stamp head`` in one transaction. That is equivalent to running every
  migration (``tests/test_migrations.py`` checks that both give the models' schema, to the
  DDL text on SQLite), and faster: ~15 ms against ~35-60 ms (tails over 100 ms) for the two
  revisions of today, a gap that grows with every revision and is paid by each of the test
  suite's hundreds of fresh files. ``upgrade`` (``examflow db upgrade``) always migrates;
* made by ``create_all`` before migrations existed (tables, no ``alembic_version``): adopted.
  Its schema is compared with every revision's, newest first; the revision it matches is
  stamped. A schema matching no revision is refused with its differences listed;
* behind head: **upgraded automatically only if it is a SQLite file inside examflow's home**
  (``EXAMFLOW_HOME``, ``var/`` by default): that file is examflow's own, one organiser's
  machine, and an upgrade there is what every command needs anyway. Any other database
  (a server, or a SQLite file elsewhere) may be shared by several machines running different
  versions, so it is never changed behind its owner's back: ``SchemaError`` asks for
  ``examflow db upgrade``, run once, deliberately;
* ahead of head (a newer examflow migrated it) or unknown revision: ``SchemaError``.

Each change runs in one transaction holding the database's write lock (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: an advisory lock), so processes that start together on a new
database create it once and the others find it at head. SQLite's foreign-key enforcement is
off during migrations, as Alembic's batch mode (table copy-and-move) requires.

A new revision, after changing the models::

    from alembic import command
    from examflow.migrate import alembic_config
    command.revision(alembic_config("sqlite:///var/examflow.db"), "what changed",
                     autogenerate=True, rev_id="0003")

then ``ruff check --fix`` + ``ruff format`` it, read and tidy
``examflow/migrations/versions/0003_*.py`` (batch mode is rendered for SQLite), set ``HEAD``
below, and run ``pytest tests/test_migrations.py``.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, inspect, pool, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from examflow.settings import get_settings
from models import all_tables

if TYPE_CHECKING:  # alembic is imported only when a database needs work (~0.1 s per process)
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

HEAD = "0011"
"""The newest revision, for the quick look at a database that needs nothing (no alembic
import). A new revision updates it; ``tests/test_migrations.py`` fails until it does. A stale
value is only slower: everything else asks alembic for the head."""
SCRIPT_LOCATION = "examflow:migrations"
VERSION_TABLE = "alembic_version"
SQLITE_BUSY_TIMEOUT_S = 60
_PG_LOCK_KEY = 0x6578616D666C6F77  # "examflow"


class SchemaError(RuntimeError):
    """The database's schema is not the one this examflow needs, and was left as it is."""


def alembic_config(url: str | None = None, connection: Connection | None = None) -> "Config":
    """Alembic's Config, built in code (no alembic.ini): the scripts ship inside examflow."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _script() -> "ScriptDirectory":
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this examflow knows."""
    revision = _script().get_current_head()
    if revision is None:
        raise RuntimeError("examflow has no migrations")
    return revision


def _revisions_newest_first() -> list[str]:
    return [script.revision for script in _script().walk_revisions()]


def _context(conn: Connection, **opts: Any) -> "MigrationContext":
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn, opts=opts)


def _current(conn: Connection) -> str | None:
    return _context(conn).get_current_revision()


def _at_head(conn: Connection) -> bool:
    """The quick look, without alembic: exactly one version row, and it is HEAD."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return False
    versions = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    return list(versions) == [HEAD]


def _describe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _plain_engine(url: str) -> Engine:
    """An engine for migrating ``url``: no pool, SQLite's long busy timeout, no pragmas."""
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, poolclass=pool.NullPool, connect_args=connect_args)


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction holding the database's write lock; commits on success."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        foreign_keys = False
        if sqlite:
            foreign_keys = bool(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        try:
            yield conn
            conn.commit()
        finally:
            conn.rollback()
            if sqlite and foreign_keys:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _model_tables() -> set[str]:
    all_tables()
    return set(SQLModel.metadata.tables)


def _run_migrations(conn: Connection, revision: str) -> None:
    """Alembic's upgrade through env.py, inside ``conn``'s transaction."""
    from alembic import command

    command.upgrade(alembic_config(connection=conn), revision)


def _create_at_head(conn: Connection) -> None:
    all_tables()
    SQLModel.metadata.create_all(conn)
    _context(conn).stamp(_script(), "head")


# -- adopting a database made by create_all before migrations -------------------------------


def _diff_keys(conn: Connection) -> frozenset[tuple[str, ...]]:
    """How the database differs from the models, as comparable keys (names, not objects)."""
    all_tables()
    from alembic.autogenerate import compare_metadata

    context = _context(conn, compare_type=True)
    keys: set[tuple[str, ...]] = set()
    for diff in compare_metadata(context, SQLModel.metadata):
        for change in diff if isinstance(diff, list) else [diff]:
            key = _diff_key(change)
            if key is not None:
                keys.add(key)
    return frozenset(keys)


def _diff_key(change: Sequence[Any]) -> tuple[str, ...] | None:
    op = str(change[0])
    if op == "remove_table":  # a table examflow does not know is none of its business
        return None
    if op == "add_table":
        return (op, change[1].name)
    if op in ("add_column", "remove_column"):
        return (op, change[2], change[3].name)
    if op.startswith("modify_"):
        return (op, change[2], change[3])
    if op in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        item = change[1]
        columns = ",".join(c.name for c in item.columns)
        return (op, item.table.name, str(item.name or ""), columns)
    if op in ("add_fk", "remove_fk"):
        fk = change[1]
        return (op, fk.parent.name, ",".join(fk.column_keys), fk.referred_table.name)
    return (op, repr(change[1:]))


@cache
def _revision_diff_keys(revision: str) -> frozenset[tuple[str, ...]]:
    """How the schema at ``revision`` differs from the models (built in a scratch SQLite)."""
    scratch = create_engine("sqlite://", poolclass=pool.StaticPool)
    try:
        with scratch.begin() as conn:
            _run_migrations(conn, revision)
            return _diff_keys(conn)
    finally:
        scratch.dispose()


def _adopt(conn: Connection, url: str) -> str:
    """Stamp an unversioned database with the revision its schema matches; return it."""
    found = _diff_keys(conn)
    for revision in _revisions_newest_first():
        if found == (frozenset() if revision == head() else _revision_diff_keys(revision)):
            _context(conn).stamp(_script(), revision)
            return revision
    shown = "\n".join(f"  {' '.join(key)}" for key in sorted(found)[:20])
    raise SchemaError(
        f"{_describe(url)} has examflow tables but no migration history ({VERSION_TABLE}), "
        f"and its schema matches no known revision. Differences from this examflow's "
        f"models:\n{shown}\nBack it up and fix the schema by hand, then run "
        f"`examflow db upgrade`."
    )


# -- the three entry points ------------------------------------------------------------------


def _bring_up(
    conn: Connection, url: str, revision: str, *, may_upgrade: bool, shortcut: bool
) -> None:
    """Inside the lock: create, adopt and/or upgrade ``conn``'s database to ``revision``.
    ``shortcut``: create a brand-new database at head by create_all + stamp. Revisions form
    one line (no branches), so "older" is "later in ``_revisions_newest_first``"."""
    known = _revisions_newest_first()
    target = known[0] if revision == "head" else revision
    if target not in known:
        raise SchemaError(f"unknown revision {target!r}; this examflow knows {', '.join(known)}")
    current = _current(conn)
    if current is None:
        present = set(inspect(conn).get_table_names()) & _model_tables()
        if not present:
            if shortcut and target == known[0]:
                _create_at_head(conn)
            else:
                _run_migrations(conn, target)
            return
        current = _adopt(conn, url)
    if current not in known:
        raise SchemaError(
            f"{_describe(url)} is at revision {current}, which this examflow does not know "
            f"(its newest is {known[0]}): it was migrated by a newer examflow; upgrade examflow."
        )
    if known.index(current) <= known.index(target):
        return  # at the target already, or past it: an upgrade never goes back
    if not may_upgrade:
        raise SchemaError(
            f"{_describe(url)} is at revision {current}; this examflow needs {target}. "
            f"Back it up, then run `examflow db upgrade` (with EXAMFLOW_DATABASE_URL set as now)."
        )
    _run_migrations(conn, target)


def _upgrades_automatically(url: str) -> bool:
    """Only a SQLite file inside examflow's home is upgraded without being asked."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return False
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return False
    home = get_settings().home.resolve()
    return Path(parsed.database).resolve().is_relative_to(home)


def ensure_schema(engine: Engine) -> None:
    """Make sure ``engine``'s database is at head before examflow uses it (see the module
    docstring for what is created, adopted or upgraded, and what is refused)."""
    with engine.connect() as conn:
        if _at_head(conn):
            return
    url = engine.url.render_as_string(hide_password=False)
    with _locked(engine) as conn:
        _bring_up(conn, url, "head", may_upgrade=_upgrades_automatically(url), shortcut=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (``examflow db upgrade``): runs every
    migration in between, from the first for a new database; a database made before
    migrations is adopted first."""
    engine = _plain_engine(url)
    try:
        with _locked(engine) as conn:
            _bring_up(conn, url, revision, may_upgrade=True, shortcut=False)
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The database's revision; None if it has none (new, missing, or made before migrations)."""
    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not file.startswith("file:") and not Path(file).exists():
        return None
    engine = _plain_engine(url)
    try:
        with engine.connect() as conn:
            return _current(conn)
    finally:
        engine.dispose()
