"""Alembic's environment for examflow, driven from code by ``examflow.migrate``.

The database comes from the Config that ``examflow.migrate`` builds: a live connection in
``config.attributes["connection"]`` (used as is, inside the caller's transaction), else the
``sqlalchemy.url`` main option. Nothing is read from the environment here.
"""

from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlmodel import SQLModel

from models import all_tables

all_tables()
target_metadata = SQLModel.metadata
config = context.config


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=bool(url and url.startswith("sqlite")),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("examflow migrations: no database given (use examflow.migrate)")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
