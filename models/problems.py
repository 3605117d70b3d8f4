"""Row-level problems found in an uploaded file, and the error that carries them; and the
mark of a refusal that names a row which is not the acting party's own."""

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class RowProblem:
    """One problem, naming the file row (header = row 1) and the field, or row 0 for the file."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        return (
            f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class RejectedFileError(ValueError):
    """A file with at least one problem: nothing from it was stored."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = sorted(problems)
        super().__init__(f"{len(self.problems)} problem(s); nothing was stored")


class NotTheirsError(Exception):
    """Mixed into a domain refusal whose cause is that the row named (a registration, a
    hosting request, a ticket) is not among the acting party's own: another party's, or none
    at all. Ops see the refusal's own message; a shell acting for one school answers it as
    not found, so that nobody can tell another school's row from a row that does not exist."""


class ForeignRowsError(RejectedFileError, NotTheirsError):
    """A refused file (or form) in which at least one row names a row that is not the acting
    party's own; ``problems`` are the same as a plain refusal's."""
