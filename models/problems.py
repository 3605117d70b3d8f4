"""Row-level problems found in an uploaded file, and the error that carries them."""

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
