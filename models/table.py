"""The shape of an uploaded table as the domain sees it: expected columns, rows by key.

Reading CSV or XLSX into this shape is adapters.tabular's job; models/ only judges the values.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A column the caller expects, found by any of its header labels."""

    key: str
    labels: tuple[str, ...]
    required: bool = True


@dataclass(frozen=True)
class Table:
    """Rows as (row number as the user sees it, values by column key) and reading warnings.

    Row numbers follow the spreadsheet: the header is row 1 (unless a title block sits above
    it), blank rows are skipped but counted. Every column key is present, '' when empty.
    """

    rows: list[tuple[int, dict[str, str]]]
    warnings: list[str]
