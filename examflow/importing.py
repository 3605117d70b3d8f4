"""The one way a file is imported: read it, check every row, store all of it or nothing.

Both shells call this: the command line with a path (``import_path``), the school portal
with the uploaded bytes (``import_file``). The domain describes each importer
(models.importer.Importer: its columns and its check-and-store); this module reads the
bytes into a table (adapters.tabular), runs the importer in one transaction, and rolls back
on any error. A refused file raises ImportRefusedError, which carries every problem by row
and field (row 0: the file as a whole); UnknownSittingError passes through as it is.
"""

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

from sqlmodel import Session

from adapters.tabular import MAX_BYTES, TableError, read_table
from examflow.db import session_scope
from models.importer import Importer, Upload
from models.problems import RejectedFileError, RowProblem
from models.sittings import get_sitting
from models.table import Table

S = TypeVar("S")


class ImportRefusedError(RejectedFileError):
    """A file refused whole: nothing from it was stored.

    ``problems`` lists every problem by row and field. ``whole`` is True when the file was
    refused as a whole before its rows were judged (it cannot be read as a table: encoding,
    columns, size, a damaged workbook, the path itself; or the importer refused the upload,
    e.g. a review request outside its window): its one problem is then the file's (row 0)
    and ``headline`` says why. ``table`` and ``warnings`` are what was read, when it was (to
    write the rows back with their problems).
    """

    def __init__(
        self,
        file_name: str,
        problems: list[RowProblem],
        *,
        whole: bool = False,
        headline: str | None = None,
        table: Table | None = None,
    ) -> None:
        super().__init__(problems)
        self.file_name = file_name
        self.whole = whole
        self.table = table
        self.warnings = list(table.warnings) if table is not None else []
        self.headline = (
            headline or f"{file_name}: {len(self.problems)} problem(s); nothing was stored"
        )
        self.args = (self.headline,)


@dataclass(frozen=True)
class Imported(Generic[S]):
    """A file stored whole: its name, digest, rows read, reading warnings, and the importer's
    own summary (counts)."""

    file_name: str
    sha256: str
    rows: int
    warnings: list[str]
    summary: S


def import_file(
    importer: Importer[S],
    data: bytes,
    file_name: str,
    *,
    as_of: datetime,
    sitting: str | None = None,
    who: str = "",
    db: Callable[[], AbstractContextManager[Session]] = session_scope,
    then: Callable[[Session, S], None] | None = None,
) -> Imported[S]:
    """Read ``data`` (CSV or XLSX) and store it whole in one transaction, or raise
    ImportRefusedError with every problem (UnknownSittingError for an unknown ``sitting``).
    ``db`` opens the transaction (the portal passes its own, on the database it was started
    with, rather than reading the settings again on every upload); ``then`` runs in the same
    transaction once the file is stored (the portal's audit row: one write transaction an
    upload, not two)."""
    if importer.needs_sitting and sitting is None:
        raise ValueError(f"the {importer.kind} importer needs a sitting")
    try:
        table = read_table(data, file_name, importer.columns)
    except TableError as exc:
        raise ImportRefusedError(
            file_name,
            [RowProblem(0, "", str(exc))],
            whole=True,
            headline=f"{file_name}: {exc}",
        ) from None
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        with db() as session:  # commits whole, or rolls back on any error
            upload = Upload(
                file_name=file_name,
                sha256=sha256,
                as_of=as_of,
                sitting=get_sitting(session, sitting) if sitting is not None else None,
                who=who,
            )
            summary = importer.check_and_store(session, table, upload)
            if then is not None:
                then(session, summary)
    except ImportRefusedError:
        raise
    except RejectedFileError as exc:
        raise ImportRefusedError(file_name, exc.problems, table=table) from None
    except importer.refusals as exc:
        raise ImportRefusedError(
            file_name, [RowProblem(0, "", str(exc))], whole=True, headline=str(exc), table=table
        ) from None
    return Imported(file_name, sha256, len(table.rows), list(table.warnings), summary)


def import_path(
    importer: Importer[S],
    path: Path,
    *,
    as_of: datetime,
    sitting: str | None = None,
    who: str = "",
) -> Imported[S]:
    """``import_file`` for a file on disk; a path that cannot be read is refused like a file
    that cannot be read as a table."""
    try:
        with path.open("rb") as handle:
            # One byte past the limit is enough for read_table to refuse the file: a 5 GB
            # upload (or /dev/zero) must not be read into memory first.
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ImportRefusedError(
            path.name,
            [RowProblem(0, "", f"cannot read the file: {reason}")],
            whole=True,
            headline=f"cannot read {path}: {reason}",
        ) from None
    return import_file(importer, data, path.name, as_of=as_of, sitting=sitting, who=who)
