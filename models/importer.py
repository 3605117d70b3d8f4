"""What the domain says about an importer: its columns and how it checks and stores a table.

Every upload (register of schools, registrations, rooms, attendance, scores, review
requests, site facts, fee standards) is described by an ``Importer``: the columns it
expects, and ``check_and_store(session, table, upload)``, which checks every row and either
raises RejectedFileError with every problem (by row and field) before writing anything, or
stores the whole table and returns a small summary. Reading the bytes into a Table and running
this in one transaction is infrastructure's job (examflow.importing); models/ reads no files.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlmodel import Session

from models.sittings import Sitting
from models.table import Column, Table

S = TypeVar("S")


@dataclass(frozen=True)
class Upload:
    """What an importer is told about the file besides its rows.

    ``who`` says who uploaded it ('' for ops at the command line; the portal passes its login,
    e.g. 'portal:P1'); importers that record a source keep it. ``sitting`` is resolved by the
    caller for importers that need one.
    """

    file_name: str
    sha256: str
    as_of: datetime
    sitting: Sitting | None = None
    who: str = ""

    @property
    def the_sitting(self) -> Sitting:
        if self.sitting is None:  # a wiring mistake, not a user's
            raise ValueError(f"{self.file_name}: this importer needs a sitting")
        return self.sitting


@dataclass(frozen=True)
class Importer(Generic[S]):
    """One kind of upload: its columns and its all-or-nothing check-and-store.

    ``refusals`` are the importer's errors that refuse an upload as a whole (outside its
    window, not the right party), beside RejectedFileError's row-by-row problems.
    """

    kind: str
    columns: tuple[Column, ...]
    check_and_store: Callable[[Session, Table, Upload], S]
    needs_sitting: bool = False
    refusals: tuple[type[Exception], ...] = ()
