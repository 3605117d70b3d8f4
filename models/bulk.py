"""Bulk inserts at national scale: plain DBAPI executemany, one statement for all rows.

SQLAlchemy's ORM and Core bulk paths process every parameter of every row in Python; at
200,000 rows that costs seconds. Here rows arrive as tuples of DBAPI-ready values, and
constants that need type processing (a timestamp) go through ``dbapi_value`` once.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Table
from sqlmodel import Session

PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def dbapi_value(session: Session, column: Column[Any], value: object) -> object:
    """``value`` as the database driver expects it for ``column`` (type processing applied)."""
    dialect = session.get_bind().dialect
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor(value) if processor else value


def bulk_insert(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order) in the session's transaction."""
    if not rows:
        return
    connection = session.connection()
    placeholder = PLACEHOLDERS.get(connection.dialect.paramstyle)
    if placeholder is None:  # a driver with another paramstyle: let SQLAlchemy bind
        connection.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    quote = connection.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([placeholder] * len(columns))})"
    )
    connection.exec_driver_sql(sql, list(rows))
